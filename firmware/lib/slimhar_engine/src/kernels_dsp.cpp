// CONV_2D and FULLY_CONNECTED, Cortex-M4 DSP flavour.
//
// SMLAD multiplies two pairs of int16 and adds both products to an int32: 2 MACs per
// instruction. Operands are packed int16 pairs, so both sides are widened once up front:
//  - the conv input (plus its offset -zp, which fits int16) a tile of whole columns at a time
//    (ConvParams::tile, chosen by Prepare: scratch.h), rows of SAME padding as zeros, channels
//    padded to a multiple of 4 with zeros;
//  - the weights of two output channels at a time (reused by every output position of a tile);
//    or, where that needs less scratch (narrow layers), every pair's weights once, up front, and
//    the input one column at a time (tile kResidentTile).
// Each group of 4 channels is stored as two words (x0,x2) (x1,x3) -- the order SXTB16 produces
// from 4 packed int8 -- on both sides, so the products pair up. The inner loop computes 2
// output channels x 2 positions: per 4 channels, 4 word-pair loads + 8 SMLAD for 16 MACs; a
// tile with an odd number of positions takes its last one alone (2 channels x 1 position) rather
// than computing it twice -- the deep layers of short windows have 3-5 output rows, so a tile of
// 3 columns held 9 positions and paid a tenth of its MACs again.
// Integer sums are exact, so the result is bit-identical to the portable flavour.
#include <cstring>

#include "kernels.h"
#include "quant_math.h"
#include "scratch.h"

#if SLIMHAR_KERNELS_DSP
#include <arm_acle.h>

namespace slimhar {
namespace kernels {
namespace {

inline uint32_t Pack(int32_t lo, int32_t hi) { return (uint32_t(lo) & 0xFFFFu) | (uint32_t(hi) << 16); }

// SXTB16 of the bytes 1 and 3: SXTB16 with its operand rotated by 8 -- one instruction, which
// GCC 12 does not form from __sxtb16(__ror(v, 8)) by itself.
inline int32_t Sxtb16Ror8(uint32_t v) {
  int32_t r;
  asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
  return r;
}

// Two words to p (word aligned), p += 2: one STRD with post-increment.
inline void Store2(uint32_t*& p, uint32_t a, uint32_t b) {
  asm volatile("strd %1, %2, [%0], #8" : "+r"(p) : "r"(a), "r"(b) : "memory");
}

inline uint32_t Load4(const int8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// n (1..3) int8 values as the low bytes of a word, the rest 0: a partial group of 4 read without
// touching the bytes after it
inline uint32_t LoadPartial(const int8_t* p, uint32_t n) {
  uint32_t v = uint8_t(p[0]);
  if (n > 1) v |= uint32_t(uint8_t(p[1])) << 8;
  if (n > 2) v |= uint32_t(uint8_t(p[2])) << 16;
  return v;
}

// n (<= I4) int8 values -> I4/2 words in (x0,x2)(x1,x3) group order, plus `off`, zero padded.
inline void Widen(const int8_t* src, uint32_t n, uint32_t n4, int32_t off, uint32_t* dst) {
  uint32_t i = 0;
  const uint32_t offs = Pack(off, off);
  for (; i + 8 <= n; i += 8) {  // two groups per iteration: the loop's own compare and branch halved
    const uint32_t v = Load4(src + i), u = Load4(src + i + 4);
    Store2(dst, uint32_t(__sadd16(int32_t(__sxtb16(v)), int32_t(offs))),
           uint32_t(__sadd16(int32_t(Sxtb16Ror8(v)), int32_t(offs))));
    Store2(dst, uint32_t(__sadd16(int32_t(__sxtb16(u)), int32_t(offs))),
           uint32_t(__sadd16(int32_t(Sxtb16Ror8(u)), int32_t(offs))));
  }
  for (; i + 4 <= n; i += 4) {
    const uint32_t v = Load4(src + i);
    Store2(dst, uint32_t(__sadd16(int32_t(__sxtb16(v)), int32_t(offs))),
           uint32_t(__sadd16(int32_t(Sxtb16Ror8(v)), int32_t(offs))));
  }
  for (; i < n4; i += 4) {  // the tail group: missing channels are 0 (they add nothing)
    int32_t e[4];
    for (uint32_t k = 0; k < 4; ++k) e[k] = (i + k < n) ? int32_t(src[i + k]) + off : 0;
    *dst++ = Pack(e[0], e[2]);
    *dst++ = Pack(e[1], e[3]);
  }
}

// The widened input is stored column-major: for each column x (sensor axis), its rows one after
// another. The taps of output (y, x) -- kernel rows y*stride .. y*stride+kh-1 of column x -- are
// then ONE contiguous run of kh * I4 values, matching the weights' [kh][I4] layout, so a whole
// dot product is one straight loop.
// Sizes come from scratch.h (Prepare bounded them: they fit 32 bits).
struct ConvGeom {
  uint32_t I4, words_per_pos, rows;
};
inline ConvGeom Geom(const ConvShape& s) {
  ConvGeom g;
  g.I4 = uint32_t(Up4(s.in.c));
  g.words_per_pos = g.I4 / 2;
  g.rows = uint32_t(DspConvRows(s));
  return g;
}

// Where a conv tile's output position reads its patch and writes its outputs, and how to step to
// the next position down a column (the widened input is column-major, the output row-major).
struct PositionSteps {
  uint32_t H, in_row, out_row, in_col, out_col;  // rows; words / bytes to the next row; to the next column
};
struct Position {
  const uint32_t* in;
  int8_t* out;
  uint32_t y;
  const uint32_t* col_in;  // the top of the column
  int8_t* col_out;
  void Next(const PositionSteps& s) {
    if (++y < s.H) {
      in += s.in_row;
      out += s.out_row;
    } else {
      y = 0;
      col_in += s.in_col;
      col_out += s.out_col;
      in = col_in;
      out = col_out;
    }
  }
};

// One group of 4 int8 from each of sa and sb widened to wq (sa's two words, then sb's).
inline void WidenPairGroup(const int8_t* sa, const int8_t* sb, uint32_t*& wq) {
  const uint32_t va = Load4(sa), vb = Load4(sb);
  Store2(wq, uint32_t(__sxtb16(va)), uint32_t(Sxtb16Ror8(va)));
  Store2(wq, uint32_t(__sxtb16(vb)), uint32_t(Sxtb16Ror8(vb)));
}

// `groups` (>= 2) groups of 4 int8 from each of sa and sb (word aligned), widened to wq: per
// group the two words of sa's, then sb's. A tiled conv widens a channel pair's weights once per
// tile, so this runs (tiles x channel pairs) times: two groups at a time, 2 LDRD + 8 SXTB16 +
// 2 STM + SUBS + BNE, 7 instructions a group against 10 for the compiler's loop.
inline void WidenPairRowWords(const int8_t* sa, const int8_t* sb, uint32_t groups, uint32_t*& wq) {
  if (groups & 1u) {
    WidenPairGroup(sa, sb, wq);
    sa += 4;
    sb += 4;
  }
  register const int8_t* r0 asm("r0") = sa;
  register const int8_t* r1 asm("r1") = sb;
  register uint32_t* r2 asm("r2") = wq;
  register uint32_t r3 asm("r3") = groups >> 1;
  asm volatile(
      "1:\n"
      "ldrd r4, r5, [r0], #8\n"
      "ldrd r6, r12, [r1], #8\n"
      "sxtb16 r8, r4\n"
      "sxtb16 r9, r4, ror #8\n"
      "sxtb16 r10, r6\n"
      "sxtb16 r11, r6, ror #8\n"
      "stm r2!, {r8, r9, r10, r11}\n"
      "sxtb16 r8, r5\n"
      "sxtb16 r9, r5, ror #8\n"
      "sxtb16 r10, r12\n"
      "sxtb16 r11, r12, ror #8\n"
      "stm r2!, {r8, r9, r10, r11}\n"
      "subs r3, r3, #1\n"
      "bne 1b\n"
      : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3)
      :
      : "r4", "r5", "r6", "r8", "r9", "r10", "r11", "r12", "cc", "memory");
  wq = r2;
}

// Two output channels' weights (kh rows of I channels), interleaved per channel group:
// a0 a1 b0 b1 | a0 a1 b0 b1 ...
void WidenWeights(const WeightView& w, uint32_t kh, uint32_t I, uint32_t oa, uint32_t ob, uint32_t I4, uint32_t* wq) {
  const uint32_t full = I / 4;
  const int8_t* sa = w.base + oa * w.out_stride;
  const int8_t* sb = w.base + ob * w.out_stride;
  if (full * 4 == I4 && full >= 4 && ((reinterpret_cast<uintptr_t>(w.base) | w.out_stride | w.seg_stride) & 3u) == 0) {
    // whole groups, every row word aligned (LDRD) and long enough for the two-group loop to pay
    for (uint32_t ky = 0; ky < kh; ++ky, sa += w.seg_stride, sb += w.seg_stride) WidenPairRowWords(sa, sb, full, wq);
    return;
  }
  for (uint32_t ky = 0; ky < kh; ++ky, sa += w.seg_stride, sb += w.seg_stride) {
    for (uint32_t g = 0; g < full; ++g) WidenPairGroup(sa + 4 * g, sb + 4 * g, wq);
    if (full * 4 < I4) {  // tail group, zero padded
      uint32_t ta[2], tb[2];
      Widen(sa + 4 * full, I - 4 * full, 4, 0, ta);
      Widen(sb + 4 * full, I - 4 * full, 4, 0, tb);
      wq[0] = ta[0];
      wq[1] = ta[1];
      wq[2] = tb[0];
      wq[3] = tb[1];
      wq += 4;
    }
  }
}

// Two words from p (8-byte aligned), p += 8: one LDRD with post-increment. GCC splits 64-bit
// loads into two LDRs and adds the pointer separately, so this one instruction is spelled out.
#define SLIMHAR_LDRD_POST(lo, hi, p) asm volatile("ldrd %0, %1, [%2], #8" : "=r"(lo), "=r"(hi), "+r"(p) : : "memory")

// One group of 4 input channels in the asm loops below: the channel pair's 4 weight words (LDM
// from r12) into r8-r11, then per position its 2 input words (LDRD from `x`) and 4 SMLAD into
// that position's accumulators of channel a and b.
#define SLIMHAR_ASM_WEIGHTS "ldm r12!, {r8, r9, r10, r11}\n"
#define SLIMHAR_ASM_POSITION(x, acc_a, acc_b)     \
  "ldrd r4, r5, [" x "], #8\n"                     \
  "smlad " acc_a ", r4, r8, " acc_a "\n"           \
  "smlad " acc_a ", r5, r9, " acc_a "\n"           \
  "smlad " acc_b ", r4, r10, " acc_b "\n"          \
  "smlad " acc_b ", r5, r11, " acc_b "\n"

// 2 output channels x 2 positions over one kernel row: `groups` groups of 4 input channels;
// per group 4 LDRD + 8 SMLAD for 16 MACs.
struct Acc4 {
  int32_t a00, a01, a10, a11;  // a<channel><position>
};
#define SLIMHAR_GROUP2X2()                                   \
  do {                                                       \
    uint32_t wa0, wa1, wb0, wb1, x0, x1;                     \
    SLIMHAR_LDRD_POST(wa0, wa1, pw);                         \
    SLIMHAR_LDRD_POST(wb0, wb1, pw);                         \
    SLIMHAR_LDRD_POST(x0, x1, ra);                           \
    a00 = __smlad(int32_t(x0), int32_t(wa0), a00);           \
    a00 = __smlad(int32_t(x1), int32_t(wa1), a00);           \
    a10 = __smlad(int32_t(x0), int32_t(wb0), a10);           \
    a10 = __smlad(int32_t(x1), int32_t(wb1), a10);           \
    SLIMHAR_LDRD_POST(x0, x1, rb);                           \
    a01 = __smlad(int32_t(x0), int32_t(wa0), a01);           \
    a01 = __smlad(int32_t(x1), int32_t(wa1), a01);           \
    a11 = __smlad(int32_t(x0), int32_t(wb0), a11);           \
    a11 = __smlad(int32_t(x1), int32_t(wb1), a11);           \
  } while (0)

// Where a 2 x 2 block's outputs are requantized by its own assembly (Dot2x2 with kFold): layers
// whose every channel fits the first layer's folded requantization (Foldable below: FastRequant's
// bounds and a shift of 2-20 bits, so that C holds the zero point). After the loop,
// per output the SMLAL identity, SSAT, ReLU's clamp and STRB -- 10 instructions -- where the
// compiler's epilogue reloaded each channel's constants and the outputs' addresses from the stack
// around the loop's assembly (~70 instructions a block). Outputs: da[0] da[d] (position a,
// channels a and b), db[0] db[d] (position b); d = 0 for an odd last channel (computed twice,
// the same value stored twice).
struct FoldedChannel {
  int32_t mult, c, rm1;  // C = 2^(r-2) + zp 2^(r-1), r = -shift (2 .. 20)
};
// channel o's constants with the zero point zp folded in (where Foldable holds: below)
inline FoldedChannel Fold(const ChannelQuant& quant, int32_t zp, uint32_t o) {
  const int32_t r = -quant.shift[o];
  return FoldedChannel{quant.mult[o], (int32_t(1) << (r - 2)) + zp * (int32_t(1) << (r - 1)), r - 1};
}
struct FoldedPair {
  FoldedChannel a, b;  // the LDM order below
  int32_t lo;
};
static_assert(sizeof(FoldedPair) == 28, "seven words, as the assembly reads them");
struct FoldedOut {
  const FoldedPair* fp;
  int8_t *da, *db;
  uint32_t d;
};

// The 2 x 2 block: accumulators from *acc, `groups` groups; kFold: then requantized and stored
// as `out` says (the accumulators are not written back). Four groups per iteration (an odd pair
// of groups first), registers pinned so that one LDM fetches the 4 weight words of a group: per
// iteration 4 LDM + 8 LDRD + 32 SMLAD + SUBS + BNE = 46 instructions, 64 MACs. Forced inline: as
// a call (GCC's choice once the loop was unrolled four times) the narrow layers' short dot
// products paid more for the call than the unrolling saved them.
template <bool kFold>
__attribute__((always_inline)) inline void Dot2x2(const uint32_t* pw, const uint32_t* ra, const uint32_t* rb,
                                                  uint32_t groups, Acc4* acc, const FoldedOut& out) {
  int32_t a00 = acc->a00, a01 = acc->a01, a10 = acc->a10, a11 = acc->a11;
  if (groups & 1u) SLIMHAR_GROUP2X2();
  if (!kFold && groups < 2) {
    *acc = Acc4{a00, a01, a10, a11};
    return;
  }
  register int32_t r0 asm("r0") = a00;
  register int32_t r1 asm("r1") = a01;
  register int32_t r2 asm("r2") = a10;
  register int32_t r3 asm("r3") = a11;
  register const uint32_t* r6 asm("r6") = ra;
  register const uint32_t* r7 asm("r7") = rb;
  register const uint32_t* r12 asm("r12") = pw;
  register uint32_t lr asm("lr") = groups >> 1;  // pairs of groups
// one group: both positions (r6: accumulators r0 / r2, r7: r1 / r3), 8 SMLAD
#define SLIMHAR_ASM_GROUP \
  SLIMHAR_ASM_WEIGHTS SLIMHAR_ASM_POSITION("r6", "r0", "r2") SLIMHAR_ASM_POSITION("r7", "r1", "r3")
#define SLIMHAR_ASM_2X2_LOOP                                                                     \
  "lsrs lr, lr, #1\n"                                                                          \
  "bcc 2f\n" SLIMHAR_ASM_GROUP SLIMHAR_ASM_GROUP                                               \
  "2:\n"                                                                                       \
  "beq 3f\n" /* flags still those of LSRS: no pairs of pairs left */                           \
  "1:\n" SLIMHAR_ASM_GROUP SLIMHAR_ASM_GROUP SLIMHAR_ASM_GROUP SLIMHAR_ASM_GROUP "subs lr, lr, #1\n" \
  "bne 1b\n"                                                                                   \
  "3:\n"
// one output: acc -> r4 (constants: r8 mult, r9 C, r10 r - 1, r11 the activation's lower bound)
#define SLIMHAR_ASM_FOLDED_OUTPUT(acc)                          \
  "add r4, r9, " acc ", asr #31\n"   /* hi = C + s */            \
  "and r5, " acc ", #0x80000000\n"                               \
  "orr r5, r5, #0x40000000\n"         /* lo = 2^30 | s << 31 */  \
  "smlal r5, r4, " acc ", r8\n"       /* (hi:lo) += x * m */     \
  "asr r4, r4, r10\n"                                            \
  "ssat r4, #8, r4\n"                                            \
  "cmp r4, r11\n"                                                \
  "it lt\n"                                                      \
  "movlt r4, r11\n"
  if (kFold) {
    asm volatile(SLIMHAR_ASM_2X2_LOOP
                 "ldr r12, %[fp]\n"
                 "ldr r6, %[da]\n"
                 "ldr r7, %[db]\n"
                 "ldr lr, %[d]\n"
                 "ldm r12!, {r8, r9, r10}\n" /* channel a */
                 "ldr r11, [r12, #12]\n"     /* lo */
                 SLIMHAR_ASM_FOLDED_OUTPUT("r0") "strb r4, [r6]\n"
                 SLIMHAR_ASM_FOLDED_OUTPUT("r1") "strb r4, [r7]\n"
                 "ldm r12, {r8, r9, r10}\n"  /* channel b */
                 SLIMHAR_ASM_FOLDED_OUTPUT("r2") "strb r4, [r6, lr]\n"
                 SLIMHAR_ASM_FOLDED_OUTPUT("r3") "strb r4, [r7, lr]\n"
                 : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r6), "+r"(r7), "+r"(r12), "+r"(lr)
                 : [fp] "m"(out.fp), [da] "m"(out.da), [db] "m"(out.db), [d] "m"(out.d)
                 : "r4", "r5", "r8", "r9", "r10", "r11", "cc", "memory");
  } else {
    asm volatile(SLIMHAR_ASM_2X2_LOOP
                 : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r6), "+r"(r7), "+r"(r12), "+r"(lr)
                 :
                 : "r4", "r5", "r8", "r9", "r10", "r11", "cc", "memory");
    *acc = Acc4{r0, r1, r2, r3};
  }
#undef SLIMHAR_ASM_FOLDED_OUTPUT
#undef SLIMHAR_ASM_2X2_LOOP
#undef SLIMHAR_ASM_GROUP
}

// 2 output channels x 1 position: a tile's last position when it has an odd count (the pair
// loop would compute it twice). Per group LDM + LDRD + 4 SMLAD for 8 MACs.
inline void Dot2x1(const uint32_t* pw, const uint32_t* ra, uint32_t groups, int32_t* acc_a, int32_t* acc_b) {
  int32_t a = *acc_a, b = *acc_b;
  if (groups & 1u) {
    uint32_t wa0, wa1, wb0, wb1, x0, x1;
    SLIMHAR_LDRD_POST(wa0, wa1, pw);
    SLIMHAR_LDRD_POST(wb0, wb1, pw);
    SLIMHAR_LDRD_POST(x0, x1, ra);
    a = __smlad(int32_t(x0), int32_t(wa0), a);
    a = __smlad(int32_t(x1), int32_t(wa1), a);
    b = __smlad(int32_t(x0), int32_t(wb0), b);
    b = __smlad(int32_t(x1), int32_t(wb1), b);
  }
  if (groups >= 2) {
    register int32_t r0 asm("r0") = a;
    register int32_t r2 asm("r2") = b;
    register const uint32_t* r6 asm("r6") = ra;
    register const uint32_t* r12 asm("r12") = pw;
    register uint32_t lr asm("lr") = groups >> 1;
#define SLIMHAR_ASM_GROUP1 SLIMHAR_ASM_WEIGHTS SLIMHAR_ASM_POSITION("r6", "r0", "r2")
    asm volatile("1:\n" SLIMHAR_ASM_GROUP1 SLIMHAR_ASM_GROUP1 "subs lr, lr, #1\n"
                 "bne 1b\n"
                 : "+r"(r0), "+r"(r2), "+r"(r6), "+r"(r12), "+r"(lr)
                 :
                 : "r4", "r5", "r8", "r9", "r10", "r11", "cc", "memory");
#undef SLIMHAR_ASM_GROUP1
#undef SLIMHAR_ASM_POSITION
#undef SLIMHAR_ASM_WEIGHTS
    a = r0;
    b = r2;
  }
  *acc_a = a;
  *acc_b = b;
}

// Fully connected: 4 (or 2) classes' int8 weights against the widened input, `segs` runs of
// `groups` groups of 4 inputs in one call. Per group one LDRD of the widened input pair, then per
// class LDR (post-increment) + 2 SXTB16 + 2 SMLAD: 23 instructions for 16 MACs with 4 classes, 13
// for 8 with 2. Between runs (the segments of a narrow subnet's slice, which do not span the pool
// tensor's rows) the weight pointers jump by `jump` bytes and the input by `xskip` (its zero-padded
// last group): 9 instructions a segment inside the loop, where a call a segment cost ~80.
// Registers pinned so that GCC keeps pointers and accumulators out of the stack (its own loop
// spilled them: 32 instructions for 16 MACs). groups >= 1, segs >= 1.
struct FcRuns {
  uint32_t groups, segs, jump, xskip;
};
#define SLIMHAR_ASM_CLASS(acc)               \
  "sxtb16 r12, r11\n"                        \
  "smlad " acc ", r9, r12, " acc "\n"        \
  "sxtb16 r12, r11, ror #8\n"                \
  "smlad " acc ", r10, r12, " acc "\n"
// classes k .. k+3 at w0, w0 + stride, w0 + 2 stride, w0 + 3 stride: two pointers (k, k + 2), each
// reaching its neighbour through the stride register
inline void FcDot4(const uint32_t* xp, const int8_t* w0, uint32_t stride, FcRuns runs, int32_t* acc) {
  register int32_t r0 asm("r0") = acc[0];
  register int32_t r1 asm("r1") = acc[1];
  register int32_t r2 asm("r2") = acc[2];
  register int32_t r3 asm("r3") = acc[3];
  register const uint32_t* r4 asm("r4") = xp;
  register const int8_t* r5 asm("r5") = w0;
  register uint32_t r6 asm("r6") = stride;
  register const int8_t* r7 asm("r7") = w0 + 2 * stride;
  register uint32_t r8 asm("r8") = runs.jump;
  register uint32_t lr asm("lr") = runs.groups;
  asm volatile("1:\n"
               "ldrd r9, r10, [r4], #8\n"
               "ldr r11, [r5, r6]\n" SLIMHAR_ASM_CLASS("r1")
               "ldr r11, [r5], #4\n" SLIMHAR_ASM_CLASS("r0")
               "ldr r11, [r7, r6]\n" SLIMHAR_ASM_CLASS("r3")
               "ldr r11, [r7], #4\n" SLIMHAR_ASM_CLASS("r2")
               "subs lr, lr, #1\n"
               "bne 1b\n"
               "add r5, r5, r8\n"
               "add r7, r7, r8\n"
               "ldr r12, %[xskip]\n"
               "add r4, r4, r12\n"
               "ldr lr, %[groups]\n"
               "ldr r12, %[segs]\n"
               "subs r12, r12, #1\n"
               "str r12, %[segs]\n"
               "bne 1b\n"
               : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r7), "+r"(lr), [segs] "+m"(runs.segs)
               : "r"(r6), "r"(r8), [groups] "m"(runs.groups), [xskip] "m"(runs.xskip)
               : "r9", "r10", "r11", "r12", "cc", "memory");
  acc[0] = r0;
  acc[1] = r1;
  acc[2] = r2;
  acc[3] = r3;
}

inline void FcDot2(const uint32_t* xp, const int8_t* w0, uint32_t stride, FcRuns runs, int32_t* acc) {
  register int32_t r0 asm("r0") = acc[0];
  register int32_t r1 asm("r1") = acc[1];
  register uint32_t r2 asm("r2") = runs.segs;
  register uint32_t r3 asm("r3") = runs.groups;
  register const uint32_t* r4 asm("r4") = xp;
  register const int8_t* r5 asm("r5") = w0;
  register uint32_t r6 asm("r6") = stride;
  register uint32_t r7 asm("r7") = runs.xskip;
  register uint32_t r8 asm("r8") = runs.jump;
  register uint32_t lr asm("lr") = runs.groups;
  asm volatile("1:\n"
               "ldrd r9, r10, [r4], #8\n"
               "ldr r11, [r5, r6]\n" SLIMHAR_ASM_CLASS("r1")
               "ldr r11, [r5], #4\n" SLIMHAR_ASM_CLASS("r0")
               "subs lr, lr, #1\n"
               "bne 1b\n"
               "add r5, r5, r8\n"
               "add r4, r4, r7\n"
               "mov lr, r3\n"
               "subs r2, r2, #1\n"
               "bne 1b\n"
               : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r4), "+r"(r5), "+r"(lr)
               : "r"(r3), "r"(r6), "r"(r7), "r"(r8)
               : "r9", "r10", "r11", "r12", "cc", "memory");
  acc[0] = r0;
  acc[1] = r1;
}
#undef SLIMHAR_ASM_CLASS

// One output channel's requantization, decoded once per channel so the per-output work is
// branch-free: x << left, the rounding doubling high multiply, then TFLite's rounding divide by
// 2^right (mask / threshold precomputed). Same bits as q::MulByQuantMul.
struct ChannelRequant {
  int32_t bias, mult, left, right, mask, half, zp, lo, hi;
  // output channel o of a layer whose output offset and activation range are the same fields of
  // ConvParams and FcParams
  template <typename Params>
  ChannelRequant(const Params& p, const ChannelQuant& quant, const BiasRef& b, uint32_t o) {
    bias = Bias(b, o);
    mult = quant.mult[o];
    const int32_t sh = quant.shift[o];
    left = sh > 0 ? sh : 0;
    right = sh > 0 ? 0 : -sh;
    mask = int32_t((1u << right) - 1u);
    half = mask >> 1;
    zp = p.output_offset;
    lo = p.act_min;
    hi = p.act_max;
  }
  // acc already includes the bias; hi is 127 for every activation Prepare accepts (NONE, RELU)
  int8_t Apply(int32_t acc) const {
    const int32_t x = int32_t(uint32_t(acc) << left);
    const int32_t v = int32_t((int64_t(x) * mult + (int64_t(1) << 30)) >> 31);
    const int32_t r = __ssat(q::WrapAdd((v >> right) + ((v & mask) > half + int32_t(uint32_t(v) >> 31) ? 1 : 0), zp), 8);
    return int8_t(r < lo ? lo : r);
  }
  int8_t operator()(int32_t acc) const { return Apply(q::WrapAdd(acc, bias)); }
};

// The same requantization for a channel whose shift takes the input right by r = 2 .. 31 bits
// and whose multiplier is >= 2^30 (every channel the exporter writes): TFLM's two roundings as
// one 64-bit multiply-accumulate whose high word, shifted right by r - 1, is the result (the
// identity is derived at OneChannelConst below; here the zero point is added after the shift, so
// the high word's addend 2^(r-2) + s stays within 2^29 for every r, and |hi| < 2^31).
struct FastRequant {
  int32_t bias, mult, hi_add, rm1, zp, lo;
  static bool Fits(const ChannelQuant& quant, uint32_t o) {
    return quant.shift[o] <= -2 && quant.shift[o] >= -31 && quant.mult[o] >= (int32_t(1) << 30);
  }
  template <typename Params>
  FastRequant(const Params& p, const ChannelQuant& quant, const BiasRef& b, uint32_t o) {
    const int32_t r = -quant.shift[o];
    bias = Bias(b, o);
    mult = quant.mult[o];
    hi_add = int32_t(1) << (r - 2);
    rm1 = r - 1;
    zp = p.output_offset;
    lo = p.act_min;
  }
  // acc already includes the bias (hi is 127, as for ChannelRequant)
  int8_t Apply(int32_t acc) const {
    const int32_t s = acc >> 31;  // 0 or -1
    const uint64_t add = (uint64_t(uint32_t(hi_add + s)) << 32) | (0x40000000u | (uint32_t(s) << 31));
    const int64_t q = int64_t(add) + int64_t(acc) * mult;  // SMLAL
    const int32_t r = __ssat(q::WrapAdd(int32_t(uint32_t(uint64_t(q) >> 32)) >> rm1, zp), 8);
    return int8_t(r < lo ? lo : r);
  }
};

// ConvS8's arguments, passed whole to its helpers.
struct ConvArgs {
  const ConvParams& p;
  const ChannelQuant& quant;
  const Dims& in;
  const Dims& out;
  const WeightView& w;
  const BiasRef& bias;
  ConvShape shape() const { return ConvShape{p, in, out}; }
  ChannelRequant Requant(uint32_t o) const { return ChannelRequant(p, quant, bias, o); }
};

// Channel-outer, so that the channel's weight words and its requantization constants stay in
// registers across all positions. kKw: patch words known at compile time (0: use kw).
template <uint32_t kKw>
void OneChannelOutputs(const ConvArgs& a, const int16_t* xt, uint32_t rows, const uint32_t* wt, uint32_t kw,
                       int8_t* out) {
  const uint32_t W = a.in.w, O = a.out.c, H = a.out.h, step = a.p.stride, row_out = W * O;  // locals: not
  const uint32_t n = kKw ? kKw : kw;                                    // reloaded after each store
  for (uint32_t o = 0; o < O; ++o) {
    int32_t w[8];
    for (uint32_t k = 0; k < n; ++k) w[k] = int32_t(wt[n * o + k]);
    const ChannelRequant rq = a.Requant(o);
    for (uint32_t x = 0; x < W; ++x) {
      const int16_t* src = xt + x * rows;
      int8_t* dst = out + x * O + o;
      for (uint32_t y = 0; y < H; ++y, src += step, dst += row_out) {
        int32_t acc = rq.bias;
        for (uint32_t k = 0; k < n; ++k) {
          uint32_t v;  // 2-byte aligned: LDR, not LDRD
          std::memcpy(&v, src + 2 * k, 4);
          acc = __smlad(int32_t(v), w[k], acc);
        }
        *dst = rq.Apply(acc);
      }
    }
  }
}

// The first layer's fast path: a channel's 3 weight words (kernel rows 5-6) and its
// requantization folded into 4 constants, 7 words the per-output loop loads with one LDM.
// For a channel whose shift takes the input right by r = 2 .. 20 bits and whose multiplier m is
// >= 2^30 (every channel the exporter writes), TFLM's
//   clamp(RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, m), r) + zp)
// is the high word of ONE 64-bit multiply-accumulate, shifted: with s = x >> 31 (0 or -1),
//   (hi:lo) = (C + s) : (2^30 | s << 31),  (hi:lo) += x * m,  result = hi >> (r - 1),
// C = 2^(r-2) + zp * 2^(r-1). The doubling high multiply's nudge (2^30) and the divide's
// (2^(r-1), minus 1 for a negative product) become one addend to the product, and the floor of
// a floor is the floor of the whole: floor((floor((P + 2^30) / 2^31) + c) / 2^r) = floor((P +
// 2^30 + c 2^31) / 2^(31+r)). "Negative" is the sign of x, not of the doubled product: they
// differ only where the product is 0 or -2^30, which both give 0. |hi| < 2^30 and |C| < 2^27
// keep hi in 32 bits. Channels outside these bounds take ChannelRequant's general loop
// (firmware/test/test_engine runs both against TFLM's arithmetic written out, shifts to -31).
struct OneChannelConst {
  int32_t w[3], bias;  // the LDM's order: r7 .. r12, lr below
  FoldedChannel q;
};
static_assert(sizeof(OneChannelConst) == 4 * DspOneChannelWords(6), "the scratch DspOneChannelWords sizes");

// Whether a layer's O channels can all be requantized with the zero point zp folded into C
// (Fold): FastRequant's bounds, shifts of at most 20 bits and an int8 zero point, so that C and
// the high word stay within 32 bits
inline bool Foldable(const ChannelQuant& quant, uint32_t O, int32_t zp) {
  if (O == 0 || zp < -128 || zp > 127) return false;
  for (uint32_t o = 0; o < O; ++o)
    if (!FastRequant::Fits(quant, o) || quant.shift[o] < -20) return false;
  return true;
}

// One output row: W positions, every channel of each. Position x's patch (3 words of int16
// pairs at src + x * step bytes, 2-byte aligned: LDR, not LDRD) stays in r4-r6 while each
// channel's constants come with one LDM; per output 14 instructions (17 with ReLU's clamp).
// Consecutive positions' outputs are consecutive (O bytes each), so the output pointer just runs
// on. Every register holds a channel's work, so the position loop keeps its own state on the
// stack: 14 instructions a position, where a loop in C around a position's asm reloaded its
// variables for ~30. W >= 1, O >= 1.
inline void OneChannelRow(const OneChannelConst* cs, const int16_t* src, uint32_t step, int8_t* dst, uint32_t O,
                          uint32_t W, int32_t act_min) {
  struct {
    const int16_t* src;
    uint32_t step;
    const OneChannelConst* cs;
    uint32_t O, left;
  } st{src, step, cs, O, W};
  register int8_t* r1 asm("r1") = dst;
  register int32_t r3 asm("r3") = act_min;
#define SLIMHAR_ASM_ONE_CHANNEL_POSITION                                                           \
  "2:\n"                                                                                           \
  "ldr r12, %[src]\n"                                                                              \
  "ldr r4, [r12]\n"                            /* the patch */                                     \
  "ldr r5, [r12, #4]\n"                                                                            \
  "ldr r6, [r12, #8]\n"                                                                            \
  "ldr lr, %[step]\n"                                                                              \
  "add r12, r12, lr\n"                                                                             \
  "str r12, %[src]\n"                                                                              \
  "ldr r0, %[cs]\n"                                                                                \
  "ldr r2, %[O]\n"                                                                                 \
  "add r2, r2, r1\n"                           /* this position's end */                           \
  "1:\n"                                                                                           \
  "ldm r0!, {r7, r8, r9, r10, r11, r12, lr}\n" /* w0 w1 w2 bias mult C r-1 */                       \
  "smlad r10, r4, r7, r10\n"                   /* x = bias + the patch . w */                       \
  "smlad r10, r5, r8, r10\n"                                                                       \
  "smlad r10, r6, r9, r10\n"                                                                       \
  "asr r7, r10, #31\n"                         /* s */                                             \
  "add r12, r12, r7\n"                         /* hi = C + s */                                    \
  "lsl r8, r7, #31\n"                                                                              \
  "orr r8, r8, #0x40000000\n"                  /* lo = 2^30 | s << 31 */                           \
  "smlal r8, r12, r10, r11\n"                  /* (hi:lo) += x * m */                              \
  "asr r12, r12, lr\n"                                                                             \
  "ssat r12, #8, r12\n"
#define SLIMHAR_ASM_ONE_CHANNEL_NEXT                                                               \
  "strb r12, [r1], #1\n"                                                                           \
  "cmp r1, r2\n"                                                                                   \
  "bne 1b\n"                                                                                       \
  "ldr r12, %[left]\n"                                                                             \
  "subs r12, r12, #1\n"                                                                            \
  "str r12, %[left]\n"                                                                             \
  "bne 2b\n"
  if (act_min == -128) {  // NONE: the saturation is the whole clamp
    asm volatile(SLIMHAR_ASM_ONE_CHANNEL_POSITION SLIMHAR_ASM_ONE_CHANNEL_NEXT
                 : "+r"(r1), [src] "+m"(st.src), [left] "+m"(st.left)
                 : "r"(r3), [step] "m"(st.step), [cs] "m"(st.cs), [O] "m"(st.O)
                 : "r0", "r2", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "lr", "cc", "memory");
  } else {  // RELU: at least the zero point (act_min)
    asm volatile(SLIMHAR_ASM_ONE_CHANNEL_POSITION
                 "cmp r12, r3\n"
                 "it lt\n"
                 "movlt r12, r3\n" SLIMHAR_ASM_ONE_CHANNEL_NEXT
                 : "+r"(r1), [src] "+m"(st.src), [left] "+m"(st.left)
                 : "r"(r3), [step] "m"(st.step), [cs] "m"(st.cs), [O] "m"(st.O)
                 : "r0", "r2", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "lr", "cc", "memory");
  }
#undef SLIMHAR_ASM_ONE_CHANNEL_NEXT
#undef SLIMHAR_ASM_ONE_CHANNEL_POSITION
}

// One input channel (the first layer): a position's taps are kh consecutive rows of one
// column, so the input is widened column by column and each patch is kh contiguous int16.
// Weights are widened once for all channels. Kernels of 5-6 rows whose channels all fit the fast
// requantization above run position-outer (the patch in registers, every channel's constants
// loaded in turn); the rest channel-outer (OneChannelOutputs).
__attribute__((noinline)) void ConvOneChannel(const ConvArgs& a, const int8_t* in, int8_t* out, void* scratch) {
  const ConvParams& p = a.p;
  const WeightView& w = a.w;
  const uint32_t W = a.in.w, O = a.out.c, kw = (p.kh + 1u) / 2u;   // words per patch
  const uint32_t rows = uint32_t(DspOneChannelRows(a.shape()));
  int16_t* xt = static_cast<int16_t*>(scratch);                    // [W][rows]
  uint32_t* wt = reinterpret_cast<uint32_t*>(xt + W * rows);        // [O][kw], or [O] OneChannelConst
  const int32_t off = p.input_offset;
  // column x of the input (stride W), plus its offset, between pad_top zero rows and zeros to
  // the end of the column (rows: the padded height rounded up; scratch.h DspOneChannelRows)
  const uint32_t top = p.pad_top, h = a.in.h;
  for (uint32_t x = 0; x < W; ++x) {
    int16_t* col = xt + x * rows;
    for (uint32_t r = 0; r < top; ++r) *col++ = 0;
    const int8_t* src = in + x;
    for (uint32_t r = 0; r < h; ++r, src += W) *col++ = int16_t(*src + off);
    for (uint32_t r = top + h; r < rows; ++r) *col++ = 0;
  }
  const bool fast = kw == 3 && Foldable(a.quant, O, p.output_offset);
  const uint32_t stride_w = fast ? 7 : kw;  // words a channel
  for (uint32_t o = 0; o < O; ++o) {
    const int8_t* src = w.base + o * w.out_stride;
    for (uint32_t k = 0; k < kw; ++k) {
      const int32_t lo = src[(2 * k) * w.seg_stride];
      const int32_t hi = (2 * k + 1 < p.kh) ? src[(2 * k + 1) * w.seg_stride] : 0;
      wt[o * stride_w + k] = Pack(lo, hi);
    }
  }
  if (fast) {
    OneChannelConst* cs = reinterpret_cast<OneChannelConst*>(wt);
    for (uint32_t o = 0; o < O; ++o) {
      cs[o].bias = Bias(a.bias, o);
      cs[o].q = Fold(a.quant, p.output_offset, o);
    }
    if (W == 0) return;
    for (uint32_t y = 0; y < a.out.h; ++y)
      OneChannelRow(cs, xt + y * p.stride, 2 * rows, out + y * W * O, O, W, p.act_min);
  } else if (kw == 3) {  // kernel rows 5-6 (the exporter's k = 6): the patch loop unrolled
    OneChannelOutputs<3>(a, xt, rows, wt, 3, out);
  } else {
    OneChannelOutputs<0>(a, xt, rows, wt, kw, out);
  }
}

// A channel pair's work at the positions of a tile, for ConvS8's pair loop: Two (positions a and b,
// the 2 x 2 micro-kernel), One (a lone last position). Requantized in C (FastRequant or
// ChannelRequant), or -- where the layer allows it -- in the micro-kernel's own assembly.
template <typename Requant>
struct PairBlock {
  Requant ra, rb;
  uint32_t o, ob;
  void Two(const uint32_t* wp, const Position& pa, const Position& pb, uint32_t groups) const {
    Acc4 acc{ra.bias, ra.bias, rb.bias, rb.bias};
    Dot2x2<false>(wp, pa.in, pb.in, groups, &acc, FoldedOut{});
    const int32_t a00 = acc.a00, a01 = acc.a01, a10 = acc.a10, a11 = acc.a11;
    pa.out[o] = ra.Apply(a00);
    pb.out[o] = ra.Apply(a01);
    if (ob != o) {
      pa.out[ob] = rb.Apply(a10);
      pb.out[ob] = rb.Apply(a11);
    }
  }
  void One(const uint32_t* wp, const Position& pa, uint32_t groups) const {
    int32_t acc_a = ra.bias, acc_b = rb.bias;
    Dot2x1(wp, pa.in, groups, &acc_a, &acc_b);
    pa.out[o] = ra.Apply(acc_a);
    if (ob != o) pa.out[ob] = rb.Apply(acc_b);
  }
};
struct FoldedBlock : PairBlock<FastRequant> {
  FoldedPair fp;
  void Two(const uint32_t* wp, const Position& pa, const Position& pb, uint32_t groups) const {
    Acc4 acc{ra.bias, ra.bias, rb.bias, rb.bias};
    Dot2x2<true>(wp, pa.in, pb.in, groups, &acc, FoldedOut{&fp, pa.out + o, pb.out + o, ob - o});
  }
};

}  // namespace

void ConvS8(const ConvParams& p, const ChannelQuant& quant, const Dims& in_dims, const int8_t* in, const WeightView& w,
            const BiasRef& bias, const Dims& out_dims, int8_t* out, void* scratch) {
  const ConvArgs a{p, quant, in_dims, out_dims, w, bias};
  const ConvShape sh = a.shape();
  if (DspOneChannelConv(sh)) {
    ConvOneChannel(a, in, out, scratch);
    return;
  }
  const ConvGeom g = Geom(sh);
  const uint32_t W = in_dims.w, I = in_dims.c, O = out_dims.c, H = out_dims.h, in_h = in_dims.h;
  // resident: every channel pair's weights widened once, up front, and one column at a time;
  // else a tile of columns at a time, the weights of one pair widened for each (scratch.h)
  const bool resident = p.tile == kResidentTile;
  const uint32_t tile = resident ? 1 : p.tile;
  uint32_t* xq = static_cast<uint32_t*>(scratch);
  uint32_t* wq = xq + uint32_t(resident ? DspConvColBytes(sh) : DspConvInBytes(sh, tile)) / 4;
  const uint32_t col_words = g.rows * g.words_per_pos, pair_words = uint32_t(DspConvWeightBytes(sh)) / 4;
  const uint32_t groups = p.kh * (g.I4 / 4);  // one patch: kh rows of I4 channels, contiguous
  bool fast = true;
  for (uint32_t o = 0; o < O; ++o) fast &= FastRequant::Fits(quant, o);
  // the folded requantization (Dot2x2<true>): the first layer's bounds, the zero point in C
  const bool folded = Foldable(quant, O, p.output_offset);
  if (resident)
    for (uint32_t o = 0; o < O; o += 2)
      WidenWeights(w, p.kh, I, o, (o + 1 < O) ? o + 1 : o, g.I4, wq + (o / 2) * pair_words);
  for (uint32_t x0 = 0; x0 < W; x0 += tile) {
    const uint32_t cols = (W - x0 < tile) ? W - x0 : tile, P = H * cols;
    // widen this tile's columns, column-major; SAME-padding rows are zeros (a skipped tap adds nothing)
    for (uint32_t c = 0; c < cols; ++c) {
      uint32_t* col = xq + c * col_words;
      std::memset(col, 0, 4 * p.pad_top * g.words_per_pos);
      for (uint32_t r = 0; r < in_h; ++r)
        Widen(in + (r * W + x0 + c) * I, I, g.I4, p.input_offset, col + (r + p.pad_top) * g.words_per_pos);
      std::memset(col + (p.pad_top + in_h) * g.words_per_pos, 0, 4 * p.pad_bottom * g.words_per_pos);
    }
    const PositionSteps steps{H, p.stride * g.words_per_pos, W * O, col_words, O};
    // every channel pair of the tile, its blocks made by make(o, ob): requantized in the
    // micro-kernel's assembly where every channel of the layer fits the folded requantization,
    // else by FastRequant where every channel fits that, else ChannelRequant -- one instance of
    // the loop each
    auto pairs = [&](auto make) {
      for (uint32_t o = 0; o < O; o += 2) {
        const uint32_t ob = (o + 1 < O) ? o + 1 : o;  // an odd last channel is computed twice, stored once
        const uint32_t* wp = resident ? wq + (o / 2) * pair_words : wq;
        if (!resident) WidenWeights(w, p.kh, I, o, ob, g.I4, wq);
        const auto blk = make(o, ob);
        // positions in pairs down each column of the tile: a = (y, x), then b, the next one down
        // the column or the top of the next; an odd last one alone. The pointers step from one
        // position to the next (a division and six multiplies a pair before). The accumulators
        // start at the bias (int32 sums wrap, as TFLM's do).
        Position pa{xq, out + x0 * O, 0, xq, out + x0 * O};
        for (uint32_t i = 0; i + 1 < P; i += 2) {
          Position pb = pa;
          pb.Next(steps);
          blk.Two(wp, pa, pb, groups);
          pa = pb;
          pa.Next(steps);
        }
        if (P & 1u) blk.One(wp, pa, groups);  // pa is position P - 1
      }
    };
    if (folded) {
      pairs([&](uint32_t o, uint32_t ob) {
        return FoldedBlock{{FastRequant(p, quant, bias, o), FastRequant(p, quant, bias, ob), o, ob},
                           {Fold(quant, p.output_offset, o), Fold(quant, p.output_offset, ob), p.act_min}};
      });
    } else if (fast) {
      pairs([&](uint32_t o, uint32_t ob) {
        return PairBlock<FastRequant>{FastRequant(p, quant, bias, o), FastRequant(p, quant, bias, ob), o, ob};
      });
    } else {
      pairs([&](uint32_t o, uint32_t ob) { return PairBlock<ChannelRequant>{a.Requant(o), a.Requant(ob), o, ob}; });
    }
  }
}

void FullyConnectedS8(const FcParams& p, const ChannelQuant& quant, const int8_t* in, const WeightView& w,
                      const BiasRef& bias, int8_t* out, void* scratch) {
  const uint32_t L4 = uint32_t(Up4(w.seg_len)), wps = L4 / 2;
  const uint32_t tile = p.tile;  // segments widened at a time (Prepare: scratch.h)
  uint32_t* xq = static_cast<uint32_t*>(scratch);
  int32_t* sums = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(scratch) + DspFcInBytes(w, tile));  // one per class
  for (uint32_t k = 0; k < w.out; ++k) sums[k] = 0;
  const uint32_t full = w.seg_len / 4, rest = w.seg_len - 4 * full;
  const int32_t off = p.input_offset;
  for (uint32_t s0 = 0; s0 < w.segs; s0 += tile) {
    const uint32_t s1 = (w.segs - s0 < tile) ? w.segs : s0 + tile;
    for (uint32_t s = s0; s < s1; ++s) Widen(in + s * w.seg_len, w.seg_len, L4, off, xq + (s - s0) * wps);
    // classes four at a time, then two, then one, sharing each widened input pair (FcDot4 /
    // FcDot2); weights are sign-extended on the fly (each is used once). The tile's segments are
    // runs of `full` groups, walked in one call; where a class's slice spans whole rows of the
    // pool tensor and no group straddles segments (the widest subnets), one run
    const bool run = w.seg_stride == w.seg_len && rest == 0;
    const FcRuns runs = run ? FcRuns{full * (s1 - s0), 1, 0, 0}
                            : FcRuns{full, s1 - s0, w.seg_stride - 4 * full, 4 * (wps - 2 * full)};
    // the inputs past the last full group of 4 (none in a run) as one more group a segment: the
    // widened input is zero past seg_len, and only the slice's weight bytes are read
    auto tails = [&](uint32_t k, int32_t acc) {
      for (uint32_t s = s0; rest != 0 && s < s1; ++s) {
        const uint32_t v = LoadPartial(w.base + k * w.out_stride + s * w.seg_stride + 4 * full, rest);
        const uint32_t* xp = xq + (s - s0) * wps + 2 * full;
        acc = __smlad(int32_t(xp[0]), __sxtb16(v), acc);
        acc = __smlad(int32_t(xp[1]), Sxtb16Ror8(v), acc);
      }
      return acc;
    };
    const int8_t* wt = w.base + s0 * w.seg_stride;   // the tile's first segment, class 0
    uint32_t k = 0;
    for (; k + 4 <= w.out; k += 4) {
      int32_t a[4] = {sums[k], sums[k + 1], sums[k + 2], sums[k + 3]};
      if (full != 0) FcDot4(xq, wt + k * w.out_stride, w.out_stride, runs, a);
      for (uint32_t c = 0; c < 4; ++c) sums[k + c] = tails(k + c, a[c]);
    }
    for (; k + 2 <= w.out; k += 2) {
      int32_t a[2] = {sums[k], sums[k + 1]};
      if (full != 0) FcDot2(xq, wt + k * w.out_stride, w.out_stride, runs, a);
      for (uint32_t c = 0; c < 2; ++c) sums[k + c] = tails(k + c, a[c]);
    }
    for (; k < w.out; ++k) {
      int32_t acc = sums[k];
      for (uint32_t s = s0; s < s1; ++s) {
        const int8_t* wp = w.base + k * w.out_stride + s * w.seg_stride;
        const uint32_t* xp = xq + (s - s0) * wps;
        for (uint32_t gi = 0; gi < full; ++gi) {
          const uint32_t v = Load4(wp + 4 * gi);
          acc = __smlad(int32_t(xp[2 * gi]), __sxtb16(v), acc);
          acc = __smlad(int32_t(xp[2 * gi + 1]), Sxtb16Ror8(v), acc);
        }
      }
      sums[k] = tails(k, acc);
    }
  }
  for (uint32_t k = 0; k < w.out; ++k) out[k] = ChannelRequant(p, quant, bias, k)(sums[k]);
}

}  // namespace kernels
}  // namespace slimhar
#endif
