// Board support of the emulated mps2-an386: CMSDK UART0, ARM semihosting, SysTick as a clock.
#pragma once
#include <cstdint>

namespace hal {
struct Uart { volatile uint32_t DATA, STATE, CTRL, INTSTATUS, BAUDDIV; };
inline Uart* const kUart0 = reinterpret_cast<Uart*>(0x40004000);
inline void UartInit() { kUart0->BAUDDIV = 16; kUart0->CTRL = 0x3; }
inline void Putc(char c) { while (kUart0->STATE & 1u) { } kUart0->DATA = uint8_t(c); }
inline void Puts(const char* s) { while (*s) Putc(*s++); }
inline void PutU(uint32_t v) { char b[11]; int i = 10; b[i] = 0; do { b[--i] = char('0' + v % 10); v /= 10; } while (v); Puts(&b[i]); }

// One ARM semihosting call (QEMU: -semihosting-config enable=on,target=native).
inline int SemihostCall(int op, const void* arg) {
  register int r0 asm("r0") = op;
  register const void* r1 asm("r1") = arg;
  asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

// SysTick as a 64-bit clock: a 24-bit down counter at the 25 MHz core clock, polled often
// enough to see each wrap. Under QEMU's -icount shift=0 one tick is 40 instructions.
class SysTickClock {
 public:
  static constexpr uint32_t kInstructionsPerTick = 40;
  void Start() {
    kSyst[0] = 0;
    kSyst[1] = 0xFFFFFFu;  // reload
    kSyst[2] = 0;          // current
    kSyst[0] = 0x5;        // enable, core clock, no interrupt
    last_ = kSyst[2] & 0xFFFFFFu;
    ticks_ = 0;
  }
  uint64_t Ticks() {
    const uint32_t now = kSyst[2] & 0xFFFFFFu;
    ticks_ += (last_ - now) & 0xFFFFFFu;  // counts down
    last_ = now;
    return ticks_;
  }

 private:
  static inline volatile uint32_t* const kSyst = reinterpret_cast<volatile uint32_t*>(0xE000E010);
  uint32_t last_ = 0;
  uint64_t ticks_ = 0;
};
}  // namespace hal

// Ends the QEMU run with `code` as its exit status (semihosting SYS_EXIT_EXTENDED).
extern "C" void SemihostExit(int code);
