// The replay sensor: an Imu whose FIFO is filled from outside -- by `feed` lines over the serial
// link on the emulated board, or by a HIL host replaying a recording on a real one. It behaves
// like a part's FIFO in continuous mode: when full, the oldest sample is overwritten and an
// overrun counted.
#pragma once
#include <cstdint>

#include "imu.h"

namespace slimhar {
namespace imu {

class ReplayImu : public Imu {
 public:
  static constexpr uint32_t kCapacity = 64;  // samples

  Status Begin() override { return Status::kOk; }
  Status Configure(const Config& cfg) override;
  Status Start() override;
  Status Read(Sample* out, uint32_t max, uint32_t* n) override;
  float rate_hz() const override { return rate_hz_; }
  uint32_t overruns() const override { return overruns_; }

  void Push(const Sample& s);  // a sample arrived (dropped unless started)
  void Clear() { head_ = count_ = 0; }
  uint32_t level() const { return count_; }

 private:
  Sample fifo_[kCapacity] = {};
  uint32_t head_ = 0, count_ = 0, overruns_ = 0;
  float rate_hz_ = 0.0f;
  bool started_ = false;
};

}  // namespace imu
}  // namespace slimhar
