// CONV_2D and FULLY_CONNECTED, portable flavour: the reference loops, int32 accumulators.
#include "kernels.h"
#include "quant_math.h"

#if !SLIMHAR_KERNELS_DSP
namespace slimhar {
namespace kernels {

void Conv(const OpPlan& p, const int8_t* in, int8_t* out, void*) {
  const int32_t in_off = -p.in_zp[0];
  const uint32_t W = p.in_w, I = p.in_c, O = p.out_c;
  const WeightView& w = p.w;
  for (uint32_t y = 0; y < p.out_h; ++y) {
    for (uint32_t x = 0; x < W; ++x) {
      int8_t* dst = out + (y * W + x) * O;
      for (uint32_t o = 0; o < O; ++o) {
        int32_t acc = 0;
        for (uint32_t ky = 0; ky < p.kh; ++ky) {
          const int32_t iy = int32_t(y * p.stride + ky) - p.pad_top;
          if (iy < 0 || iy >= int32_t(p.in_h)) continue;  // SAME padding: the tap is skipped
          const int8_t* xp = in + (uint32_t(iy) * W + x) * I;
          const int8_t* wp = w.base + o * w.out_stride + ky * w.seg_stride;
          for (uint32_t i = 0; i < I; ++i) acc += int32_t(wp[i]) * (int32_t(xp[i]) + in_off);
        }
        acc = q::WrapAdd(q::MulByQuantMul(q::WrapAdd(acc, Bias(p, o)), p.mult[o], p.shift[o]), p.out_zp);
        dst[o] = int8_t(q::Clamp(acc, p.act_min, p.act_max));
      }
    }
  }
}

void FullyConnected(const OpPlan& p, const int8_t* in, int8_t* out, void*) {
  const int32_t in_off = -p.in_zp[0];
  const WeightView& w = p.w;
  for (uint32_t k = 0; k < w.out; ++k) {
    int32_t acc = 0;
    for (uint32_t s = 0; s < w.segs; ++s) {
      const int8_t* wp = w.base + k * w.out_stride + s * w.seg_stride;
      const int8_t* xp = in + s * w.seg_len;
      for (uint32_t i = 0; i < w.seg_len; ++i) acc += int32_t(wp[i]) * (int32_t(xp[i]) + in_off);
    }
    acc = q::WrapAdd(q::MulByQuantMul(q::WrapAdd(acc, Bias(p, k)), p.mult[k], p.shift[k]), p.out_zp);
    out[k] = int8_t(q::Clamp(acc, p.act_min, p.act_max));
  }
}

}  // namespace kernels
}  // namespace slimhar
#endif
