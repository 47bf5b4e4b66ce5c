// Board support of the emulated mps2-an386: CMSDK UART0 and semihosting exit.
#pragma once
#include <cstdint>

namespace hal {
struct Uart { volatile uint32_t DATA, STATE, CTRL, INTSTATUS, BAUDDIV; };
inline Uart* const kUart0 = reinterpret_cast<Uart*>(0x40004000);
inline void UartInit() { kUart0->BAUDDIV = 16; kUart0->CTRL = 0x3; }
inline void Putc(char c) { while (kUart0->STATE & 1u) { } kUart0->DATA = uint8_t(c); }
inline void Puts(const char* s) { while (*s) Putc(*s++); }
inline void PutU(uint32_t v) { char b[11]; int i = 10; b[i] = 0; do { b[--i] = char('0' + v % 10); v /= 10; } while (v); Puts(&b[i]); }
}  // namespace hal

// Ends the QEMU run with `code` as its exit status (semihosting SYS_EXIT_EXTENDED).
extern "C" void SemihostExit(int code);
