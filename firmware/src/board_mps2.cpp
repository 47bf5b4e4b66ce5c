// mps2-an386 under QEMU: CMSDK UART0 console (polled: QEMU holds received bytes until the UART
// takes them, so nothing is lost while the core computes), SysTick every 2,500 ticks as the
// clock and the load generator, the CMSDK watchdog on the NMI, a fault handler that reports
// over the console and resets.
#include "hal.h"
#include "hal_mps2.h"

namespace hal {
namespace {
volatile uint32_t* const kSyst = reinterpret_cast<volatile uint32_t*>(0xE000E010);  // CSR, RVR, CVR
volatile uint32_t* const kIcsr = reinterpret_cast<volatile uint32_t*>(0xE000ED04);
volatile uint32_t* const kAircr = reinterpret_cast<volatile uint32_t*>(0xE000ED0C);
volatile uint32_t* const kCfsr = reinterpret_cast<volatile uint32_t*>(0xE000ED28);
volatile uint32_t* const kNvicIser0 = reinterpret_cast<volatile uint32_t*>(0xE000E100);
constexpr uint32_t kUart0RxIrq = 0;  // mps2-an386: UART0 RX is external interrupt 0
volatile uint32_t* const kWdog = reinterpret_cast<volatile uint32_t*>(0x40008000);   // LOAD, VALUE, CONTROL, INTCLR
// One SysTick period: 2,500 ticks of the 25 MHz reference = 100 us = 100,000 instructions
// under -icount shift=0 (QEMU runs 40 instructions per tick).
constexpr uint32_t kPeriod = 2500;
constexpr uint32_t kInstructionsPerTick = SysTickClock::kInstructionsPerTick;
constexpr uint32_t kWatchdogTicks = 25000000u * 4;  // 4 s of the 25 MHz watchdog clock
volatile uint32_t g_wraps = 0;
volatile uint32_t g_load_pct = 0;

void PutHex(uint32_t v) {
  for (int i = 7; i >= 0; --i) Putc("0123456789abcdef"[(v >> (4 * i)) & 0xFu]);
}
}  // namespace

void Init() {
  UartInit();
  // Wake the core on every received byte: without the RX interrupt a WFI waits for the next
  // SysTick (100 us of virtual time), and each byte of a `feed` line paid that.
  kUart0->CTRL = kUart0->CTRL | (1u << 3);  // RX interrupt enable
  kNvicIser0[0] = 1u << kUart0RxIrq;
  kSyst[0] = 0;
  kSyst[1] = kPeriod - 1;
  kSyst[2] = 0;
  kSyst[0] = 0x7;              // enable, interrupt, core clock
  kWdog[0x300] = 0x1ACCE551u;  // LOCK (0xC00): unlock
  kWdog[0] = kWatchdogTicks;
  kWdog[2] = 0x1;              // INTEN: an expiry raises the NMI (QEMU wires the reset output to nothing)
  kWdog[0x300] = 0;            // lock again
}

extern "C" void Uart0Rx_Handler() {
  kUart0->INTSTATUS = 2u;  // clear RX; the byte stays in DATA for ReadChar (the loop after WFI)
}

void WriteLine(const char* s) {
  Puts(s);
  Puts("\r\n");
}

bool ReadChar(char* c) {
  if ((kUart0->STATE & 2u) == 0) return false;  // RX buffer full bit
  *c = char(kUart0->DATA);
  return true;
}

uint64_t Cycles() {
  uint32_t w, v;
  do {
    w = g_wraps;
    v = kSyst[2];
  } while (w != g_wraps);
  if (*kIcsr & (1u << 26)) {  // wrapped, its interrupt not yet taken
    v = kSyst[2];
    ++w;
  }
  return (uint64_t(w) * kPeriod + (kPeriod - 1 - v)) * kInstructionsPerTick;
}

// Microseconds of a nominal 64 MHz Cortex-M4 (the nRF52840's clock) at one instruction per
// cycle: QEMU counts instructions, not cycles, so "us" on this board are a stated convention.
uint32_t CyclesPerUs() { return 64; }
const char* ClockName() { return "instructions"; }
void Sleep() { asm volatile("wfi"); }

void WatchdogFeed() {
  kWdog[0x300] = 0x1ACCE551u;
  kWdog[3] = 1;  // INTCLR: reload
  kWdog[0x300] = 0;
}

void SetLoad(uint32_t pct) { g_load_pct = pct > 90 ? 90 : pct; }

void Fault() {
  volatile uint32_t* bad = reinterpret_cast<volatile uint32_t*>(0xFFFFFFF0u);
  *bad = 1;  // no memory there: a bus fault, escalated to HardFault
}

const char* BoardName() { return "mps2-an386-qemu"; }  // one word: replies are key=value
// The emulated board has no IMU: its sensor is the replay over the serial link (`feed`), and its
// battery is set over serial (`battery set`).
slimhar::imu::Imu* SensorImu() { return nullptr; }
const slimhar::imu::AxisMap* SensorAxes() { return nullptr; }
bool HasBattery() { return false; }
uint32_t BatteryMillivolts() { return 0; }
}  // namespace hal

extern "C" void SysTick_Handler() {
  ++hal::g_wraps;
  const uint32_t pct = hal::g_load_pct;
  if (pct) {
    // the load generator: pct % of this period's 100,000 instructions, as a counted loop of two
    // instructions an iteration (under -icount time is instructions, so the share is exact)
    uint32_t n = pct * (hal::kPeriod * hal::kInstructionsPerTick / 100) / 2;
    asm volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
  }
}

// Reports the fault and the stacked pc / lr, then resets the core (SYSRESETREQ): the device
// says why it went away and comes back.
extern "C" void FaultReport(const uint32_t* frame, uint32_t kind) {
  hal::Puts(kind == 2 ? "\r\nfault: watchdog" : "\r\nfault: hardfault");
  hal::Puts(" pc=0x");
  hal::PutHex(frame[6]);
  hal::Puts(" lr=0x");
  hal::PutHex(frame[5]);
  hal::Puts(" cfsr=0x");
  hal::PutHex(*hal::kCfsr);
  hal::Puts("\r\n");
  *hal::kAircr = (0x5FAu << 16) | (1u << 2);
  for (;;) {
  }
}

extern "C" __attribute__((naked)) void HardFault_Handler() {
  asm volatile("tst lr, #4\n ite eq\n mrseq r0, msp\n mrsne r0, psp\n movs r1, #1\n b FaultReport\n");
}
extern "C" __attribute__((naked)) void NMI_Handler() {
  asm volatile("tst lr, #4\n ite eq\n mrseq r0, msp\n mrsne r0, psp\n movs r1, #2\n b FaultReport\n");
}

#ifndef PIO_UNIT_TESTING
int main() { return slimhar_app(); }
#endif
