// Sensing pieces of the application, on the host and the emulated Cortex-M4F: the replay sensor
// (a FIFO in continuous mode), the axis tables that route IMU axes onto a model's raw channels,
// and the Li-Po voltage-to-percent curve with the battery divider.
#include <cstring>

#include "../check.h"
#include "axes.h"
#include "battery.h"
#include "replay.h"

namespace imu = slimhar::imu;
namespace bat = slimhar::battery;

namespace {
imu::Sample S(float v) { return imu::Sample{{v, v + 1, v + 2}, {v + 3, v + 4, v + 5}}; }

void Replay() {
  imu::ReplayImu r;
  imu::Sample out[100];
  uint32_t n = 99;
  r.Push(S(1));
  Check("replay_drops_before_start", r.level() == 0 && r.Read(out, 10, &n) == imu::Status::kNotStarted && n == 0);
  imu::Config c;
  c.rate_hz = 50.0f;
  Check("replay_configure", r.Configure(c) == imu::Status::kOk && r.rate_hz() == 50.0f);
  c.rate_hz = 0.0f;
  Check("replay_refuses_zero_rate", r.Configure(c) == imu::Status::kBadConfig && r.rate_hz() == 50.0f);
  r.Start();
  for (int k = 0; k < 10; ++k) r.Push(S(float(k)));
  bool order = r.Read(out, 4, &n) == imu::Status::kOk && n == 4;
  for (uint32_t k = 0; k < n; ++k) order &= out[k].acc[0] == float(k) && out[k].gyro[2] == float(k) + 5;
  order &= r.Read(out, 100, &n) == imu::Status::kOk && n == 6 && out[0].acc[0] == 4.0f && r.level() == 0;
  Check("replay_fifo_order", order);
  // 64 + 10 pushed: the 10 oldest overwritten, each an overrun; the newest 64 come out in order
  for (int k = 0; k < 74; ++k) r.Push(S(float(k)));
  bool ovr = r.overruns() == 10 && r.level() == imu::ReplayImu::kCapacity;
  ovr &= r.Read(out, 100, &n) == imu::Status::kOk && n == 64 && out[0].acc[0] == 10.0f && out[63].acc[0] == 73.0f;
  Check("replay_overrun_drops_oldest", ovr);
  r.Push(S(1));
  r.Clear();
  Check("replay_clear", r.level() == 0 && r.Read(out, 10, &n) == imu::Status::kOk && n == 0);
}

void Axes() {
  const char* names[6] = {"acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"};
  imu::Route rt[6];
  Check("identity_routes", imu::RouteChannels(imu::kIdentityAxes, names, 6, rt));
  float raw[6];
  imu::ToChannels(S(10), rt, 6, raw);
  Check("identity_values", raw[0] == 10 && raw[2] == 12 && raw[3] == 13 && raw[5] == 15);
  // a board mounted rotated: x = -y_sensor, y = -x_sensor (the Nano 33 BLE Sense's BMI270 frame)
  const imu::AxisRow rows[] = {{"acc_x", imu::Sensor::kAcc, 1, -1}, {"acc_y", imu::Sensor::kAcc, 0, -1},
                               {"acc_z", imu::Sensor::kAcc, 2, 1},  {"gyro_x", imu::Sensor::kGyro, 1, -1},
                               {"gyro_y", imu::Sensor::kGyro, 0, -1}, {"gyro_z", imu::Sensor::kGyro, 2, 1}};
  const imu::AxisMap rot{rows, 6};
  Check("rotated_routes", imu::RouteChannels(rot, names, 6, rt));
  imu::ToChannels(S(10), rt, 6, raw);
  Check("rotated_values", raw[0] == -11 && raw[1] == -10 && raw[2] == 12 && raw[3] == -14 && raw[4] == -13 &&
                              raw[5] == 15);
  imu::Sample back;
  imu::FromChannels(raw, rt, 6, &back);
  Check("rotated_round_trip", std::memcmp(&back, &(const imu::Sample&)S(10), sizeof(back)) == 0);
  // channel order of the model, not of the sensor; a subset; a name the board lacks
  const char* gyro_first[3] = {"gyro_z", "acc_x", "gyro_x"};
  Check("reordered_subset", imu::RouteChannels(imu::kIdentityAxes, gyro_first, 3, rt) && rt[0].sensor == imu::Sensor::kGyro &&
                                rt[0].axis == 2 && rt[1].sensor == imu::Sensor::kAcc && rt[2].axis == 0);
  const char* nine[2] = {"acc_x", "body_acc_x"};
  Check("unknown_channel_refused", !imu::RouteChannels(imu::kIdentityAxes, nine, 2, rt));
  const imu::AxisRow bad[] = {{"acc_x", imu::Sensor::kAcc, 3, 1}};
  Check("bad_axis_refused", !imu::RouteChannels(imu::AxisMap{bad, 1}, names, 1, rt));
}

void Battery() {
  bool points = true;
  for (const auto& p : bat::kLipo) points &= bat::LipoPercent(p.mv) == p.pct;
  Check("lipo_curve_points", points);
  bool mono = true;
  uint8_t last = 0;
  for (uint32_t mv = 2500; mv <= 4600; ++mv) {
    const uint8_t p = bat::LipoPercent(mv);
    mono &= p >= last && p <= 100;
    last = p;
  }
  Check("lipo_monotone_and_clamped", mono && bat::LipoPercent(0) == 0 && bat::LipoPercent(5000) == 100);
  Check("lipo_interpolates", bat::LipoPercent(3775) == 45 && bat::LipoPercent(4150) == 95 && bat::LipoPercent(3400) == 3);
  // 12-bit ADC, 3.3 V reference, 100k over 100k: 4.2 V reads 2606
  Check("divider", bat::DividerMillivolts(2606, 4095, 3300, 100000, 100000) == 4200 &&
                       bat::DividerMillivolts(4095, 4095, 3300, 100000, 100000) == 6600 &&
                       bat::DividerMillivolts(1, 0, 3300, 1, 1) == 0 && bat::DividerMillivolts(1, 1, 3300, 1, 0) == 0 &&
                       bat::DividerMillivolts(0xFFFFFFFFu, 1, 0xFFFFFFFFu, 0xFFFFFFFFu, 1) == 0xFFFFFFFFu);
}
}  // namespace

int main() {
  TestInit();
  Replay();
  Axes();
  Battery();
  return 0;
}
