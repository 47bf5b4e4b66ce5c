// CONV_2D and FULLY_CONNECTED, Cortex-M4 DSP flavour.
//
// SMLAD multiplies two pairs of int16 and adds both products to an int32: 2 MACs per
// instruction. Operands are packed int16 pairs, so both sides are widened once up front:
//  - the conv input (plus its offset -zp, which fits int16) for the whole tensor, rows of
//    SAME padding as zeros, channels padded to a multiple of 4 with zeros;
//  - the weights of two output channels at a time (reused by every output position).
// Each group of 4 channels is stored as two words (x0,x2) (x1,x3) -- the order SXTB16 produces
// from 4 packed int8 -- on both sides, so the products pair up. The inner loop computes 2
// output channels x 2 positions: per 4 channels, 4 word-pair loads + 8 SMLAD for 16 MACs.
// Integer sums are exact, so the result is bit-identical to the portable flavour.
#include <cstring>

#include "kernels.h"
#include "quant_math.h"

#if SLIMHAR_KERNELS_DSP
#include <arm_acle.h>

namespace slimhar {
namespace kernels {
namespace {

inline uint32_t Up4(uint32_t v) { return (v + 3u) & ~3u; }
inline uint32_t Up16(uint32_t v) { return (v + 15u) & ~15u; }

inline uint32_t Pack(int32_t lo, int32_t hi) { return (uint32_t(lo) & 0xFFFFu) | (uint32_t(hi) << 16); }

// rotate right by 8, which GCC folds into SXTB16's operand rotation
inline uint32_t Ror8(uint32_t v) { return (v >> 8) | (v << 24); }

inline uint32_t Load4(const int8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// n (<= I4) int8 values -> I4/2 words in (x0,x2)(x1,x3) group order, plus `off`, zero padded.
inline void Widen(const int8_t* src, uint32_t n, uint32_t n4, int32_t off, uint32_t* dst) {
  uint32_t i = 0;
  const uint32_t offs = Pack(off, off);
  for (; i + 4 <= n; i += 4) {
    const uint32_t v = Load4(src + i);
    *dst++ = uint32_t(__sadd16(int32_t(__sxtb16(v)), int32_t(offs)));
    *dst++ = uint32_t(__sadd16(int32_t(__sxtb16(Ror8(v))), int32_t(offs)));
  }
  for (; i < n4; i += 4) {  // the tail group: missing channels are 0 (they add nothing)
    int32_t e[4];
    for (uint32_t k = 0; k < 4; ++k) e[k] = (i + k < n) ? int32_t(src[i + k]) + off : 0;
    *dst++ = Pack(e[0], e[2]);
    *dst++ = Pack(e[1], e[3]);
  }
}

struct ConvGeom {
  uint32_t I4, words_per_pos, words_per_row, rows;
};
inline ConvGeom Geom(const OpPlan& p) {
  ConvGeom g;
  g.I4 = Up4(p.in_c);
  g.words_per_pos = g.I4 / 2;
  g.words_per_row = g.words_per_pos * p.in_w;
  g.rows = uint32_t(p.in_h) + p.pad_top + p.pad_bottom;
  return g;
}
inline uint32_t InWords(const OpPlan& p) { const ConvGeom g = Geom(p); return g.rows * g.words_per_row; }

// Two output channels' weights, interleaved per channel group: a0 a1 b0 b1 | a0 a1 b0 b1 ...
void WidenWeights(const OpPlan& p, uint32_t oa, uint32_t ob, uint32_t I4, uint32_t* wq) {
  const WeightView& w = p.w;
  uint32_t ta[256], tb[256];  // one kernel row of one channel: up to 512 channels
  for (uint32_t ky = 0; ky < p.kh; ++ky) {
    for (uint32_t part = 0; part < I4; part += 512) {
      const uint32_t n = (p.in_c - part) < 512 ? (p.in_c - part) : 512;
      const uint32_t n4 = Up4(n);
      Widen(w.base + oa * w.out_stride + ky * w.seg_stride + part, n, n4, 0, ta);
      Widen(w.base + ob * w.out_stride + ky * w.seg_stride + part, n, n4, 0, tb);
      for (uint32_t g = 0; g < n4 / 4; ++g) {
        *wq++ = ta[2 * g];
        *wq++ = ta[2 * g + 1];
        *wq++ = tb[2 * g];
        *wq++ = tb[2 * g + 1];
      }
    }
  }
}

inline int8_t Requant(const OpPlan& p, int32_t acc, uint32_t o) {
  acc = q::MulByQuantMul(acc + Bias(p, o), p.mult[o], p.shift[o]) + p.out_zp;
  return int8_t(q::Clamp(acc, p.act_min, p.act_max));
}

}  // namespace

uint32_t OpScratchBytes(const OpPlan& p) {
  if (p.kind == OpKind::kConv) {
    const ConvGeom g = Geom(p);
    return Up16(4 * InWords(p)) + Up16(4 * 2 * p.kh * (g.I4 / 2));
  }
  if (p.kind == OpKind::kFullyConnected) return Up16(4 * p.w.segs * (Up4(p.w.seg_len) / 2));
  return 0;
}

void Conv(const OpPlan& p, const int8_t* in, int8_t* out, void* scratch) {
  const ConvGeom g = Geom(p);
  const uint32_t W = p.in_w, I = p.in_c, O = p.out_c, P = uint32_t(p.out_h) * W;
  uint32_t* xq = static_cast<uint32_t*>(scratch);
  uint32_t* wq = xq + Up16(4 * InWords(p)) / 4;
  // widen the input once; SAME-padding rows are zeros (a skipped tap contributes nothing)
  std::memset(xq, 0, 4 * p.pad_top * g.words_per_row);
  for (uint32_t r = 0; r < p.in_h; ++r)
    for (uint32_t x = 0; x < W; ++x)
      Widen(in + (r * W + x) * I, I, g.I4, -p.in_zp[0], xq + ((r + p.pad_top) * W + x) * g.words_per_pos);
  std::memset(xq + (p.pad_top + p.in_h) * g.words_per_row, 0, 4 * p.pad_bottom * g.words_per_row);

  const uint32_t groups = g.I4 / 4;
  for (uint32_t o = 0; o < O; o += 2) {
    const uint32_t ob = (o + 1 < O) ? o + 1 : o;  // an odd last channel is computed twice, stored once
    WidenWeights(p, o, ob, g.I4, wq);
    for (uint32_t pos = 0; pos < P; pos += 2) {
      const uint32_t pb = (pos + 1 < P) ? pos + 1 : pos;
      const uint32_t ya = pos / W, xa = pos - ya * W, yb = pb / W, xb = pb - yb * W;
      const uint32_t* pa = xq + (ya * p.stride * W + xa) * g.words_per_pos;
      const uint32_t* pbp = xq + (yb * p.stride * W + xb) * g.words_per_pos;
      const uint32_t* pw = wq;
      int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;  // a<channel><position>
      for (uint32_t ky = 0; ky < p.kh; ++ky) {
        const uint32_t* ra = pa + ky * g.words_per_row;
        const uint32_t* rb = pbp + ky * g.words_per_row;
        for (uint32_t k = 0; k < groups; ++k) {
          const uint32_t wa0 = pw[0], wa1 = pw[1], wb0 = pw[2], wb1 = pw[3];
          pw += 4;
          uint32_t x0 = ra[0], x1 = ra[1];
          ra += 2;
          a00 = __smlad(int32_t(x0), int32_t(wa0), a00);
          a00 = __smlad(int32_t(x1), int32_t(wa1), a00);
          a10 = __smlad(int32_t(x0), int32_t(wb0), a10);
          a10 = __smlad(int32_t(x1), int32_t(wb1), a10);
          x0 = rb[0];
          x1 = rb[1];
          rb += 2;
          a01 = __smlad(int32_t(x0), int32_t(wa0), a01);
          a01 = __smlad(int32_t(x1), int32_t(wa1), a01);
          a11 = __smlad(int32_t(x0), int32_t(wb0), a11);
          a11 = __smlad(int32_t(x1), int32_t(wb1), a11);
        }
      }
      int8_t* da = out + pos * O;
      da[o] = Requant(p, a00, o);
      if (ob != o) da[ob] = Requant(p, a10, ob);
      if (pb != pos) {
        int8_t* db = out + pb * O;
        db[o] = Requant(p, a01, o);
        if (ob != o) db[ob] = Requant(p, a11, ob);
      }
    }
  }
}

void FullyConnected(const OpPlan& p, const int8_t* in, int8_t* out, void* scratch) {
  const WeightView& w = p.w;
  const uint32_t L4 = Up4(w.seg_len), wps = L4 / 2;
  uint32_t* xq = static_cast<uint32_t*>(scratch);
  for (uint32_t s = 0; s < w.segs; ++s) Widen(in + s * w.seg_len, w.seg_len, L4, -p.in_zp[0], xq + s * wps);
  const uint32_t full = w.seg_len / 4;
  for (uint32_t k = 0; k < w.out; ++k) {
    int32_t acc = 0;
    for (uint32_t s = 0; s < w.segs; ++s) {
      const int8_t* wp = w.base + k * w.out_stride + s * w.seg_stride;
      const uint32_t* xp = xq + s * wps;
      uint32_t gi = 0;
      for (; gi < full; ++gi) {  // weights widened on the fly: each is used once
        const uint32_t v = Load4(wp + 4 * gi);
        acc = __smlad(int32_t(xp[2 * gi]), __sxtb16(v), acc);
        acc = __smlad(int32_t(xp[2 * gi + 1]), __sxtb16(Ror8(v)), acc);
      }
      for (uint32_t i = 4 * gi; i < w.seg_len; ++i) acc += int32_t(wp[i]) * (int32_t(in[s * w.seg_len + i]) - p.in_zp[0]);
    }
    out[k] = Requant(p, acc, k);
  }
}

}  // namespace kernels
}  // namespace slimhar
#endif
