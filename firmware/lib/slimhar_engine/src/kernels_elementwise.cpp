// PAD, ADD, GATHER, MAXIMUM: int8 in, int8 out, TFLite reference semantics.
#include <cstring>

#include "kernels.h"
#include "quant_math.h"

namespace slimhar {
namespace kernels {

void PadS8(const PadParams& p, const Dims& in_dims, const int8_t* in, const Dims& out_dims, int8_t* out) {
  const int8_t zp = p.value;
  const uint32_t W = in_dims.w, C = in_dims.c, Wo = out_dims.w, Co = out_dims.c;
  const uint32_t out_size = uint32_t(out_dims.h) * Wo * Co;
  if (Wo == W && Co == C) {
    // padding along H only (every PAD the exporter writes): the input is one block between the
    // padding rows -- one copy instead of a copy per position (1,152 one-byte copies for a
    // one-channel 128 x 9 window)
    const uint32_t row = W * C, top = p.before[0] * row, body = in_dims.h * row;
    std::memset(out, zp, top);
    std::memcpy(out + top, in, body);
    std::memset(out + top + body, zp, out_size - top - body);
    return;
  }
  std::memset(out, zp, out_size);
  for (uint32_t y = 0; y < in_dims.h; ++y) {
    for (uint32_t x = 0; x < W; ++x) {
      std::memcpy(out + ((y + p.before[0]) * Wo + x + p.before[1]) * Co + p.before[2],
                  in + (y * W + x) * C, C);
    }
  }
}

void AddS8(const AddParams& p, uint32_t size, const int8_t* a, const int8_t* b, int8_t* out) {
  constexpr int kLeftShift = 20;
  const int32_t off_a = p.input_offset[0], off_b = p.input_offset[1];
  for (uint32_t i = 0; i < size; ++i) {
    const int32_t sa = q::MulByQuantMulSmallerThanOne((a[i] + off_a) * (1 << kLeftShift), p.mult[0], p.shift[0]);
    const int32_t sb = q::MulByQuantMulSmallerThanOne((b[i] + off_b) * (1 << kLeftShift), p.mult[1], p.shift[1]);
    const int32_t r = q::MulByQuantMulSmallerThanOne(sa + sb, p.mult[2], p.shift[2]) + p.output_offset;
    out[i] = int8_t(q::Clamp(r, p.act_min, p.act_max));
  }
}

void GatherS8(const GatherParams& p, const Dims& in_dims, const int8_t* in, int8_t* out) {
  const uint32_t outer = in_dims.h, dim = in_dims.w, inner = in_dims.c, n = p.n_index;
  for (uint32_t o = 0; o < outer; ++o) {
    for (uint32_t j = 0; j < n; ++j) {
      const uint8_t* ip = p.index + 4 * j;  // validated in Prepare: 0 <= idx < dim
      const uint32_t idx = uint32_t(ip[0]) | (uint32_t(ip[1]) << 8) | (uint32_t(ip[2]) << 16) | (uint32_t(ip[3]) << 24);
      std::memcpy(out + (o * n + j) * inner, in + (o * dim + idx) * inner, inner);
    }
  }
}

void MaximumS8(uint32_t size, const int8_t* a, const int8_t* b, int8_t* out) {
  uint32_t i = 0;
#if SLIMHAR_KERNELS_DSP
  // four lanes at a time: SSUB8 sets a GE flag per byte where a >= b, SEL picks a there
  for (; i + 4 <= size; i += 4) {
    uint32_t va, vb, r;
    std::memcpy(&va, a + i, 4);
    std::memcpy(&vb, b + i, 4);
    asm("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(va), "r"(vb) : "cc");
    std::memcpy(out + i, &r, 4);
  }
#endif
  for (; i < size; ++i) out[i] = a[i] > b[i] ? a[i] : b[i];
}

}  // namespace kernels
}  // namespace slimhar
