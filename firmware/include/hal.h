// The board interface the application uses; one implementation per board, picked by the env's
// build_src_filter: firmware/src/board_mps2.cpp (QEMU mps2-an386) and
// firmware/src/board_nano33ble.cpp (Arduino Nano 33 BLE Sense Rev2, online builds only).
#pragma once
#include <cstdint>

namespace slimhar {
namespace imu {
class Imu;
struct AxisMap;
}  // namespace imu
}  // namespace slimhar

namespace hal {
void Init();                           // clocks, console, the clock below, watchdog
void WriteLine(const char* s);         // one console line (the board adds CR LF)
bool ReadChar(char* c);                // a received byte, if any (never blocks)
uint64_t Cycles();                     // core clock since Init (QEMU -icount: instructions)
uint32_t CyclesPerUs();                // to turn Cycles() into microseconds
const char* ClockName();               // "cycles" or "instructions"
void Sleep();                          // until the next interrupt (WFI)
void WatchdogFeed();
void SetLoad(uint32_t pct);            // emulation: busy-loop pct % of every timer period (0: off)
void Fault();                          // a deliberate bus fault: the fault handler's own test
const char* BoardName();
slimhar::imu::Imu* SensorImu();                // the board's IMU (null: none, samples only over the link)
const slimhar::imu::AxisMap* SensorAxes();     // its axes onto the model's raw channels (the mounting)
bool HasBattery();                             // a battery divider on an ADC pin
uint32_t BatteryMillivolts();                  // the battery's voltage through it
}  // namespace hal

// The application entry, called by the board's start-up (main, or Arduino's setup()).
int slimhar_app();
