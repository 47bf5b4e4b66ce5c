// ST LSM6DSOX (and the LSM6DSO family) over I2C, register level: WHO_AM_I check, software reset,
// accelerometer / gyroscope rate and full scale, the FIFO in continuous mode with both sensors
// batched at the output rate, its watermark on INT1, tagged FIFO words turned into samples in g
// and rad/s, overruns counted. Register map and sensitivities: the part's datasheet (DS12814);
// written for this project, not derived from ST's driver.
#pragma once
#include "imu.h"

namespace slimhar {
namespace imu {

namespace lsm6dsox {
enum Reg : uint8_t {
  kFifoCtrl1 = 0x07,   // WTM[7:0]
  kFifoCtrl2 = 0x08,   // bit 0: WTM[8]
  kFifoCtrl3 = 0x09,   // BDR_GY[7:4], BDR_XL[3:0]
  kFifoCtrl4 = 0x0A,   // FIFO_MODE[2:0]
  kInt1Ctrl = 0x0D,    // bit 3: INT1_FIFO_TH
  kWhoAmI = 0x0F,
  kCtrl1Xl = 0x10,     // ODR_XL[7:4], FS_XL[3:2]
  kCtrl2G = 0x11,      // ODR_G[7:4], FS_G[3:2], FS_125 bit 1
  kCtrl3C = 0x12,      // BDU bit 6, IF_INC bit 2, SW_RESET bit 0
  kFifoStatus1 = 0x3A, // DIFF_FIFO[7:0]
  kFifoStatus2 = 0x3B, // WTM_IA bit 7, OVR_IA bit 6, FULL_IA bit 5, OVR_LATCHED bit 3, DIFF_FIFO[9:8]
  kFifoDataOutTag = 0x78,  // TAG_SENSOR[7:3]; the 6 data bytes follow at 0x79..0x7E
};
constexpr uint8_t kId = 0x6C;
constexpr uint8_t kTagGyro = 0x01, kTagAccel = 0x02;
constexpr uint8_t kFifoModeContinuous = 0x6;
// ODR / BDR codes 1..10 = 12.5, 26, 52, 104, 208, 416, 833, 1666, 3332, 6664 Hz
float OdrHz(uint8_t code);
}  // namespace lsm6dsox

class Lsm6dsox : public Imu {
 public:
  Lsm6dsox(I2cBus* bus, uint8_t addr = 0x6A) : bus_(bus), addr_(addr) {}
  Status Begin() override;
  Status Configure(const Config& cfg) override;
  Status Start() override;
  Status Read(Sample* out, uint32_t max, uint32_t* n) override;
  float rate_hz() const override { return lsm6dsox::OdrHz(odr_); }
  uint32_t overruns() const override { return overruns_; }
  float accel_g_per_lsb() const { return acc_scale_; }
  float gyro_rad_per_lsb() const { return gyro_scale_; }

 private:
  Status Set(uint8_t reg, uint8_t v);
  I2cBus* bus_;
  uint8_t addr_;
  uint8_t odr_ = 0;
  float acc_scale_ = 0, gyro_scale_ = 0;
  bool started_ = false;
  bool have_acc_ = false, have_gyro_ = false;  // the halves of the sample being assembled
  Sample pending_{};
  uint32_t overruns_ = 0;
};

}  // namespace imu
}  // namespace slimhar
