// A register-level fake of the LSM6DSOX that behaves like its datasheet says: WHO_AM_I 0x6C,
// software reset to the register defaults, CTRL1_XL / CTRL2_G full scales with the datasheet's
// sensitivities, the FIFO filled with tagged accelerometer and gyroscope words at the batch
// rates of FIFO_CTRL3 while FIFO_CTRL4 selects continuous mode (the oldest word overwritten
// when full, FIFO_OVR_IA set until FIFO_STATUS2 is read), DIFF_FIFO and FIFO_WTM_IA in
// FIFO_STATUS1/2, INT1 raised by the watermark when INT1_FIFO_TH is set, register auto-increment
// only with CTRL3_C's IF_INC. Time passes only through Advance(). This fake's FIFO holds 512
// words (the part's holds more): the behaviour at the limit is the same.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "imu.h"

class FakeLsm6dsox : public slimhar::imu::I2cBus {
 public:
  static constexpr uint32_t kFifoWords = 512;
  uint8_t address = 0x6A;
  uint8_t who_am_i = 0x6C;
  bool nack = false;               // every transfer fails (a missing part)
  double acc_g[3] = {0, 0, 1};     // what the part senses now
  double gyro_rad[3] = {0, 0, 0};

  FakeLsm6dsox() { Reset(); }

  void Advance(double seconds) {
    const double end = t_ + seconds;
    for (;;) {  // the next conversion of either sensor, in time order
      const double rx = Rate(regs_[0x09] & 0x0F), rg = Rate(regs_[0x09] >> 4);
      const double tx = rx > 0 ? double(n_xl_ + 1) / rx : 1e30, tg = rg > 0 ? double(n_g_ + 1) / rg : 1e30;
      const double next = tx < tg ? tx : tg;
      if (!Continuous() || next > end) break;
      if (tg <= tx) {
        Push(0x01, gyro_rad, GyroLsbPerUnit());
        ++n_g_;
      } else {
        Push(0x02, acc_g, AccLsbPerUnit());
        ++n_xl_;
      }
    }
    t_ = end;
  }
  bool int1() const { return (regs_[0x0D] & 0x08) && count_ >= Watermark(); }
  uint32_t words() const { return count_; }
  uint8_t reg(uint8_t r) const { return regs_[r]; }

  bool Write(uint8_t addr, uint8_t reg, const uint8_t* data, uint32_t n) override {
    if (nack || addr != address) return false;
    for (uint32_t i = 0; i < n; ++i) {
      const uint8_t r = uint8_t(reg + ((regs_[0x12] & 0x04) ? i : 0));
      if (r == 0x0F || r >= 0x3A) continue;  // read-only
      regs_[r] = data[i];
      if (r == 0x12 && (data[i] & 0x01)) Reset();   // SW_RESET: defaults, self-clearing
      if (r == 0x0A && (data[i] & 0x07) == 0) Clear();  // bypass mode empties the FIFO
    }
    return true;
  }

  bool Read(uint8_t addr, uint8_t reg, uint8_t* data, uint32_t n) override {
    if (nack || addr != address) return false;
    for (uint32_t i = 0; i < n; ++i) {
      const uint8_t r = uint8_t(reg + ((regs_[0x12] & 0x04) ? i : 0));
      if (r == 0x78) Pop();  // reading the tag starts the next FIFO word
      data[i] = Value(r);
      if (r == 0x3B) ovr_ = false;  // FIFO_OVR_IA clears once read
    }
    return true;
  }

 private:
  void Reset() {
    std::memset(regs_, 0, sizeof(regs_));
    regs_[0x0F] = who_am_i;
    regs_[0x12] = 0x04;  // IF_INC on by default
    Clear();
  }
  void Clear() {
    head_ = count_ = 0;
    ovr_ = false;
    n_xl_ = n_g_ = 0;
    t_ = 0;
  }
  bool Continuous() const { return (regs_[0x0A] & 0x07) == 0x6; }
  static double Rate(uint8_t code) {
    static const double kHz[11] = {0, 12.5, 26, 52, 104, 208, 416, 833, 1666, 3332, 6664};
    return code <= 10 ? kHz[code] : 0;
  }
  uint32_t Watermark() const { return regs_[0x07] | ((regs_[0x08] & 1u) << 8); }
  double AccLsbPerUnit() const {  // FS_XL: 00 2 g, 01 16 g, 10 4 g, 11 8 g (sensitivity in mg / LSB)
    static const double kMgPerLsb[4] = {0.061, 0.488, 0.122, 0.244};
    return 1000.0 / kMgPerLsb[(regs_[0x10] >> 2) & 3];
  }
  double GyroLsbPerUnit() const {  // FS_G: 125 dps when FS_125, else 250 / 500 / 1000 / 2000 (mdps / LSB)
    static const double kMdps[4] = {8.75, 17.5, 35.0, 70.0};
    const double mdps = (regs_[0x11] & 0x02) ? 4.375 : kMdps[(regs_[0x11] >> 2) & 3];
    return 1000.0 / mdps * 180.0 / 3.14159265358979;  // LSB per rad/s
  }
  void Push(uint8_t tag, const double* v, double lsb_per_unit) {
    uint8_t w[7];
    w[0] = uint8_t(tag << 3);
    for (int a = 0; a < 3; ++a) {
      double x = std::round(v[a] * lsb_per_unit);
      x = x > 32767 ? 32767 : (x < -32768 ? -32768 : x);  // saturates at full scale
      const uint16_t u = uint16_t(int16_t(x));
      w[1 + 2 * a] = uint8_t(u & 0xFF);
      w[2 + 2 * a] = uint8_t(u >> 8);
    }
    if (count_ == kFifoWords) {  // continuous mode: the oldest word goes
      head_ = (head_ + 1) % kFifoWords;
      --count_;
      ovr_ = true;
    }
    std::memcpy(fifo_[(head_ + count_) % kFifoWords], w, 7);
    ++count_;
  }
  void Pop() {
    if (count_ == 0) {
      std::memset(out_, 0, 7);
      return;
    }
    std::memcpy(out_, fifo_[head_], 7);
    head_ = (head_ + 1) % kFifoWords;
    --count_;
  }
  uint8_t Value(uint8_t r) const {
    if (r == 0x3A) return uint8_t(count_ & 0xFF);
    if (r == 0x3B)
      return uint8_t((count_ >= Watermark() && Watermark() ? 0x80 : 0) | (ovr_ ? 0x48 : 0) |
                     (count_ == kFifoWords ? 0x20 : 0) | ((count_ >> 8) & 0x03));
    if (r >= 0x78 && r <= 0x7E) return out_[r - 0x78];
    return regs_[r];
  }

  uint8_t regs_[128];
  uint8_t fifo_[kFifoWords][7];
  uint8_t out_[7] = {};
  uint32_t head_ = 0, count_ = 0;
  bool ovr_ = false;
  uint64_t n_xl_ = 0, n_g_ = 0;
  double t_ = 0;
};
