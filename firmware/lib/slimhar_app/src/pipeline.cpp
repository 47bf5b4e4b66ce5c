#include "pipeline.h"

#include <cmath>

namespace slimhar {

void SampleRing::Init(float* storage, uint32_t capacity, uint32_t axes) {
  buf_ = storage;
  capacity_ = capacity;
  axes_ = axes;
  count_ = 0;
}

void SampleRing::Push(const float* s) {
  float* d = buf_ + (count_ % capacity_) * axes_;
  for (uint32_t c = 0; c < axes_; ++c) d[c] = s[c];
  ++count_;
}

uint32_t NearestExactIndex(uint32_t i, uint32_t t_in, uint32_t t_out) {
  const float scale = float(t_in) / float(t_out);
  const float x = (float(i) + 0.5f) * scale;
  const uint32_t k = uint32_t(std::floor(x));
  return k < t_in ? k : t_in - 1;
}

void ModelInput(const SampleRing& ring, uint64_t end, uint32_t window, uint32_t t_out, const float* mean,
                const float* std, float scale, int32_t zp, int8_t* out) {
  const uint32_t axes = ring.axes();
  const uint64_t first = end - window;
  for (uint32_t t = 0; t < t_out; ++t) {
    const float* s = ring.At(first + NearestExactIndex(t, window, t_out));
    for (uint32_t c = 0; c < axes; ++c) {
      const float x = (s[c] - mean[c]) / std[c];
      float q = std::nearbyint(x / scale) + float(zp);  // round half to even (default FP rounding mode)
      q = !(q >= -128.0f) ? -128.0f : (q > 127.0f ? 127.0f : q);  // NaN (a zero std in a blob) -> -128
      out[t * axes + c] = int8_t(q);
    }
  }
}

}  // namespace slimhar
