// The int8 engine on the embedded blob (default: BasicMotions CNN, every subnet), on the host
// (env host) and on the emulated Cortex-M4F (env mps2_an386, DSP kernels). Bit-exactness with
// TFLM is checked from Python (tests/test_engine.py, the oracle lives there); these checks are
// the engine's own contracts: zero-copy weights, planned arena, stateless switching, refusals.
#include <cstring>

#include "../check.h"
#include "engine.h"
#include "plan_cache.h"
#include "slimhar_blob.h"
#include "slimhar_model.h"

using slimhar::EngineStatus;

namespace {
alignas(16) uint8_t g_arena[SLIMHAR_MODEL_ARENA_BYTES + SLIMHAR_MODEL_SCRATCH_BYTES];
slimhar::Plan g_slots[2];
int32_t g_mult[2 * SLIMHAR_MODEL_MAX_CHANNELS];
int8_t g_shift[2 * SLIMHAR_MODEL_MAX_CHANNELS];
slimhar::Plan g_plan;
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
}  // namespace

#if defined(SLIMHAR_HOST_TEST)
#include <vector>
static void WrCrc(std::vector<uint8_t>& b) {
  static const uint8_t z[4] = {0, 0, 0, 0};
  uint32_t c = slimhar::Crc32(b.data(), 16);
  c = slimhar::Crc32(z, 4, c);
  c = slimhar::Crc32(b.data() + 20, b.size() - 20, c);
  for (int i = 0; i < 4; ++i) b[16 + i] = uint8_t(c >> (8 * i));
}
// Damaged flatbuffers inside a blob with a valid CRC: Prepare refuses or accepts, Invoke of
// whatever it accepts stays in bounds (the fuzz harness does this at scale under ASan).
static void DamagedModels(const slimhar::Blob& blob) {
  slimhar::SubnetInfo s;
  blob.GetSubnet(0, &s);
  const size_t at = size_t(s.model - slimhar_model);
  std::vector<uint8_t> good(slimhar_model, slimhar_model + SLIMHAR_MODEL_SIZE);
  uint32_t refused = 0, accepted = 0;
  bool all_ok = true;
  for (size_t i = 0; i < s.model_size; i += 3) {
    for (uint8_t x : {uint8_t(0xFF), uint8_t(0x80)}) {
      std::vector<uint8_t> b = good;
      b[at + i] ^= x;
      WrCrc(b);
      slimhar::Blob bad;
      if (bad.Open(b.data(), b.size()) != slimhar::BlobStatus::kOk) continue;
      slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
      const EngineStatus st = slimhar::PrepareSubnet(bad, 0, &g_plan, &store);
      if (st != EngineStatus::kOk) {
        ++refused;
        all_ok &= g_plan.n_ops == 0 && store.used == 0;
        continue;
      }
      ++accepted;  // e.g. a changed scale or bias value: still a well-formed model
      if (g_plan.arena_total() <= sizeof(g_arena)) {
        Fill(g_plan, 7);
        all_ok &= slimhar::Invoke(g_plan, g_arena, sizeof(g_arena)) == EngineStatus::kOk;
      }
    }
  }
  Check("damaged_models_refused_or_run", all_ok && refused > 0);
  // a truncated model: every prefix is refused
  bool prefixes = true;
  for (uint32_t n = 0; n < s.model_size; n += 7) {
    slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    prefixes &= slimhar::PrepareModel(s.model, n, &g_plan, &store) != EngineStatus::kOk;
  }
  Check("truncated_models_refused", prefixes);
  (void)accepted;
}

// A bias at the ends of the int32 range (found by the fuzzer): the accumulator + bias and the
// requantized value + zero point wrap like int32 hardware does -- no undefined behaviour
// (this program runs under UBSan on the host) and the same bits on every kernel flavour.
static void ExtremeBias(const slimhar::Blob& blob) {
  slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
  bool ok = slimhar::PrepareSubnet(blob, blob.subnet_count() - 1, &g_plan, &store) == EngineStatus::kOk;
  static uint8_t bias[4 * 1024];
  for (uint32_t k = 0; ok && k < g_plan.n_ops; ++k) {
    slimhar::OpPlan& op = g_plan.ops[k];
    if (op.kind != slimhar::OpKind::kConv && op.kind != slimhar::OpKind::kFullyConnected) continue;
    for (uint32_t o = 0; o < op.w.out && o < 1024; ++o) {
      const uint32_t v = (o & 1) ? 0x7FFFFFF0u : 0x80000010u;
      for (int b = 0; b < 4; ++b) bias[4 * o + b] = uint8_t(v >> (8 * b));
    }
    op.bias = bias;
    break;
  }
  ok = ok && RunInto(g_plan, 5, g_out_a);
  Check("extreme_bias_wraps", ok);
}
#endif

int main() {
  TestInit();
  slimhar::Blob blob;
  Check("blob_opens", blob.Open(slimhar_model, SLIMHAR_MODEL_SIZE) == slimhar::BlobStatus::kOk);
  slimhar::PoolTensor first, last;
  blob.GetPoolTensor(0, &first);
  blob.GetPoolTensor(blob.pool_count() - 1, &last);
  const int8_t* pool_lo = first.data;
  const int8_t* pool_hi = last.data + last.size;

  bool prepared = true, zero_copy = true, arena_ok = true, arena_max = true, macs_ok = true, runs = true;
  uint32_t max_arena = 0, max_scratch = 0;
  for (uint32_t i = 0; i < blob.subnet_count(); ++i) {
    slimhar::SubnetInfo s;
    blob.GetSubnet(i, &s);
    slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
    const EngineStatus st = slimhar::PrepareSubnet(blob, i, &g_plan, &store);
    prepared &= st == EngineStatus::kOk;
    if (st != EngineStatus::kOk) continue;
    for (uint32_t k = 0; k < g_plan.n_ops; ++k) {
      const slimhar::OpPlan& op = g_plan.ops[k];
      if (op.kind != slimhar::OpKind::kConv && op.kind != slimhar::OpKind::kFullyConnected) continue;
      const int8_t* end = op.w.base + (op.w.out - 1) * op.w.out_stride + (op.w.segs - 1) * op.w.seg_stride + op.w.seg_len;
      zero_copy &= op.w.base >= pool_lo && end <= pool_hi;  // weights read in place from the pool
    }
    // the planner reaches the lifetime lower bound the exporter computed (<= 1.10 x ideal)
    arena_ok &= g_plan.arena_bytes * 10 <= s.arena_bytes * 11;
    macs_ok &= g_plan.macs == s.macs;
    if (g_plan.arena_bytes > max_arena) max_arena = g_plan.arena_bytes;
    if (g_plan.scratch_bytes > max_scratch) max_scratch = g_plan.scratch_bytes;
    runs &= RunInto(g_plan, i, g_out_a);
  }
  arena_max = max_arena == SLIMHAR_MODEL_ARENA_BYTES;  // quantize/arena.py sized the build the same
#if defined(__ARM_FEATURE_DSP) && !defined(SLIMHAR_PORTABLE_KERNELS)
  arena_max &= max_scratch == SLIMHAR_MODEL_SCRATCH_BYTES;
#endif
  Check("every_subnet_prepares", prepared);
  Check("weights_zero_copy_from_pool", zero_copy);
  Check("arena_within_1_10_of_ideal", arena_ok);
  Check("arena_matches_build_time_size", arena_max);
  Check("macs_match_blob_table", macs_ok);
  Check("every_subnet_runs", runs);

  // switching: plans are stateless, so A, B, A gives A's outputs again; a cached switch prepares nothing
  slimhar::PlanCache cache(g_slots, 2, g_mult, g_shift, SLIMHAR_MODEL_MAX_CHANNELS);
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
  Check("small_arena_refused", !pa || slimhar::Invoke(*pa, g_arena, pa->arena_total() - 1) == EngineStatus::kArenaTooSmall);
  slimhar::Plan empty;
  Check("empty_plan_refused", slimhar::Invoke(empty, g_arena, sizeof(g_arena)) == EngineStatus::kBadArgs);
  slimhar::QuantStore tiny{g_mult1, g_shift1, 3};
  Check("full_store_refused", slimhar::PrepareSubnet(blob, b, &g_plan, &tiny) == EngineStatus::kTooLarge && tiny.used == 0);
  slimhar::QuantStore store{g_mult1, g_shift1, SLIMHAR_MODEL_MAX_CHANNELS};
  Check("bad_subnet_index_refused", slimhar::PrepareSubnet(blob, blob.subnet_count(), &g_plan, &store) == EngineStatus::kBadArgs);
  static const uint8_t junk[64] = {1, 2, 3};
  Check("junk_model_refused", slimhar::PrepareModel(junk, sizeof(junk), &g_plan, &store) == EngineStatus::kBadModel);
#if defined(SLIMHAR_HOST_TEST)
  DamagedModels(blob);
  ExtremeBias(blob);
#endif
  return 0;
}
