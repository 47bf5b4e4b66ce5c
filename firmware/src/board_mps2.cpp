// mps2-an386 under QEMU: CMSDK UART0 console, SysTick as the cycle counter (24-bit, polled;
// with -icount shift=0 one tick = 40 instructions at the board's 25 MHz).
#include "hal.h"
#include "hal_mps2.h"

namespace hal {
namespace {
volatile uint32_t* const kSyst = reinterpret_cast<volatile uint32_t*>(0xE000E010);
uint32_t g_last = 0;
uint64_t g_ticks = 0;
}  // namespace

void Init() { UartInit(); }
void Write(const char* s) { Puts(s); }
void WriteU(uint32_t v) { PutU(v); }
void CycleCounterStart() {
  kSyst[0] = 0;
  kSyst[1] = 0xFFFFFFu;
  kSyst[2] = 0;
  kSyst[0] = 0x5;  // enable, core clock
  g_last = kSyst[2] & 0xFFFFFFu;
  g_ticks = 0;
}
uint64_t Cycles() {
  const uint32_t now = kSyst[2] & 0xFFFFFFu;
  g_ticks += (g_last - now) & 0xFFFFFFu;
  g_last = now;
  return g_ticks * 40u;
}
const char* BoardName() { return "mps2-an386 (QEMU)"; }
}  // namespace hal

#ifndef PIO_UNIT_TESTING
int main() { return slimhar_app(); }
#endif
