// From IMU samples to a subnet's int8 input, exactly as the host reference computes it
// (slimhar.tools.device_ref): samples kept in a ring; a window of the last `window` samples
// resized to the subnet's T' with torch's nearest-exact index rule in float32, normalized as
// (x - mean) / std in float32, quantized as x / scale rounded half to even (as NumPy does; C's
// roundf rounds half away), + zero point, clamped to int8. No fused multiply-add anywhere: this
// file is compiled with -ffp-contract=off (library.json).
#pragma once
#include <cstdint>

namespace slimhar {

class SampleRing {
 public:
  // storage holds capacity x axes floats, caller-owned
  void Init(float* storage, uint32_t capacity, uint32_t axes);
  void Reset() { count_ = 0; }
  void Push(const float* sample);
  uint64_t count() const { return count_; }          // samples pushed since Reset
  bool Has(uint64_t i) const { return i < count_ && count_ - i <= capacity_; }
  const float* At(uint64_t i) const { return buf_ + (i % capacity_) * axes_; }
  uint32_t capacity() const { return capacity_; }
  uint32_t axes() const { return axes_; }

 private:
  float* buf_ = nullptr;
  uint32_t capacity_ = 0, axes_ = 0;
  uint64_t count_ = 0;
};

// Source sample of output step i when `t_in` samples are resized to `t_out`: torch's
// nearest-exact, floor((i + 0.5) * (float(t_in) / float(t_out))) in float32, at most t_in - 1.
uint32_t NearestExactIndex(uint32_t i, uint32_t t_in, uint32_t t_out);

// The int8 model input [t_out, axes] of the window of samples [end - window, end). The ring must
// still hold them (Has(end - window)).
void ModelInput(const SampleRing& ring, uint64_t end, uint32_t window, uint32_t t_out, const float* mean,
                const float* std, float scale, int32_t zp, int8_t* out);

}  // namespace slimhar
