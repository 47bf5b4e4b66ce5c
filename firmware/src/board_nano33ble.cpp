// Arduino Nano 33 BLE Sense Rev2 (nRF52840, Cortex-M4F @ 64 MHz): USB serial console, DWT
// cycle counter, the nRF52 watchdog. Built only by `pio run -e nano33ble` with PlatformIO's
// nordicnrf52 platform and Arduino core (needs the registry: untested on the offline machines
// this project is developed on). The IMU (BMI270) comes with its driver, behind the same HAL.
#if defined(ARDUINO)
#include <Arduino.h>

#include "hal.h"

namespace hal {
namespace {
volatile uint32_t* const kDemcr = reinterpret_cast<volatile uint32_t*>(0xE000EDFC);
volatile uint32_t* const kDwtCtrl = reinterpret_cast<volatile uint32_t*>(0xE0001000);
volatile uint32_t* const kDwtCyccnt = reinterpret_cast<volatile uint32_t*>(0xE0001004);
volatile uint32_t* const kWdt = reinterpret_cast<volatile uint32_t*>(0x40010000);  // nRF52840 WDT
uint32_t g_last = 0;
uint64_t g_cycles = 0;
}  // namespace

void Init() {
  Serial.begin(115200);
  while (!Serial && millis() < 3000) {
  }
  *kDemcr |= 1u << 24;  // TRCENA
  *kDwtCyccnt = 0;
  *kDwtCtrl |= 1u;      // CYCCNTENA
  kWdt[0x504 / 4] = 4u * 32768u;  // CRV: 4 s of the 32.768 kHz clock
  kWdt[0x508 / 4] = 1u;           // RREN: reload register 0
  kWdt[0] = 1u;                   // TASKS_START
}
void WriteLine(const char* s) {
  Serial.print(s);
  Serial.print("\r\n");
}
bool ReadChar(char* c) {
  if (Serial.available() <= 0) return false;
  *c = char(Serial.read());
  return true;
}
uint64_t Cycles() {
  const uint32_t now = *kDwtCyccnt;
  g_cycles += now - g_last;
  g_last = now;
  return g_cycles;
}
uint32_t CyclesPerUs() { return 64; }
const char* ClockName() { return "cycles"; }
void Sleep() { __WFI(); }
void WatchdogFeed() { kWdt[0x600 / 4] = 0x6E524635u; }  // RR[0]
void SetLoad(uint32_t) {}  // a real board has real load: the policy measures it
void Fault() { *reinterpret_cast<volatile uint32_t*>(0xFFFFFFF0u) = 1; }
const char* BoardName() { return "nano33ble-sense-rev2"; }  // one word: replies are key=value
}  // namespace hal

void setup() { slimhar_app(); }
void loop() {}
#endif
