#include "replay.h"

namespace slimhar {
namespace imu {

Status ReplayImu::Configure(const Config& cfg) {
  if (!(cfg.rate_hz > 0.0f && cfg.rate_hz <= 100000.0f)) return Status::kBadConfig;
  rate_hz_ = cfg.rate_hz;  // whatever the host replays at: the recording's rate
  return Status::kOk;
}

Status ReplayImu::Start() {
  started_ = true;
  return Status::kOk;
}

void ReplayImu::Push(const Sample& s) {
  if (!started_) return;
  if (count_ == kCapacity) {  // continuous mode: the oldest goes
    head_ = (head_ + 1) % kCapacity;
    --count_;
    ++overruns_;
  }
  fifo_[(head_ + count_) % kCapacity] = s;
  ++count_;
}

Status ReplayImu::Read(Sample* out, uint32_t max, uint32_t* n) {
  *n = 0;
  if (!started_) return Status::kNotStarted;
  while (*n < max && count_ > 0) {
    out[(*n)++] = fifo_[head_];
    head_ = (head_ + 1) % kCapacity;
    --count_;
  }
  return Status::kOk;
}

}  // namespace imu
}  // namespace slimhar
