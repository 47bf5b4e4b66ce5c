// mps2-an386 under QEMU: CMSDK UART0 console, SysTick as the cycle counter (hal_mps2.h).
#include "hal.h"
#include "hal_mps2.h"

namespace hal {
namespace {
SysTickClock g_clock;
}  // namespace

void Init() { UartInit(); }
void Write(const char* s) { Puts(s); }
void WriteU(uint32_t v) { PutU(v); }
void CycleCounterStart() { g_clock.Start(); }
uint64_t Cycles() { return g_clock.Ticks() * SysTickClock::kInstructionsPerTick; }
const char* BoardName() { return "mps2-an386 (QEMU)"; }
}  // namespace hal

#ifndef PIO_UNIT_TESTING
int main() { return slimhar_app(); }
#endif
