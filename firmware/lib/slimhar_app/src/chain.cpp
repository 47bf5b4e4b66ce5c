#include "chain.h"

namespace slimhar {

void Chain::Init(const Blob& blob) {
  const InputSpec& s = blob.spec();
  n_raw_ = s.n_raw;
  n_channels_ = s.n_channels;
  n_stages_ = s.n_stages;
  for (uint32_t i = 0; i < n_stages_; ++i) blob.GetStage(i, &stages_[i]);
  for (uint32_t i = 0; i < s.n_sos; ++i) blob.GetSos(i, &sos_[i]);
  for (uint32_t c = 0; c < n_channels_; ++c) map_[c] = blob.OutMap(c);
  started_ = false;
}

void Chain::Push(const float* raw, float* out) {
  for (uint32_t c = 0; c < n_raw_; ++c) slots_[c] = raw[c];
  float* st = state_;  // each stage's state follows the previous one's (sizes checked by Blob::Open)
  float x[kSpecMaxSlots], y[kSpecMaxSlots];
  for (uint32_t i = 0; i < n_stages_; ++i) {
    const SpecStage& g = stages_[i];
    const uint32_t n = g.count;
    for (uint32_t j = 0; j < n; ++j) x[j] = slots_[g.src + j];  // read all, then write: stages may overlap
    switch (g.op) {
      case SpecOp::kMedian:  // of the sample and the two before it; history [older, newer] per channel
        for (uint32_t j = 0; j < n; ++j) {
          float* h = st + 2 * j;
          if (!started_) h[0] = h[1] = x[j];
          const float a = h[0], b = h[1], c = x[j];
          const float lo = b < a ? b : a, hi = a < b ? b : a;
          const float m = c < hi ? c : hi;
          y[j] = lo < m ? m : lo;  // max(min(a, b), min(max(a, b), c))
          h[0] = b;
          h[1] = c;
        }
        st += 2 * n;
        break;
      case SpecOp::kSos:  // direct form II transposed, sections in cascade
        for (uint32_t j = 0; j < n; ++j) {
          float v = x[j];
          for (uint32_t k = 0; k < g.arg1; ++k) {
            const SosSection& q = sos_[g.arg0 + k];
            float* z = st + 2 * (j * g.arg1 + k);
            if (!started_) {  // steady state for a constant stage input x[j]
              z[0] = q.zi0 * x[j];
              z[1] = q.zi1 * x[j];
            }
            const float out_k = q.b0 * v + z[0];
            z[0] = (q.b1 * v - q.a1 * out_k) + z[1];
            z[1] = q.b2 * v - q.a2 * out_k;
            v = out_k;
          }
          y[j] = v;
        }
        st += 2u * g.arg1 * n;
        break;
      case SpecOp::kSub:
        for (uint32_t j = 0; j < n; ++j) y[j] = x[j] - slots_[g.src2 + j];
        break;
    }
    for (uint32_t j = 0; j < n; ++j) slots_[g.dst + j] = y[j];
  }
  started_ = true;
  for (uint32_t c = 0; c < n_channels_; ++c) out[c] = slots_[map_[c]];
}

}  // namespace slimhar
