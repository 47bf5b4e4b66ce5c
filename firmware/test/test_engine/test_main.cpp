// The int8 engine on the embedded blob (default: BasicMotions CNN, every subnet), on the host
// (env host: portable kernels, ASan + UBSan) and on the emulated Cortex-M4F (env mps2_an386,
// DSP kernels): every subnet's logits against TFLM's for the same window (the oracle's outputs
// are embedded at build time, slimhar.tools.golden), int32 wrap-around on extreme biases as
// TFLM does it, and the engine's own contracts -- zero-copy weights, planned arena, what a plan
// promises the kernels, stateless switching, plan-cache eviction, refusals -- plus the planner
// and the requantization helpers on synthetic cases against independent references, and the
// CONV_2D / FULLY_CONNECTED kernels alone on shapes no blob has, against reference loops.
#include <cmath>
#include <cstring>
#if defined(SLIMHAR_HOST_TEST)
#include <vector>
#endif

#include "../check.h"
#include "engine.h"
#include "plan_cache.h"
#include "slimhar_blob.h"
#include "slimhar_golden.h"
#include "slimhar_model.h"
#include <algorithm>

#include "../plan_promises.h"
#include "kernels.h"
#include "planner.h"
#include "quant_math.h"
#include "scratch.h"

using slimhar::EngineStatus;

namespace {
alignas(16) uint8_t g_arena[SLIMHAR_MODEL_ARENA_BYTES + SLIMHAR_MODEL_SCRATCH_BYTES];
slimhar::FullPlan g_slots[2];
slimhar::Plan* const g_slot_ptrs[2] = {&g_slots[0], &g_slots[1]};
int32_t g_mult[2 * SLIMHAR_MODEL_MAX_CHANNELS];
int8_t g_shift[2 * SLIMHAR_MODEL_MAX_CHANNELS];
slimhar::FullPlan g_plan;
int32_t g_mult1[SLIMHAR_MODEL_MAX_CHANNELS];
int8_t g_shift1[SLIMHAR_MODEL_MAX_CHANNELS];
int8_t g_out_a[64], g_out_b[64];

// a deterministic pseudo-random window
void Fill(const slimhar::Plan& p, uint32_t seed) {
  int8_t* x = slimhar::InputOf(p, g_arena);
  for (uint32_t k = 0; k < p.input_size; ++k) {
    seed = seed * 1664525u + 1013904223u;
    x[k] = int8_t(seed >> 24);
  }
}

bool RunInto(const slimhar::Plan& p, uint32_t seed, int8_t* out) {
  Fill(p, seed);
  if (slimhar::Invoke(p, g_arena, sizeof(g_arena)) != EngineStatus::kOk || p.output_size > 64) return false;
  std::memcpy(out, slimhar::OutputOf(p, g_arena), p.output_size);
  return true;
}


// One golden record (firmware/scripts/embed_blob.py: TFLM's logits, slimhar.tools.golden): run
// it and compare bit for bit. extreme: the first conv / fc bias at the ends of the int32 range,
// as the record's model had it in TFLM.
bool MatchesGolden(const slimhar::Blob& blob, uint32_t r) {
  static uint8_t bias[4 * 1024];
  slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
  if (slimhar::PrepareSubnet(blob, slimhar_golden_subnet[r], &g_plan, &store) != EngineStatus::kOk) return false;
  if (slimhar_golden_extreme_bias[r]) {
    for (uint32_t k = 0; k < g_plan.n_ops; ++k) {
      slimhar::OpPlan& op = g_plan.ops[k];
      const slimhar::WeightView* w = slimhar::WeightsOf(op);
      if (w == nullptr) continue;
      if (w->out > 1024) return false;
      for (uint32_t o = 0; o < w->out; ++o) {
        const uint32_t v = (o & 1) ? 0x7FFFFFF0u : 0x80000010u;
        for (int b = 0; b < 4; ++b) bias[4 * o + b] = uint8_t(v >> (8 * b));
      }
      (op.kind == slimhar::OpKind::kConv ? op.conv.bias : op.fc.bias) = slimhar::BiasRef{bias, 4};
      break;
    }
  }
  return RunInto(g_plan, slimhar_golden_seed[r], g_out_a) &&
         std::memcmp(g_out_a, slimhar_golden_logits + slimhar_golden_offset[r], g_plan.output_size) == 0;
}

// Plan cache: with fewer slots than subnets the least recently used plan is replaced, and a
// re-prepared plan gives the outputs it gave before.
void PlanCacheEvicts(const slimhar::Blob& blob) {
  const uint32_t a = 0, b = 1, c = 2;
  slimhar::PlanCache cache(g_slot_ptrs, 2, g_mult, g_shift, SLIMHAR_MODEL_MAX_CHANNELS);
  int8_t first_a[64];
  bool ok = blob.subnet_count() >= 3 && cache.Get(blob, a) && RunInto(*cache.Get(blob, a), 9, first_a);
  ok = ok && cache.Get(blob, b) && cache.Get(blob, a);  // b is now the least recently used
  ok = ok && cache.Get(blob, c) != nullptr;
  const bool evicted_lru = ok && cache.Contains(a) && cache.Contains(c) && !cache.Contains(b) && cache.prepares() == 3;
  ok = ok && cache.Get(blob, b) != nullptr;               // replaces a (used before c)
  const bool second = ok && cache.Contains(b) && cache.Contains(c) && !cache.Contains(a) && cache.prepares() == 4;
  const slimhar::Plan* pa = ok ? cache.Get(blob, a) : nullptr;  // back again: prepared anew
  const bool same = pa && RunInto(*pa, 9, g_out_a) && std::memcmp(first_a, g_out_a, pa->output_size) == 0 &&
                    cache.prepares() == 5;
  EngineStatus st = EngineStatus::kOk;
  const bool held[3] = {cache.Contains(a), cache.Contains(b), cache.Contains(c)};  // a full cache
  const bool bad = cache.Get(blob, blob.subnet_count(), &st) == nullptr && st == EngineStatus::kBadArgs &&
                   held[0] == cache.Contains(a) && held[1] == cache.Contains(b) && held[2] == cache.Contains(c) &&
                   int(held[0]) + int(held[1]) + int(held[2]) == 2;
  // an explicit eviction: the next Get prepares again, now from the stored plan the first proved
  const uint32_t before = cache.prepares();
  cache.Evict(a);
  const slimhar::Plan* again = cache.Contains(a) ? nullptr : cache.Get(blob, a);
  const bool evict = again && cache.prepares() == before + 1 && again->source == slimhar::Plan::Source::kStored &&
                     RunInto(*again, 9, g_out_a) && std::memcmp(first_a, g_out_a, again->output_size) == 0;
  Check("plan_cache_evicts_least_recently_used", evicted_lru && second);
  Check("plan_cache_reprepared_plan_same_outputs", same);
  Check("plan_cache_evicted_plan_comes_back_from_its_stored_plan", evict);
  Check("plan_cache_bad_subnet_refused_keeping_its_plans", bad);
}

// The planner on synthetic lifetimes, against what any valid plan must satisfy (checked pair by
// pair here) and against the hand-computed optimum of small cases.
void PlannerCases() {
  struct Buf { uint32_t first, last, bytes; };
  auto plan = [](const Buf* bufs, uint32_t n, uint32_t* off) -> uint64_t {
    slimhar::Lifetimes life;
    life.Reset(n, n);
    for (uint32_t t = 0; t < n; ++t) {
      if (!life.Define(t, bufs[t].first, bufs[t].bytes)) return 0;
      if (!life.Use(t, bufs[t].last)) return 0;
    }
    return life.Plan(off);
  };
  auto valid = [](const Buf* bufs, uint32_t n, const uint32_t* off, uint64_t arena) {
    bool ok = true;
    for (uint32_t i = 0; i < n; ++i) {
      ok &= off[i] % slimhar::kArenaAlign == 0 && off[i] + uint64_t(bufs[i].bytes) <= arena;
      for (uint32_t j = i + 1; j < n; ++j) {
        const bool live_together = !(bufs[i].last < bufs[j].first || bufs[j].last < bufs[i].first);
        const bool overlap = off[i] < off[j] + bufs[j].bytes && off[j] < off[i] + bufs[i].bytes;
        ok &= !(live_together && overlap);
      }
    }
    return ok;
  };
  uint32_t off[16];
  // a chain x0 -> x1 -> x2 -> x3: only neighbours live together; the optimum is the largest pair
  const Buf chain[4] = {{0, 1, 96}, {1, 2, 160}, {2, 3, 48}, {3, 4, 32}};
  const uint64_t a1 = plan(chain, 4, off);
  const bool chain_ok = valid(chain, 4, off, a1) && a1 == 256;
  // a residual block: x0 lives until the add (op 3) while x1, x2 come and go
  const Buf res[4] = {{0, 3, 64}, {1, 2, 64}, {2, 3, 64}, {3, 4, 64}};
  const uint64_t a2 = plan(res, 4, off);
  const bool res_ok = valid(res, 4, off, a2) && a2 == 192;
  // 12 pseudo-random lifetimes: valid, and no more than the sum of everything
  Buf rnd[12];
  uint32_t seed = 77, sum = 0;
  for (uint32_t t = 0; t < 12; ++t) {
    seed = seed * 1664525u + 1013904223u;
    const uint32_t first = t, last = t + 1 + (seed >> 29);
    rnd[t] = Buf{first, last, 16 + ((seed >> 8) % 400)};
    sum += (rnd[t].bytes + 15u) & ~15u;
  }
  const uint64_t a3 = plan(rnd, 12, off);
  const bool rnd_ok = valid(rnd, 12, off, a3) && a3 <= sum;
  // an op's scratch on the chain (x1 at 0, x0 and then x2 at 160, x3 at 0): during op 3 (x2 at
  // 160-208, x3 at 0-32 alive) 64 bytes fit the gap at 32, 200 bytes go above x2, to 208; during
  // op 1 (x1 and x0 alive, no gap) above both, at 256
  slimhar::Lifetimes chain_life;
  chain_life.Reset(4, 4);
  for (uint32_t t = 0; t < 4; ++t) chain_life.Define(t, chain[t].first, chain[t].bytes), chain_life.Use(t, chain[t].last);
  const bool chain_offsets = chain_life.Plan(off) == 256 && off[0] == 160 && off[1] == 0 && off[2] == 160 && off[3] == 0;
  const bool scratch_ok = chain_offsets && chain_life.PlaceScratch(3, 64) == 32 && chain_life.PlaceScratch(3, 128) == 32 &&
                          chain_life.PlaceScratch(3, 129) == 208 && chain_life.PlaceScratch(3, 200) == 208 &&
                          chain_life.PlaceScratch(1, 16) == 256;
  slimhar::Lifetimes life;
  life.Reset(2, 2);
  const bool refuses = life.Define(0, 0, 8) && !life.Define(0, 1, 8) && !life.Use(1, 1) && !life.Define(5, 0, 8);
  Check("planner_chain_optimal", chain_ok);
  Check("planner_residual_optimal", res_ok);
  Check("planner_random_lifetimes_valid", rnd_ok);
  Check("planner_refuses_bad_tensors", refuses);
  Check("planner_scratch_in_gaps", scratch_ok);
}

// Requantization against TFLM's definitions written out literally in 64-bit / double arithmetic
// (not the engine's shift forms), on edge cases and 20,000 pseudo-random operands.
void RequantCases() {
  auto srdhm_ref = [](int32_t a, int32_t b) -> int32_t {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    const int64_t ab = int64_t(a) * int64_t(b);
    const int64_t nudge = ab >= 0 ? (int64_t(1) << 30) : (1 - (int64_t(1) << 30));
    return int32_t((ab + nudge) / (int64_t(1) << 31));  // C++ division truncates toward zero
  };
  auto rdpot_ref = [](int32_t x, int e) -> int32_t {  // round half away from zero of x / 2^e
    return int32_t(std::round(double(x) / std::ldexp(1.0, e)));
  };
  bool srdhm = srdhm_ref(INT32_MIN, INT32_MIN) == slimhar::q::SatRoundDoublingHighMul(INT32_MIN, INT32_MIN);
  bool rdpot = true, mul = true, qm = true;
  const int32_t edges[] = {0, 1, -1, 2, -2, 3, -3, 1 << 30, -(1 << 30), INT32_MAX, INT32_MIN, INT32_MIN + 1, 12345, -12345};
  for (int32_t a : edges)
    for (int32_t b : edges) srdhm &= slimhar::q::SatRoundDoublingHighMul(a, b) == srdhm_ref(a, b);
  uint32_t s = 1;
  auto next = [&s]() { s = s * 1664525u + 1013904223u; return s; };
  for (int k = 0; k < 20000; ++k) {
    const int32_t a = int32_t(next()), b = int32_t(next());
    srdhm &= slimhar::q::SatRoundDoublingHighMul(a, b) == srdhm_ref(a, b);
    const int e = int(next() % 32);
    const int32_t xs = a >> (next() % 16);
    rdpot &= slimhar::q::RoundingDivideByPOT(xs, e) == rdpot_ref(xs, e);
    // a multiplier in [2^30, 2^31) and a shift in [-31, 7]; a small accumulator (|x| < 2^24)
    const int32_t m = int32_t((1u << 30) | (next() >> 2)), sh = int32_t(next() % 39) - 31;
    const int32_t x = int32_t(next()) >> 8;
    const int32_t left = sh > 0 ? sh : 0, right = sh > 0 ? 0 : -sh;
    const int32_t ref = rdpot_ref(srdhm_ref(int32_t(uint32_t(x) << left), m), right);
    mul &= (uint64_t(x < 0 ? -int64_t(x) : x) << left) < (uint64_t(1) << 31) ? slimhar::q::MulByQuantMul(x, m, sh) == ref : true;
    // QuantizeMultiplier: mult * 2^(shift - 31) is the real number to within half a unit of mult
    const double real = std::ldexp(double(next() % 1000000 + 1) / 1e6, int(next() % 40) - 30);
    int32_t qmult = 0;
    int qshift = 0;
    if (slimhar::q::QuantizeMultiplier(real, &qmult, &qshift) && qmult == 0) {
      qm &= qshift == 0 && real < std::ldexp(1.0, -32);  // below TFLM's smallest shift: zero
    } else if (qmult != 0) {
      const double back = std::ldexp(double(qmult), qshift - 31);
      qm &= qmult >= (1 << 30) && std::fabs(back - real) <= std::ldexp(0.5, qshift - 31) * 1.0000001;
    } else {
      qm &= real >= std::ldexp(1.0, 30);  // refused only when the multiplier would not fit
    }
  }
  int32_t m1 = 0, m2 = 0;
  int s1 = 0, s2 = 0;
  qm &= slimhar::q::QuantizeMultiplier(0.5, &m1, &s1) && m1 == (1 << 30) && s1 == 0;
  qm &= slimhar::q::QuantizeMultiplier(1.0, &m2, &s2) && m2 == (1 << 30) && s2 == 1;
  qm &= !slimhar::q::QuantizeMultiplier(-1.0, &m1, &s1) && !slimhar::q::QuantizeMultiplier(NAN, &m1, &s1);
  Check("requant_doubling_high_mul_as_tflm", srdhm);
  Check("requant_rounding_divide_as_tflm", rdpot);
  Check("requant_multiply_as_tflm", mul);
  Check("requant_quantize_multiplier", qm);
}

// The CONV_2D and FULLY_CONNECTED kernels alone (kernels.h: their arguments explicit, no plan),
// on shapes the blobs never have -- odd channel counts, one input channel, stride 2 and 3, SAME
// and VALID, weights a strided slice of a larger tensor, int16 and int32 biases, ReLU -- against
// a reference written out here: direct loops, the requantization helpers checked above. In QEMU
// this runs the DSP kernels (tiles, resident weights, pairs of channels and positions, the
// one-channel path, the fc's class groups) in the scratch their Dsp*ScratchBytes twins size, on
// the host the portable ones.
struct RefQuant {
  slimhar::BiasRef bias;
  slimhar::ChannelQuant quant;
  int32_t input_offset, output_offset, act_min, act_max;
  int32_t Requant(uint32_t o, int32_t acc) const {
    acc = slimhar::q::WrapAdd(acc, slimhar::kernels::Bias(bias, o));
    acc = slimhar::q::WrapAdd(slimhar::q::MulByQuantMul(acc, quant.mult[o], quant.shift[o]), output_offset);
    return slimhar::q::Clamp(acc, act_min, act_max);
  }
};

// A kernel called with g_arena as its scratch writes nothing past the bytes its *ScratchBytes
// twin gives (the 512 bytes after them hold a pattern that must survive the call), and reads
// nothing there it did not write first (the scratch itself starts as a non-zero pattern, so a
// padding row or tail it forgets to clear shows in the outputs).
template <typename Call>
bool CallKeepsToScratch(uint32_t used, Call call) {
  std::memset(g_arena, 0x5A, used);
  const uint32_t n = uint32_t(sizeof(g_arena)) - used < 512 ? uint32_t(sizeof(g_arena)) - used : 512;
  std::memset(g_arena + used, 0xA5, n);
  call();
  for (uint32_t i = 0; i < n; ++i)
    if (g_arena[used + i] != 0xA5) return false;
  return true;
}

void KernelCases() {
  static int8_t x[24 * 12 * 72], w[10 * 7 * 80], got[96 * 12 * 10], want[96 * 12 * 10];
  static uint8_t bias[4 * 10];
  static int32_t mult[10];
  static int8_t shift[10];
  uint32_t seed = 7;
  auto next = [&seed]() { seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5; return seed; };
  auto fill = [&](int8_t* v, uint32_t n) { for (uint32_t i = 0; i < n; ++i) v[i] = int8_t(next()); };
  // wide: the one-channel conv's fast requantization (kernels_dsp.cpp OneChannelConst) -- shifts
  // down to -31, multipliers of exactly 2^30 among them, int32 biases over the whole range. deep:
  // the same, with one channel's shift below -20 (FastRequant without the zero point folded)
  auto quant = [&](uint32_t n, bool wide = false, bool deep = false) {
    RefQuant r;
    r.bias.bytes = (wide || (next() & 1)) ? 4 : 2;
    for (uint32_t o = 0; o < n; ++o) {
      const int32_t b = wide && (next() & 1) ? int32_t(next()) : int32_t(next() % 40001) - 20000;  // else fits int16
      for (uint32_t k = 0; k < r.bias.bytes; ++k) bias[r.bias.bytes * o + k] = uint8_t(uint32_t(b) >> (8 * k));
      mult[o] = (wide && next() % 4 == 0) ? int32_t(1u << 30) : int32_t((1u << 30) | (next() >> 2));
      // wide: -2 .. -20, now and then one the fast path leaves to the general loop (-21 .. -31)
      shift[o] = !wide ? int8_t(-int32_t(next() % 12) + 1)  // 1 .. -10
                       : int8_t(next() % 16 ? -2 - int32_t(next() % 19) : -21 - int32_t(next() % 11));
    }
    if (deep) shift[next() % n] = int8_t(-21 - int32_t(next() % 11));
    r.bias.data = (next() % 8) ? bias : nullptr;
    r.quant = slimhar::ChannelQuant{mult, shift};
    r.input_offset = 128 - int32_t(next() % 256);         // minus a zero point in [-128, 127]
    r.output_offset = int32_t(next() % 256) - 128;
    r.act_max = 127;
    r.act_min = (next() & 1) ? r.output_offset : -128;     // ReLU or none
    return r;
  };
  bool conv_ok = true, fc_ok = true;
  uint32_t convs = 0, fcs = 0, resident = 0, one_fast = 0, folded = 0, fast = 0;
  for (int t = 0; t < 200; ++t) {
    slimhar::Dims in{}, out{};
    slimhar::ConvParams p{};
    in.c = uint16_t((t % 4 == 0) ? 1 : 1 + next() % 70);
    in.h = uint16_t(1 + next() % ((t % 5 == 3) ? 96 : 24));   // every fifth a tall column
    in.w = out.w = uint16_t(1 + next() % 12);
    if (uint32_t(in.h) * in.w * in.c > sizeof(x)) in.c = uint16_t(sizeof(x) / (uint32_t(in.h) * in.w));
    p.kh = uint8_t(1 + next() % 7);
    const bool wide = in.c == 1 && t % 8 == 0;  // every other one-channel case: 5-6 rows, the fast requantization
    if (wide) p.kh = uint8_t(5 + next() % 2);
    p.stride = uint8_t(1 + next() % 3);
    out.c = uint16_t(1 + next() % 10);
    const bool same = next() & 1;
    if (!same && in.h < p.kh) in.h = p.kh;
    out.h = uint16_t(same ? (in.h + p.stride - 1) / p.stride : (in.h - p.kh) / p.stride + 1);
    const int32_t pad = same ? std::max(0, (out.h - 1) * p.stride + p.kh - in.h) : 0;
    p.pad_top = uint8_t(pad / 2);
    p.pad_bottom = uint8_t(pad - pad / 2);
    const uint32_t I_all = in.c + next() % 10;            // the weights: a slice of a wider tensor
    const slimhar::WeightView wv{w, uint32_t(p.kh) * I_all, I_all, out.c, p.kh, in.c};
    const uint32_t out_size = uint32_t(out.h) * out.w * out.c;
    const bool deep = in.c > 1 && t % 4 == 2;  // the general conv's fast requantization, unfolded
    const RefQuant r = quant(out.c, wide || deep, deep);
    p.input_offset = r.input_offset;
    p.output_offset = r.output_offset;
    p.act_min = r.act_min;
    p.act_max = r.act_max;
    p.tile = uint16_t((next() % 3 == 0) ? 0 : 1 + next() % in.w);   // 0: the weights kept (scratch.h)
    if (slimhar::kernels::DspConvScratchBytes(p, in, out) > sizeof(g_arena)) continue;
    fill(x, uint32_t(in.h) * in.w * in.c);
    fill(w, uint32_t(out.c) * wv.out_stride);
    for (uint32_t y = 0; y < out.h; ++y)
      for (uint32_t c = 0; c < out.w; ++c)
        for (uint32_t o = 0; o < out.c; ++o) {
          int32_t acc = 0;
          for (uint32_t ky = 0; ky < p.kh; ++ky) {
            const int32_t iy = int32_t(y * p.stride + ky) - p.pad_top;
            if (iy < 0 || iy >= in.h) continue;
            for (uint32_t i = 0; i < in.c; ++i)
              acc += int32_t(w[o * wv.out_stride + ky * I_all + i]) * (x[(uint32_t(iy) * in.w + c) * in.c + i] + r.input_offset);
          }
          want[(y * out.w + c) * out.c + o] = int8_t(r.Requant(o, acc));
        }
    std::memset(got, 0x55, out_size);
    const uint32_t used = uint32_t(slimhar::kernels::DspConvScratchBytes(p, in, out));
    conv_ok &= CallKeepsToScratch(used, [&] { slimhar::kernels::ConvS8(p, r.quant, in, x, wv, r.bias, out, got, g_arena); });
    conv_ok &= std::memcmp(got, want, out_size) == 0;
    ++convs;
    resident += in.c > 1 && p.tile == 0;
    one_fast += wide;
    // every channel within kernels_dsp.cpp FastRequant (the two roundings folded), and within 20
    // bits of shift too (the zero point folded as well: kernels_dsp.cpp Foldable, Dot2x2<true>)
    bool fits = true, near = true;
    for (uint32_t o = 0; o < out.c; ++o) {
      fits &= shift[o] <= -2 && mult[o] >= (1 << 30);
      near &= shift[o] >= -20;
    }
    folded += in.c > 1 && fits && near;
    fast += in.c > 1 && fits && !near;
  }
  for (int t = 0; t < 120; ++t) {
    const uint32_t segs = 1 + next() % 8, len = (t % 3 == 0) ? 4 * (1 + next() % 16) : 1 + next() % 70;
    const uint32_t stride = (t % 3 == 0) ? len : len + next() % 9;   // whole rows: the fc's one-run path
    const uint32_t classes = 1 + next() % 10;
    const slimhar::WeightView wv{w, segs * stride, stride, uint16_t(classes), uint16_t(segs), uint16_t(len)};
    const RefQuant r = quant(classes);
    const slimhar::FcParams p{r.input_offset, r.output_offset, r.act_min, r.act_max, uint16_t(1 + next() % segs)};
    if (slimhar::kernels::DspFcScratchBytes(p, wv) > sizeof(g_arena)) continue;
    fill(x, segs * len);
    fill(w, classes * segs * stride);
    for (uint32_t k = 0; k < classes; ++k) {
      int32_t acc = 0;
      for (uint32_t s = 0; s < segs; ++s)
        for (uint32_t i = 0; i < len; ++i) acc += int32_t(w[k * segs * stride + s * stride + i]) * (x[s * len + i] + r.input_offset);
      want[k] = int8_t(r.Requant(k, acc));
    }
    std::memset(got, 0x55, classes);
    const uint32_t used = uint32_t(slimhar::kernels::DspFcScratchBytes(p, wv));
    fc_ok &= CallKeepsToScratch(used, [&] { slimhar::kernels::FullyConnectedS8(p, r.quant, x, wv, r.bias, got, g_arena); });
    fc_ok &= std::memcmp(got, want, classes) == 0;
    ++fcs;
  }
  // both ways of running a general conv in the DSP flavour (scratch.h: tiles of any width, resident
  // weights), its three ways of requantizing (in the micro-kernel's assembly, FastRequant,
  // ChannelRequant), and the one-channel conv's fast path
  Check("conv_kernel_equals_reference_loops", conv_ok && convs >= 150 && resident >= 20 && convs - resident >= 60 &&
                                                  one_fast >= 20 && folded >= 20 && fast >= 20 &&
                                                  convs - one_fast - folded - fast >= 20);
  Check("fc_kernel_equals_reference_loops", fc_ok && fcs >= 100);
}

// The arena a firmware built for the least RAM (`export-c --least-ram`) gives every plan as its
// Plan::ram_limit: the largest of the subnets' least arena + scratch (prepared with limit 1).
uint32_t LeastRamLimit(const slimhar::Blob& blob) {
  uint64_t most = 0;
  for (uint32_t i = 0; i < blob.subnet_count(); ++i) {
    slimhar::FullPlan p;
    p.ram_limit = 1;
    slimhar::QuantStore st{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    if (slimhar::PrepareSubnet(blob, i, &p, &st) != EngineStatus::kOk) return 0;
    if (p.arena_bytes + uint64_t(p.dsp_scratch_bytes) > most) most = p.arena_bytes + uint64_t(p.dsp_scratch_bytes);
  }
  return uint32_t(most);
}

#if defined(SLIMHAR_HOST_TEST)
void WrCrc(std::vector<uint8_t>& b) {
  static const uint8_t z[4] = {0, 0, 0, 0};
  uint32_t c = slimhar::Crc32(b.data(), 16);
  c = slimhar::Crc32(z, 4, c);
  c = slimhar::Crc32(b.data() + 20, b.size() - 20, c);
  for (int i = 0; i < 4; ++i) b[16 + i] = uint8_t(c >> (8 * i));
}
uint32_t Rd32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }
void Wr32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i)); }

// Damaged flatbuffers inside a blob with a valid CRC. A refusal leaves no half-made plan and no
// multipliers taken; what Prepare accepts (a changed scale or bias value is still a well-formed
// model) keeps every promise to the kernels of both flavours (plan_promises.h) and runs (under
// ASan + UBSan here). Damage to the flatbuffer's root offset or identifier is always refused.
void DamagedModels(const slimhar::Blob& blob) {
  // the subnet whose flatbuffer comes last in the model region: packed first, it shares nothing
  // written for another, so its bytes are exactly what it reads (docs/blob-format.md)
  slimhar::SubnetInfo s;
  uint32_t k = 0;
  for (uint32_t i = 0; i < blob.subnet_count(); ++i) {
    slimhar::SubnetInfo x;
    blob.GetSubnet(i, &x);
    blob.GetSubnet(k, &s);
    if (x.model > s.model) k = i;
  }
  blob.GetSubnet(k, &s);
  const size_t at = size_t(s.model - slimhar_model);
  std::vector<uint8_t> good(slimhar_model, slimhar_model + SLIMHAR_MODEL_SIZE);
  uint32_t accepted = 0, refused = 0;
  bool clean_refusals = true, promises = true, runs = true, header_refused = true;
  for (size_t i = 0; i < s.model_size; i += 3) {
    for (uint8_t x : {uint8_t(0xFF), uint8_t(0x80)}) {
      std::vector<uint8_t> b = good;
      b[at + i] ^= x;
      WrCrc(b);
      slimhar::Blob bad;
      if (bad.Open(b.data(), b.size()) != slimhar::BlobStatus::kOk) continue;
      slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
      const EngineStatus st = slimhar::PrepareSubnet(bad, k, &g_plan, &store);
      if (st != EngineStatus::kOk) {
        ++refused;
        clean_refusals &= g_plan.n_ops == 0 && store.used == 0;
        continue;
      }
      ++accepted;
      header_refused &= i >= 8;
      promises &= slimhar::test::PlanKeepsPromises(g_plan);
      if (g_plan.arena_total() <= sizeof(g_arena)) {
        Fill(g_plan, 7);
        runs &= slimhar::Invoke(g_plan, g_arena, sizeof(g_arena)) == EngineStatus::kOk;
      }
    }
  }
  Check("damaged_models_refused_cleanly", clean_refusals && refused > 0);
  Check("damaged_models_accepted_keep_promises", promises && runs && accepted > 0);
  Check("damaged_root_or_identifier_refused", header_refused);

  // a damaged multiplier table: a count that does not fit the model (values out of TFLM's range
  // are refused by Blob::Open: test_blob)
  {
    const uint32_t entry0 = Rd32(good.data() + 24);
    const uint32_t qn = Rd32(good.data() + entry0 + 56);
    auto prep = [&](std::vector<uint8_t>& b) {
      WrCrc(b);
      slimhar::Blob x;
      if (x.Open(b.data(), b.size()) != slimhar::BlobStatus::kOk) return EngineStatus::kBadArgs;
      slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
      const EngineStatus st = slimhar::PrepareSubnet(x, 0, &g_plan, &store);
      return (st != EngineStatus::kOk && store.used != 0) ? EngineStatus::kBadArgs : st;  // refusals leave the store
    };
    const uint32_t qoff = Rd32(good.data() + entry0 + 52);
    std::vector<uint8_t> b = good;
    // one channel short, its values valid (the first qn - 1 multipliers, then their shifts):
    // Blob::Open accepts it, Prepare runs out of multipliers
    Wr32(b.data() + entry0 + 56, qn - 1);
    std::memmove(b.data() + qoff + 4 * (qn - 1), good.data() + qoff + 4 * qn, qn - 1);
    const EngineStatus short_table = prep(b);
    b = good;
    Wr32(b.data() + entry0 + 56, qn + 1);               // one channel too many: refused by either reader
    const EngineStatus long_table = prep(b);
    b = good;
    Wr32(b.data() + entry0 + 56, 0);    // no table: the weight scales to compute them are the table's
    const EngineStatus none = prep(b);
    Check("damaged_multipliers_refused", short_table == EngineStatus::kBadTensor && long_table != EngineStatus::kOk);
    Check("no_multiplier_table_refused", none == EngineStatus::kBadTensor);
  }

  // a blob at an address that is not 4-byte aligned: its multipliers are copied into the
  // caller's store, which must have room for them
  {
    std::vector<uint8_t> shifted(good.size() + 1);
    std::memcpy(shifted.data() + 1, good.data(), good.size());
    slimhar::Blob x;
    slimhar::QuantStore tiny{g_mult1, g_shift1, 3}, room{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    const bool opened = x.Open(shifted.data() + 1, good.size()) == slimhar::BlobStatus::kOk;
    Check("full_store_refused", opened && slimhar::PrepareSubnet(x, k, &g_plan, &tiny) == EngineStatus::kTooLarge &&
                                    tiny.used == 0);
    Check("unaligned_blob_multipliers_copied", opened && slimhar::PrepareSubnet(x, k, &g_plan, &room) == EngineStatus::kOk &&
                                                   room.used == s.n_mults &&
                                                   std::memcmp(g_mult1, s.mults, 4u * s.n_mults) == 0);
  }

  // a truncated model (the subnet table's model size cut short): the whole one prepares, every
  // shorter one is refused
  const uint32_t entry = Rd32(good.data() + 24) + 64 * k;  // subnet table: entry k, model size at +40
  bool whole = false, prefixes = true;
  for (uint32_t n = 9; n <= s.model_size; n = (n + 7 < s.model_size || n == s.model_size) ? n + 7 : s.model_size) {
    std::vector<uint8_t> b = good;
    Wr32(b.data() + entry + 40, n);
    WrCrc(b);
    slimhar::Blob cut;
    slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    const bool ok = cut.Open(b.data(), b.size()) == slimhar::BlobStatus::kOk &&
                    slimhar::PrepareSubnet(cut, k, &g_plan, &store) == EngineStatus::kOk;
    if (n == s.model_size) {
      whole = ok;
      break;
    }
    prefixes &= !ok;
  }
  Check("whole_model_prepares", whole);
  Check("truncated_models_refused", prefixes);
}

// Every byte of the plan at [at, at + size) of the embedded blob changed in turn (two bit flips,
// the CRC fixed) and subnet k prepared under ram_limit with fresh proofs: each damaged blob is
// refused (a size field) or prepares from the flatbuffer with the outputs `want`, its stored plan
// found to differ, and a second prepare does not take it.
struct Damaged {
  bool noticed, kept, never_used;
};
Damaged DamageEachByte(uint32_t k, uint32_t at, uint32_t size, uint32_t ram_limit, const int8_t* want) {
  const std::vector<uint8_t> good(slimhar_model, slimhar_model + SLIMHAR_MODEL_SIZE);
  Damaged d{true, true, true};
  g_plan.ram_limit = ram_limit;
  for (uint32_t i = 0; i < size; ++i) {
    for (uint8_t flip : {uint8_t(0x01), uint8_t(0x80)}) {
      std::vector<uint8_t> b = good;
      b[at + i] ^= flip;
      WrCrc(b);
      slimhar::Blob damaged;
      if (damaged.Open(b.data(), b.size()) != slimhar::BlobStatus::kOk) continue;  // its size field: refused
      slimhar::PlanProofs proofs;
      slimhar::QuantStore st{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
      const bool ok = slimhar::PrepareSubnet(damaged, k, &g_plan, &st, true, &proofs) == EngineStatus::kOk;
      d.noticed &= ok && g_plan.stored_proof == slimhar::Plan::StoredProof::kDiffers;
      d.kept &= ok && RunInto(g_plan, 5, g_out_a) && std::memcmp(want, g_out_a, g_plan.output_size) == 0;
      st.used = 0;
      const bool again = slimhar::PrepareSubnet(damaged, k, &g_plan, &st, true, &proofs) == EngineStatus::kOk;
      d.never_used &= again && g_plan.source == slimhar::Plan::Source::kComputed;
    }
  }
  g_plan.ram_limit = 0;
  return d;
}

// A stored plan is used only once proven: every byte of the widest subnet's stored plan damaged
// (DamageEachByte, no limit); then every byte of a least-RAM plan (the first subnet that has one),
// prepared at the limit it was made for.
void DamagedStoredPlans(const slimhar::Blob& blob) {
  const uint32_t k = blob.subnet_count() - 1;
  slimhar::SubnetInfo s;
  blob.GetSubnet(k, &s);
  slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
  int8_t want[64];
  const bool base = s.plan != nullptr && slimhar::PrepareSubnet(blob, k, &g_plan, &store) == EngineStatus::kOk &&
                    RunInto(g_plan, 5, want);
  const Damaged d = base ? DamageEachByte(k, uint32_t(s.plan - slimhar_model), s.plan_size, 0, want) : Damaged{};
  Check("damaged_stored_plan_found_to_differ", base && d.noticed);
  Check("damaged_stored_plan_same_outputs", base && d.kept);
  Check("damaged_stored_plan_never_used", base && d.never_used);

  uint32_t kl = 0;
  for (; kl < blob.subnet_count() && blob.GetSubnet(kl, &s) && s.least_plan == nullptr;) ++kl;
  const uint32_t limit = LeastRamLimit(blob);
  g_plan.ram_limit = limit;
  store.used = 0;
  const bool least_base = kl < blob.subnet_count() && limit != 0 &&
                          slimhar::PrepareSubnet(blob, kl, &g_plan, &store) == EngineStatus::kOk && RunInto(g_plan, 5, want);
  g_plan.ram_limit = 0;
  const Damaged l =
      least_base ? DamageEachByte(kl, uint32_t(s.least_plan - slimhar_model), s.least_plan_size, limit, want) : Damaged{};
  Check("damaged_least_ram_plan_found_to_differ", least_base && l.noticed);
  Check("damaged_least_ram_plan_same_outputs", least_base && l.kept);
  Check("damaged_least_ram_plan_never_used", least_base && l.never_used);

  // without the least-RAM plans (the entries' flag cleared), the subnets that had one are prepared
  // from their flatbuffer at that limit: it is the second plan that proves them
  std::vector<uint8_t> b(slimhar_model, slimhar_model + SLIMHAR_MODEL_SIZE);
  uint32_t table = 0, cleared = 0;  // the subnet table's offset (header +24), 64-byte entries
  std::memcpy(&table, slimhar_model + 24, 4);
  for (uint32_t i = 0; i < blob.subnet_count(); ++i) {
    slimhar::SubnetInfo si;
    blob.GetSubnet(i, &si);
    if (si.least_plan == nullptr) continue;
    b[table + 64 * i + 14] = 0;  // the entry's flags (u16, bit 0 the only one set)
    ++cleared;
  }
  WrCrc(b);
  slimhar::Blob plain;
  bool second_needed = cleared > 0 && limit != 0 && plain.Open(b.data(), b.size()) == slimhar::BlobStatus::kOk;
  for (uint32_t i = 0; second_needed && i < blob.subnet_count(); ++i) {
    slimhar::SubnetInfo si;
    blob.GetSubnet(i, &si);
    slimhar::PlanProofs proofs;
    slimhar::QuantStore st{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    g_plan.ram_limit = limit;
    second_needed &= slimhar::PrepareSubnet(plain, i, &g_plan, &st, true, &proofs) == EngineStatus::kOk &&
                     g_plan.stored_proof == (si.least_plan != nullptr ? slimhar::Plan::StoredProof::kDiffers
                                                                      : slimhar::Plan::StoredProof::kProven);
  }
  g_plan.ram_limit = 0;
  Check("without_least_ram_plans_those_subnets_differ", second_needed);
}
#endif

// Every subnet's stored plan (quantize/plan.py) is proven by its first prepare and used by the
// next, which gives the same logits as the plan computed from the flatbuffer (itself TFLM's:
// every_subnet_equals_tflm); proofs made on one blob object do not carry over to another.
void StoredPlans(const slimhar::Blob& blob) {
  slimhar::PlanProofs proofs;
  bool carried = true, proven = true, used = true, same = true;
  for (uint32_t i = 0; i < blob.subnet_count(); ++i) {
    slimhar::SubnetInfo s;
    blob.GetSubnet(i, &s);
    carried &= s.plan != nullptr;
    slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    const bool first = slimhar::PrepareSubnet(blob, i, &g_plan, &store, true, &proofs) == EngineStatus::kOk;
    proven &= first && g_plan.source == slimhar::Plan::Source::kComputed &&
              g_plan.stored_proof == slimhar::Plan::StoredProof::kProven && proofs.Has(blob, i, 0);
    const bool ran = first && RunInto(g_plan, 77 + i, g_out_a);
    store.used = 0;
    const bool second = slimhar::PrepareSubnet(blob, i, &g_plan, &store, true, &proofs) == EngineStatus::kOk;
    used &= second && g_plan.source == slimhar::Plan::Source::kStored && store.used == 0;
    same &= ran && second && RunInto(g_plan, 77 + i, g_out_b) && std::memcmp(g_out_a, g_out_b, g_plan.output_size) == 0 &&
            slimhar::test::PlanKeepsPromises(g_plan);
  }
  // A firmware sized for the least RAM passes that arena as every plan's ram_limit: the subnets
  // whose fastest tiles do not fit it -- and only they -- carry a second plan made for it, which
  // their first prepare proves and the next one uses (the others prove their first plan)
  const uint32_t limit = LeastRamLimit(blob);
  bool least_carried = limit != 0, least_proven = limit != 0, least_used = limit != 0, some_least = false;
  for (uint32_t i = 0; limit != 0 && i < blob.subnet_count(); ++i) {
    slimhar::SubnetInfo s;
    blob.GetSubnet(i, &s);
    slimhar::PlanProofs least_proofs;
    slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    g_plan.ram_limit = 0;
    const bool fast = slimhar::PrepareSubnet(blob, i, &g_plan, &store) == EngineStatus::kOk;
    const bool over = fast && g_plan.arena_bytes + uint64_t(g_plan.dsp_scratch_bytes) > limit;
    least_carried &= fast && (s.least_plan != nullptr) == over && (s.least_plan == nullptr || s.least_plan_size == s.plan_size);
    some_least |= over;
    g_plan.ram_limit = limit;
    store.used = 0;
    bool which = !over;
    const bool first = slimhar::PrepareSubnet(blob, i, &g_plan, &store, true, &least_proofs) == EngineStatus::kOk;
    least_proven &= first && g_plan.stored_proof == slimhar::Plan::StoredProof::kProven &&
                    least_proofs.Has(blob, i, limit, &which) && which == over &&
                    g_plan.arena_bytes + uint64_t(g_plan.dsp_scratch_bytes) <= limit;
    const bool ran = first && RunInto(g_plan, 91 + i, g_out_a);
    store.used = 0;
    const bool second = slimhar::PrepareSubnet(blob, i, &g_plan, &store, true, &least_proofs) == EngineStatus::kOk;
    least_used &= ran && second && g_plan.source == slimhar::Plan::Source::kStored && RunInto(g_plan, 91 + i, g_out_b) &&
                  std::memcmp(g_out_a, g_out_b, g_plan.output_size) == 0 && slimhar::test::PlanKeepsPromises(g_plan) &&
                  g_plan.arena_bytes + uint64_t(g_plan.dsp_scratch_bytes) <= limit;
  }
  g_plan.ram_limit = 0;
  Check("least_ram_plan_where_fastest_tiles_do_not_fit", least_carried && some_least);
  Check("least_ram_stored_plans_proven_at_that_limit", least_proven);
  Check("least_ram_stored_plan_used_by_next_prepare", least_used);

  slimhar::Blob other;
  const bool reopened = other.Open(slimhar_model, SLIMHAR_MODEL_SIZE) == slimhar::BlobStatus::kOk;
  Check("blob_carries_stored_plans", carried);
  Check("stored_plans_proven_by_first_prepare", proven);
  Check("proven_stored_plan_used_by_next_prepare", used);
  Check("stored_plan_same_outputs", same);
  Check("proofs_belong_to_their_blob", reopened && proofs.Has(blob, 0, 0) && !proofs.Has(other, 0, 0));
  // ...and to their RAM limit: under another, the subnet is prepared (and proven) again, under it
  // the tiles that limit gives -- never a plan proven under the old limit
  bool per_limit = proofs.Has(blob, 0, 0) && !proofs.Has(blob, 0, 1);
  for (uint32_t i = 0; per_limit && i < blob.subnet_count(); ++i) {
    slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    slimhar::FullPlan fresh;
    fresh.ram_limit = 1;
    per_limit &= slimhar::PrepareSubnet(blob, i, &fresh, &store) == EngineStatus::kOk;  // no proofs: computed
    g_plan.ram_limit = 1;
    store.used = 0;
    per_limit &= slimhar::PrepareSubnet(blob, i, &g_plan, &store, true, &proofs) == EngineStatus::kOk &&
                 g_plan.source == slimhar::Plan::Source::kComputed &&
                 g_plan.arena_bytes + uint64_t(g_plan.dsp_scratch_bytes) == fresh.arena_bytes + uint64_t(fresh.dsp_scratch_bytes);
  }
  g_plan.ram_limit = 0;
  Check("proofs_belong_to_their_ram_limit", per_limit && !proofs.Has(blob, 0, 0));
}
}  // namespace

int main() {
  TestInit();
  slimhar::Blob blob;
  Check("blob_opens", blob.Open(slimhar_model, SLIMHAR_MODEL_SIZE) == slimhar::BlobStatus::kOk);
  slimhar::PoolTensor first, last;
  blob.GetPoolTensor(0, &first);
  blob.GetPoolTensor(blob.pool_count() - 1, &last);
  const int8_t* pool_lo = first.data;
  const int8_t* pool_hi = last.data + last.size;

  bool prepared = true, zero_copy = true, arena_ok = true, arena_max = true, macs_ok = true, promises = true;
  uint64_t max_arena = 0, max_total = 0;
  for (uint32_t i = 0; i < blob.subnet_count(); ++i) {
    slimhar::SubnetInfo s;
    blob.GetSubnet(i, &s);
    slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    const EngineStatus st = slimhar::PrepareSubnet(blob, i, &g_plan, &store);
    prepared &= st == EngineStatus::kOk;
    if (st != EngineStatus::kOk) continue;
    for (uint32_t k = 0; k < g_plan.n_ops; ++k) {
      const slimhar::WeightView* w = slimhar::WeightsOf(g_plan.ops[k]);
      if (w == nullptr) continue;
      const int8_t* end = w->base + (w->out - 1) * w->out_stride + (w->segs - 1) * w->seg_stride + w->seg_len;
      zero_copy &= w->base >= pool_lo && end <= pool_hi;  // weights read in place from the pool
    }
    // the planner reaches the lifetime lower bound the exporter computed (<= 1.10 x ideal)
    arena_ok &= g_plan.arena_bytes * 10 <= s.arena_bytes * 11;
    macs_ok &= g_plan.macs == s.macs;
    promises &= slimhar::test::PlanKeepsPromises(g_plan);
    if (g_plan.arena_bytes > max_arena) max_arena = g_plan.arena_bytes;
    if (g_plan.arena_total() > max_total) max_total = g_plan.arena_total();
  }
  // quantize/arena.py sized the build the same: the largest activations, and what the largest
  // activations + scratch of one subnet need beyond them (DSP flavour)
  arena_max = max_arena == SLIMHAR_MODEL_ARENA_BYTES;
#if defined(__ARM_FEATURE_DSP) && !defined(SLIMHAR_PORTABLE_KERNELS)
  arena_max &= max_total == uint64_t(SLIMHAR_MODEL_ARENA_BYTES) + SLIMHAR_MODEL_SCRATCH_BYTES;
#endif
  Check("every_subnet_prepares", prepared);
  // the multipliers the blob carries (quantize/requant.py, computed at export; tests/test_engine.py
  // checks them equal to what Prepare computes in double from the standalone .tflite) are read in
  // place, channel by channel in op order; the blob leaves the weight scales to them
  // (docs/blob-format.md), so a prepare that would compute them is refused, taking nothing
  bool carries = true, in_place = true, need_table = true;
  for (uint32_t i = 0; i < blob.subnet_count(); ++i) {
    slimhar::SubnetInfo s;
    blob.GetSubnet(i, &s);
    carries &= s.n_mults > 0;
    slimhar::QuantStore none{nullptr, nullptr, 0};  // the blob's table is read in place: no store needed
    slimhar::QuantStore b{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    slimhar::FullPlan pb;
    const bool ok = slimhar::PrepareSubnet(blob, i, &g_plan, &none, true) == EngineStatus::kOk && none.used == 0;
    need_table &= slimhar::PrepareSubnet(blob, i, &pb, &b, false) == EngineStatus::kBadTensor && b.used == 0;
    in_place &= ok;
    const int32_t* table = reinterpret_cast<const int32_t*>(s.mults);
    uint32_t channels = 0;
    for (uint32_t k = 0; ok && k < g_plan.n_ops; ++k) {
      const slimhar::ChannelQuant* q = slimhar::QuantOf(g_plan.ops[k]);
      if (q == nullptr) continue;
      in_place &= q->mult == table + channels &&
                  q->shift == reinterpret_cast<const int8_t*>(s.mults + 4u * s.n_mults) + channels;
      channels += g_plan.ops[k].out.c;
    }
    in_place &= channels == s.n_mults;
  }
  Check("blob_carries_multipliers", carries);
  Check("blob_multipliers_read_in_place", in_place);
  Check("blob_without_weight_scales_needs_its_table", need_table);
  Check("weights_zero_copy_from_pool", zero_copy);
  Check("arena_within_1_10_of_ideal", arena_ok);
  Check("arena_matches_build_time_size", arena_max);
  Check("macs_match_blob_table", macs_ok);
  Check("plans_keep_promises_to_kernels", promises);
  // every subnet against TFLM's logits for the same window (embedded by embed_blob.py)
  bool golden_blob = SLIMHAR_GOLDEN_BLOB_CRC32 == SLIMHAR_MODEL_CRC32, equal = golden_blob, extreme = golden_blob;
  uint32_t plain = 0;
  for (uint32_t r = 0; golden_blob && r < SLIMHAR_GOLDEN_RECORDS; ++r) {
    const bool same = MatchesGolden(blob, r);
    if (slimhar_golden_extreme_bias[r]) {
      extreme &= same;
    } else {
      equal &= same;
      ++plain;
    }
  }
  Check("golden_outputs_are_for_this_blob", golden_blob);
  Check("every_subnet_equals_tflm", equal && plain == blob.subnet_count());
  Check("extreme_bias_wraps_as_tflm", extreme);

  // Plan::ram_limit. At the arena export-c sized (every subnet's fastest tiles fit in it) a plan is
  // the one without a limit, tile for tile; at 1 it is the subnet's least arena + scratch (smaller
  // DSP tiles where they lower the peak: scratch.h, prepare.cpp ChooseTiles) -- never above the
  // unlimited one, below it for some subnet, keeping every promise and still bit-exact with TFLM
  auto tile_of = [](const slimhar::OpPlan& op) {
    return op.kind == slimhar::OpKind::kConv ? op.conv.params.tile
           : op.kind == slimhar::OpKind::kFullyConnected ? op.fc.params.tile : uint16_t(0xFFFF);
  };
  bool at_arena_same = golden_blob, least_lower = golden_blob, least_equal = golden_blob, least_promises = true;
  bool some_lower = false;
  for (uint32_t r = 0; golden_blob && r < SLIMHAR_GOLDEN_RECORDS; ++r) {
    if (slimhar_golden_extreme_bias[r]) continue;
    const uint32_t k = slimhar_golden_subnet[r];
    slimhar::QuantStore st{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    uint16_t fastest[slimhar::kMaxOps];
    g_plan.ram_limit = 0;
    at_arena_same &= slimhar::PrepareSubnet(blob, k, &g_plan, &st) == EngineStatus::kOk;
    const uint64_t unlimited = uint64_t(g_plan.arena_bytes) + g_plan.dsp_scratch_bytes;
    for (uint32_t i = 0; i < g_plan.n_ops; ++i) fastest[i] = tile_of(g_plan.ops[i]);
    g_plan.ram_limit = SLIMHAR_MODEL_ARENA_BYTES + SLIMHAR_MODEL_SCRATCH_BYTES;
    st.used = 0;
    at_arena_same &= slimhar::PrepareSubnet(blob, k, &g_plan, &st) == EngineStatus::kOk &&
                     uint64_t(g_plan.arena_bytes) + g_plan.dsp_scratch_bytes == unlimited;
    for (uint32_t i = 0; i < g_plan.n_ops; ++i) at_arena_same &= tile_of(g_plan.ops[i]) == fastest[i];
    g_plan.ram_limit = 1;
    least_equal &= MatchesGolden(blob, r);  // prepares with the limit, runs, compares with TFLM
    least_promises &= slimhar::test::PlanKeepsPromises(g_plan);
    const uint64_t least = uint64_t(g_plan.arena_bytes) + g_plan.dsp_scratch_bytes;
    least_lower &= least <= unlimited;
    some_lower |= least < unlimited;
  }
  g_plan.ram_limit = 0;
  Check("ram_limit_at_build_arena_keeps_fastest_tiles", at_arena_same);
  Check("least_ram_plans_equal_tflm", least_equal);
  Check("least_ram_plans_keep_promises", least_promises);
  Check("least_ram_plans_lower_some_peak", least_lower && some_lower);

  // switching: plans are stateless, so A, B, A gives A's outputs again; a cached switch prepares nothing
  slimhar::PlanCache cache(g_slot_ptrs, 2, g_mult, g_shift, SLIMHAR_MODEL_MAX_CHANNELS);
  const uint32_t a = 0, b = blob.subnet_count() - 1;
  const slimhar::Plan* pa = cache.Get(blob, a);
  const slimhar::Plan* pb = cache.Get(blob, b);
  int8_t first_a[64];
  bool same = pa && pb && RunInto(*pa, 42, first_a) && RunInto(*pb, 43, g_out_b);
  const uint32_t prepares = cache.prepares();
  for (int r = 0; r < 10 && same; ++r) {
    same &= cache.Get(blob, (r & 1) ? a : b) != nullptr;
  }
  same &= RunInto(*cache.Get(blob, a), 42, g_out_a) && std::memcmp(first_a, g_out_a, pa->output_size) == 0;
  Check("switching_is_stateless", same);
  Check("cached_switch_prepares_nothing", cache.prepares() == prepares);

  // refusals
  Check("small_arena_refused", pa != nullptr && pa->arena_total() > 0 &&
                                   slimhar::Invoke(*pa, g_arena, size_t(pa->arena_total() - 1)) == EngineStatus::kArenaTooSmall &&
                                   slimhar::Invoke(*pa, g_arena + 8, sizeof(g_arena) - 8) == EngineStatus::kArenaTooSmall);
  slimhar::Plan empty;
  Check("empty_plan_refused", slimhar::Invoke(empty, g_arena, sizeof(g_arena)) == EngineStatus::kBadArgs);
  {  // a plan's op storage is the caller's: a subnet with more ops than it holds is refused, never written past
    slimhar::PlanWith<2> small;
    slimhar::QuantStore st{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    const EngineStatus r = slimhar::PrepareSubnet(blob, b, &small, &st);
    slimhar::Plan unbound;           // no storage at all
    Check("plan_without_room_for_its_ops_refused", r == EngineStatus::kTooLarge && small.n_ops == 0 &&
                                                      slimhar::PrepareSubnet(blob, b, &unbound, &st) == EngineStatus::kBadArgs);
  }
  slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
  Check("bad_subnet_index_refused", slimhar::PrepareSubnet(blob, blob.subnet_count(), &g_plan, &store) == EngineStatus::kBadArgs);
  static const uint8_t junk[64] = {1, 2, 3};
  Check("junk_model_refused", slimhar::PrepareModel(junk, sizeof(junk), &g_plan, &store) == EngineStatus::kBadModel);
  PlanCacheEvicts(blob);
  PlannerCases();
  RequantCases();
  KernelCases();
  StoredPlans(blob);
#if defined(SLIMHAR_HOST_TEST)
  DamagedModels(blob);
  DamagedStoredPlans(blob);
#endif
  return 0;
}
