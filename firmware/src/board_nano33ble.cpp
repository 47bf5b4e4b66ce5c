// Arduino Nano 33 BLE Sense Rev2 (nRF52840, Cortex-M4F @ 64 MHz): USB serial console, DWT
// cycle counter, the nRF52 watchdog, the BMI270 through Bosch's BMI270 Sensor API as Arduino
// packages it for this board (Arduino_BMI270_BMM150, pinned in the env's lib_deps), and an
// optional battery divider. Built only by `pio run -e nano33ble` with PlatformIO's nordicnrf52
// platform and Arduino core: it needs PlatformIO's registry, so it is untested on the offline
// machines this project is developed on.
#if defined(ARDUINO)
#include <Arduino.h>
#include <Arduino_BMI270_BMM150.h>

#include "axes.h"
#include "battery.h"
#include "hal.h"
#include "imu.h"

namespace {
namespace imu = slimhar::imu;

// The BMI270 as Arduino's library drives it: +-4 g, +-2000 dps, 99.84 Hz, data registers read
// on data-ready (no FIFO in that API). The model's rate is reached by keeping every k-th
// sample (99.84 / 2 = 49.92 Hz for a 50 Hz model); a Read() that comes later than one data
// period after the last counts the periods it missed as overruns (data the sensor replaced).
class Bmi270Imu : public imu::Imu {
 public:
  imu::Status Begin() override { return IMU.begin() ? imu::Status::kOk : imu::Status::kWrongId; }
  imu::Status Configure(const imu::Config& cfg) override {
    if (!(cfg.rate_hz > 0.0f) || cfg.rate_hz > kOdr) return imu::Status::kBadConfig;
    decim_ = uint32_t(kOdr / cfg.rate_hz + 0.5f);
    if (decim_ == 0) decim_ = 1;
    return imu::Status::kOk;
  }
  imu::Status Start() override {
    started_ = true;
    last_us_ = micros();
    return imu::Status::kOk;
  }
  imu::Status Read(imu::Sample* out, uint32_t max, uint32_t* n) override {
    *n = 0;
    if (!started_) return imu::Status::kNotStarted;
    const uint32_t now = micros(), period_us = uint32_t(1e6f / kOdr);
    if (now - last_us_ > 2 * period_us) overruns_ += (now - last_us_) / period_us - 1;
    last_us_ = now;
    float ax, ay, az, gx, gy, gz;
    while (*n < max && IMU.accelerationAvailable() && IMU.gyroscopeAvailable()) {
      if (!IMU.readAcceleration(ax, ay, az) || !IMU.readGyroscope(gx, gy, gz)) return imu::Status::kBus;
      if (++phase_ % decim_ != 0) continue;
      constexpr float kRad = 3.14159265358979f / 180.0f;  // the library reports dps
      out[(*n)++] = imu::Sample{{ax, ay, az}, {gx * kRad, gy * kRad, gz * kRad}};
    }
    return imu::Status::kOk;
  }
  float rate_hz() const override { return kOdr / float(decim_); }
  uint32_t overruns() const override { return overruns_; }

 private:
  static constexpr float kOdr = 99.84f;
  uint32_t decim_ = 2, phase_ = 0, overruns_ = 0, last_us_ = 0;
  bool started_ = false;
};
Bmi270Imu g_imu;

// The one place the board's mounting lives: the library already returns the board's own frame
// (it remaps the chip's axes for the Nano), so a model trained on data in that frame reads it as
// is. A model trained on another frame (hapt-uci: a phone on the waist, x along the body's
// vertical) needs this table to say how the board sits on the wearer.
constexpr imu::AxisRow kAxes[] = {
    {"acc_x", imu::Sensor::kAcc, 0, 1},   {"acc_y", imu::Sensor::kAcc, 1, 1},   {"acc_z", imu::Sensor::kAcc, 2, 1},
    {"gyro_x", imu::Sensor::kGyro, 0, 1}, {"gyro_y", imu::Sensor::kGyro, 1, 1}, {"gyro_z", imu::Sensor::kGyro, 2, 1},
};
constexpr imu::AxisMap kAxisMap{kAxes, sizeof(kAxes) / sizeof(kAxes[0])};
}  // namespace

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
slimhar::imu::Imu* SensorImu() { return &g_imu; }
const slimhar::imu::AxisMap* SensorAxes() { return &kAxisMap; }
// The board has no battery divider of its own. Build with -DSLIMHAR_BATTERY_PIN=A0 (and the
// divider's resistors, default 100k over 100k) for a Li-Po wired through one to that pin.
#if defined(SLIMHAR_BATTERY_PIN)
#ifndef SLIMHAR_BATTERY_R_TOP
#define SLIMHAR_BATTERY_R_TOP 100000
#endif
#ifndef SLIMHAR_BATTERY_R_BOTTOM
#define SLIMHAR_BATTERY_R_BOTTOM 100000
#endif
bool HasBattery() { return true; }
uint32_t BatteryMillivolts() {
  analogReadResolution(12);
  return slimhar::battery::DividerMillivolts(uint32_t(analogRead(SLIMHAR_BATTERY_PIN)), 4095, 3300,
                                              SLIMHAR_BATTERY_R_TOP, SLIMHAR_BATTERY_R_BOTTOM);
}
#else
bool HasBattery() { return false; }
uint32_t BatteryMillivolts() { return 0; }
#endif
}  // namespace hal

void setup() { slimhar_app(); }
void loop() {}
#endif
