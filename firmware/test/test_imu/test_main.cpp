// The LSM6DSOX driver against the register-level fake (fake_lsm6dsox.h): identity and bus
// errors, rate and full-scale set-up, the FIFO filling at the configured rate, watermark,
// overrun, and conversion to g and rad/s at each full scale.
#include <cmath>

#include "../check.h"
#include "fake_lsm6dsox.h"
#include "lsm6dsox.h"

using slimhar::imu::Config;
using slimhar::imu::Lsm6dsox;
using slimhar::imu::Sample;
using slimhar::imu::Status;

namespace {
FakeLsm6dsox g_part;
Sample g_buf[600];

bool Near(double a, double b, double tol) { return std::fabs(a - b) <= tol; }

Status Up(Lsm6dsox& d, const Config& c) {
  Status s = d.Begin();
  if (s == Status::kOk) s = d.Configure(c);
  if (s == Status::kOk) s = d.Start();
  return s;
}
}  // namespace

int main() {
  TestInit();
  {
    FakeLsm6dsox other;
    other.who_am_i = 0x69;  // an LSM6DS3's id
    other.Write(0x6A, 0x12, reinterpret_cast<const uint8_t*>("\x01"), 1);
    Lsm6dsox d(&other);
    Check("wrong_who_am_i_refused", d.Begin() == Status::kWrongId);
    other.nack = true;
    Check("missing_part_is_bus_error", d.Begin() == Status::kBus);
    Lsm6dsox wrong_addr(&g_part, 0x6B);
    Check("wrong_address_is_bus_error", wrong_addr.Begin() == Status::kBus);
  }
  Lsm6dsox d(&g_part);
  Config c;
  c.rate_hz = 50.0f;
  c.accel_fs_g = 4;
  c.gyro_fs_dps = 2000;
  c.watermark = 16;
  Check("starts", Up(d, c) == Status::kOk);
  Check("rate_is_next_supported_at_or_above", d.rate_hz() == 52.0f && (g_part.reg(0x10) >> 4) == 3 &&
                                                  (g_part.reg(0x11) >> 4) == 3 && g_part.reg(0x09) == 0x33);
  Check("full_scales_in_registers", ((g_part.reg(0x10) >> 2) & 3) == 2 && ((g_part.reg(0x11) >> 2) & 3) == 3);
  Check("bdu_and_auto_increment", (g_part.reg(0x12) & 0x44) == 0x44);
  Check("continuous_fifo_watermark_on_int1", (g_part.reg(0x0A) & 7) == 6 && g_part.reg(0x07) == 32 &&
                                                 (g_part.reg(0x0D) & 0x08));
  uint32_t n = 0;
  Sample* s = g_buf;

  // FIFO fills at the rate: 0.25 s = 13 samples (watermark 16 not reached), 0.35 s = 18 (reached)
  g_part.Advance(0.25);
  Check("watermark_not_yet", !g_part.int1());
  g_part.Advance(0.10);
  Check("watermark_raises_int1", g_part.int1());
  Check("reads_what_was_sampled", d.Read(s, 600, &n) == Status::kOk && n == 18 && !g_part.int1());
  g_part.Advance(1.0);
  Check("one_second_is_52_samples", d.Read(s, 600, &n) == Status::kOk && n == 52 && d.overruns() == 0);

  // scaling: 1 g on z, rotation on x / z, at +-4 g and +-2000 dps: within one LSB
  g_part.acc_g[0] = 0.25;
  g_part.acc_g[2] = 1.0;
  g_part.gyro_rad[0] = 1.0;
  g_part.gyro_rad[2] = -0.5;
  g_part.Advance(0.1);
  const double lsb_g = 0.122e-3, lsb_rad = 70e-3 * 3.14159265358979 / 180;
  Check("converts_to_g_and_rad_per_s", d.Read(s, 600, &n) == Status::kOk && n == 5 && Near(s[4].acc[0], 0.25, lsb_g) &&
                                           Near(s[4].acc[2], 1.0, lsb_g) && Near(s[4].gyro[0], 1.0, lsb_rad) &&
                                           Near(s[4].gyro[2], -0.5, lsb_rad) && Near(s[4].acc[1], 0.0, lsb_g));
  // +-2 g: finer steps, and 3 g saturates at the top of the range
  c.accel_fs_g = 2;
  c.gyro_fs_dps = 125;
  Check("reconfigures", d.Configure(c) == Status::kOk && ((g_part.reg(0x10) >> 2) & 3) == 0 && (g_part.reg(0x11) & 0x02));
  g_part.acc_g[2] = 3.0;
  g_part.gyro_rad[0] = 0.5;
  g_part.Advance(0.1);
  Check("saturates_at_full_scale", d.Read(s, 600, &n) == Status::kOk && n >= 4 && Near(s[n - 1].acc[2], 32767 * 0.061e-3, 1e-6) &&
                                       Near(s[n - 1].acc[0], 0.25, 0.061e-3) &&
                                       Near(s[n - 1].gyro[0], 0.5, 4.375e-3 * 3.14159265358979 / 180));
  // overrun: 10 s unread overflows the FIFO; the driver counts it and returns the newest samples
  g_part.acc_g[2] = 1.0;
  g_part.Advance(10.0);
  Check("overrun_counted", d.Read(s, 600, &n) == Status::kOk && d.overruns() == 1 && n == FakeLsm6dsox::kFifoWords / 2);
  g_part.Advance(0.5);
  Check("after_overrun_reads_again", d.Read(s, 600, &n) == Status::kOk && n == 26 && d.overruns() == 1 &&
                                         Near(s[0].acc[2], 1.0, 0.061e-3));
  c.accel_fs_g = 3;
  Check("bad_full_scale_refused", d.Configure(c) == Status::kBadConfig);
  c.accel_fs_g = 4;
  c.rate_hz = 10000.0f;
  Check("bad_rate_refused", d.Configure(c) == Status::kBadConfig);
  Lsm6dsox fresh(&g_part);
  Check("read_before_start_refused", fresh.Read(s, 1, &n) == Status::kNotStarted && n == 0);
  return 0;
}
