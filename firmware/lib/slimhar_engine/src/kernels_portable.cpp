// CONV_2D and FULLY_CONNECTED, portable flavour: the reference loops, int32 accumulators.
#include "kernels.h"
#include "quant_math.h"

#if !SLIMHAR_KERNELS_DSP
namespace slimhar {
namespace kernels {

void ConvS8(const ConvParams& params, const ChannelQuant& quant, const Dims& in_dims, const int8_t* in,
            const WeightView& w, const BiasRef& bias, const Dims& out_dims, int8_t* out, void*) {
  // copies: the int8 stores below could alias the callers' structs, which would reload them
  const ConvParams p = params;
  const uint32_t W = in_dims.w, I = in_dims.c, O = out_dims.c, in_h = in_dims.h, out_h = out_dims.h;
  for (uint32_t y = 0; y < out_h; ++y) {
    for (uint32_t x = 0; x < W; ++x) {
      int8_t* dst = out + (y * W + x) * O;
      for (uint32_t o = 0; o < O; ++o) {
        int32_t acc = 0;
        for (uint32_t ky = 0; ky < p.kh; ++ky) {
          const int32_t iy = int32_t(y * p.stride + ky) - p.pad_top;
          if (iy < 0 || iy >= int32_t(in_h)) continue;  // SAME padding: the tap is skipped
          const int8_t* xp = in + (uint32_t(iy) * W + x) * I;
          const int8_t* wp = w.base + o * w.out_stride + ky * w.seg_stride;
          for (uint32_t i = 0; i < I; ++i) acc += int32_t(wp[i]) * (int32_t(xp[i]) + p.input_offset);
        }
        acc = q::WrapAdd(q::MulByQuantMul(q::WrapAdd(acc, Bias(bias, o)), quant.mult[o], quant.shift[o]), p.output_offset);
        dst[o] = int8_t(q::Clamp(acc, p.act_min, p.act_max));
      }
    }
  }
}

void FullyConnectedS8(const FcParams& params, const ChannelQuant& quant, const int8_t* in, const WeightView& w,
                      const BiasRef& bias, int8_t* out, void*) {
  const FcParams p = params;  // a copy, as in ConvS8
  for (uint32_t k = 0; k < w.out; ++k) {
    int32_t acc = 0;
    for (uint32_t s = 0; s < w.segs; ++s) {
      const int8_t* wp = w.base + k * w.out_stride + s * w.seg_stride;
      const int8_t* xp = in + s * w.seg_len;
      for (uint32_t i = 0; i < w.seg_len; ++i) acc += int32_t(wp[i]) * (int32_t(xp[i]) + p.input_offset);
    }
    acc = q::WrapAdd(q::MulByQuantMul(q::WrapAdd(acc, Bias(bias, k)), quant.mult[k], quant.shift[k]), p.output_offset);
    out[k] = int8_t(q::Clamp(acc, p.act_min, p.act_max));
  }
}

}  // namespace kernels
}  // namespace slimhar
#endif
