// The board interface the application uses; one implementation per board, picked by the env's
// build_src_filter: firmware/src/board_mps2.cpp (QEMU mps2-an386) and
// firmware/src/board_nano33ble.cpp (Arduino Nano 33 BLE Sense Rev2, online builds only).
#pragma once
#include <cstdint>

namespace hal {
void Init();                           // clocks, console
void Write(const char* s);             // console text
void WriteU(uint32_t v);               // decimal
void CycleCounterStart();
uint64_t Cycles();                     // core cycles since start (QEMU -icount: instructions)
const char* BoardName();
}  // namespace hal

// The application entry, called by the board's start-up (main, or Arduino's setup()).
int slimhar_app();
