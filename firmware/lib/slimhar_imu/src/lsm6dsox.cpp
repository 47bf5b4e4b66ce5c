#include "lsm6dsox.h"

namespace slimhar {
namespace imu {

const char* StatusName(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kBus: return "bus transfer failed";
    case Status::kWrongId: return "WHO_AM_I is not the expected part";
    case Status::kBadConfig: return "rate or full scale not supported";
    case Status::kNotStarted: return "not started";
  }
  return "unknown";
}

namespace lsm6dsox {
float OdrHz(uint8_t code) {
  static const float kHz[11] = {0.0f, 12.5f, 26.0f, 52.0f, 104.0f, 208.0f, 416.0f, 833.0f, 1666.0f, 3332.0f, 6664.0f};
  return code <= 10 ? kHz[code] : 0.0f;
}
}  // namespace lsm6dsox

using namespace lsm6dsox;

Status Lsm6dsox::Set(uint8_t reg, uint8_t v) { return bus_->Write(addr_, reg, &v, 1) ? Status::kOk : Status::kBus; }

Status Lsm6dsox::Begin() {
  uint8_t id = 0;
  if (!bus_->Read(addr_, kWhoAmI, &id, 1)) return Status::kBus;
  if (id != kId) return Status::kWrongId;
  if (Set(kCtrl3C, 0x01) != Status::kOk) return Status::kBus;  // SW_RESET (self-clearing)
  for (int i = 0; i < 100; ++i) {
    uint8_t c3 = 0;
    if (!bus_->Read(addr_, kCtrl3C, &c3, 1)) return Status::kBus;
    if ((c3 & 0x01) == 0) {
      // block data update (a sample's bytes from one conversion), register auto-increment
      return Set(kCtrl3C, 0x44);
    }
  }
  return Status::kBus;
}

Status Lsm6dsox::Configure(const Config& cfg) {
  uint8_t odr = 0;
  for (uint8_t code = 1; code <= 10 && odr == 0; ++code)
    if (OdrHz(code) >= cfg.rate_hz) odr = code;
  uint8_t fs_xl, fs_g;
  switch (cfg.accel_fs_g) {  // FS_XL codes and sensitivities (mg / LSB): 2 g 0.061, 16 g 0.488, 4 g 0.122, 8 g 0.244
    case 2: fs_xl = 0; acc_scale_ = 0.061e-3f; break;
    case 16: fs_xl = 1; acc_scale_ = 0.488e-3f; break;
    case 4: fs_xl = 2; acc_scale_ = 0.122e-3f; break;
    case 8: fs_xl = 3; acc_scale_ = 0.244e-3f; break;
    default: return Status::kBadConfig;
  }
  constexpr float kDpsToRad = 3.14159265358979f / 180.0f;
  switch (cfg.gyro_fs_dps) {  // FS_G codes (FS_125 separate) and sensitivities (mdps / LSB)
    case 125: fs_g = 0x02; gyro_scale_ = 4.375e-3f * kDpsToRad; break;
    case 250: fs_g = 0 << 2; gyro_scale_ = 8.75e-3f * kDpsToRad; break;
    case 500: fs_g = 1 << 2; gyro_scale_ = 17.5e-3f * kDpsToRad; break;
    case 1000: fs_g = 2 << 2; gyro_scale_ = 35.0e-3f * kDpsToRad; break;
    case 2000: fs_g = 3 << 2; gyro_scale_ = 70.0e-3f * kDpsToRad; break;
    default: return Status::kBadConfig;
  }
  // the watermark counts FIFO words: an accelerometer and a gyroscope word per sample
  const uint32_t wtm = 2u * cfg.watermark;
  if (odr == 0 || cfg.watermark == 0 || wtm > 511) return Status::kBadConfig;
  odr_ = odr;
  const Status st[] = {Set(kCtrl1Xl, uint8_t(odr << 4 | fs_xl << 2)), Set(kCtrl2G, uint8_t(odr << 4 | fs_g)),
                       Set(kFifoCtrl1, uint8_t(wtm & 0xFF)), Set(kFifoCtrl2, uint8_t(wtm >> 8)),
                       Set(kFifoCtrl3, uint8_t(odr << 4 | odr)), Set(kInt1Ctrl, 0x08)};
  for (Status s : st)
    if (s != Status::kOk) return s;
  return Status::kOk;
}

Status Lsm6dsox::Start() {
  if (odr_ == 0) return Status::kNotStarted;
  if (Set(kFifoCtrl4, kFifoModeContinuous) != Status::kOk) return Status::kBus;
  started_ = true;
  have_acc_ = have_gyro_ = false;
  return Status::kOk;
}

Status Lsm6dsox::Read(Sample* out, uint32_t max, uint32_t* n) {
  *n = 0;
  if (!started_) return Status::kNotStarted;
  uint8_t st[2];
  if (!bus_->Read(addr_, kFifoStatus1, st, 2)) return Status::kBus;
  if (st[1] & 0x40) ++overruns_;  // FIFO_OVR_IA: the oldest words were overwritten
  uint32_t words = uint32_t(st[0]) | (uint32_t(st[1] & 0x03) << 8);
  while (words > 0 && *n < max) {
    uint8_t w[7];
    if (!bus_->Read(addr_, kFifoDataOutTag, w, 7)) return Status::kBus;
    --words;
    const uint8_t tag = w[0] >> 3;
    float v[3];
    for (int a = 0; a < 3; ++a) v[a] = float(int16_t(uint16_t(w[1 + 2 * a] | (w[2 + 2 * a] << 8))));
    if (tag == kTagAccel) {
      for (int a = 0; a < 3; ++a) pending_.acc[a] = v[a] * acc_scale_;
      have_acc_ = true;
    } else if (tag == kTagGyro) {
      for (int a = 0; a < 3; ++a) pending_.gyro[a] = v[a] * gyro_scale_;
      have_gyro_ = true;
    }  // other tags (temperature, timestamps, sensor hub) are not batched here: skipped
    if (have_acc_ && have_gyro_) {
      out[(*n)++] = pending_;
      have_acc_ = have_gyro_ = false;
    }
  }
  return Status::kOk;
}

}  // namespace imu
}  // namespace slimhar
