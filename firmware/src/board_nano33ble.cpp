// Arduino Nano 33 BLE Sense Rev2 (nRF52840, Cortex-M4F @ 64 MHz): USB serial console, DWT
// cycle counter. Built only by `pio run -e nano33ble` with PlatformIO's nordicnrf52 platform
// and Arduino core (needs the registry: untested on the offline machines this project is
// developed on). The IMU (BMI270) driver comes with the IMU issue, behind the same HAL.
#if defined(ARDUINO)
#include <Arduino.h>

#include "hal.h"

namespace hal {
namespace {
volatile uint32_t* const kDemcr = reinterpret_cast<volatile uint32_t*>(0xE000EDFC);
volatile uint32_t* const kDwtCtrl = reinterpret_cast<volatile uint32_t*>(0xE0001000);
volatile uint32_t* const kDwtCyccnt = reinterpret_cast<volatile uint32_t*>(0xE0001004);
uint32_t g_last = 0;
uint64_t g_cycles = 0;
}  // namespace

void Init() {
  Serial.begin(115200);
  while (!Serial && millis() < 3000) {
  }
}
void Write(const char* s) { Serial.print(s); }
void WriteU(uint32_t v) { Serial.print(static_cast<unsigned long>(v)); }
void CycleCounterStart() {
  *kDemcr |= 1u << 24;  // TRCENA
  *kDwtCyccnt = 0;
  *kDwtCtrl |= 1u;      // CYCCNTENA
  g_last = 0;
  g_cycles = 0;
}
uint64_t Cycles() {
  const uint32_t now = *kDwtCyccnt;
  g_cycles += now - g_last;
  g_last = now;
  return g_cycles;
}
const char* BoardName() { return "Arduino Nano 33 BLE Sense Rev2"; }
}  // namespace hal

void setup() { slimhar_app(); }
void loop() {}
#endif
