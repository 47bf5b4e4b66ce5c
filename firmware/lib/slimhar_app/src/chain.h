// The preprocessing chain of the blob's input spec, run causally on a live stream of raw IMU
// samples (docs/blob-format.md "Input spec", docs/device.md). The host mirror is
// quantize/input_spec.py: run_chain -- the same float32 operations in the same order, so the
// model inputs agree bit for bit (this library is built with -ffp-contract=off: no fused
// multiply-add).
#pragma once
#include <cstdint>

#include "slimhar_blob.h"

namespace slimhar {

class Chain {
 public:
  // Copies the chain out of an opened blob (its spec was validated by Blob::Open).
  void Init(const Blob& blob);
  // The next sample starts every stage afresh: median history and filter state from its value.
  void Reset() { started_ = false; }
  // raw[n_raw] (the sensor's channels, in the spec's order and units) -> out[n_channels]
  void Push(const float* raw, float* out);
  uint32_t raw_channels() const { return n_raw_; }

 private:
  SpecStage stages_[kSpecMaxStages] = {};
  SosSection sos_[kSpecMaxSos] = {};
  uint8_t map_[kSpecMaxChannels] = {};
  uint32_t n_raw_ = 0, n_channels_ = 0, n_stages_ = 0;
  float slots_[kSpecMaxSlots] = {};
  float state_[kSpecMaxState] = {};
  bool started_ = false;
};

}  // namespace slimhar
