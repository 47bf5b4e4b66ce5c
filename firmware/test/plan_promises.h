// What an accepted Plan promises the kernels, recomputed in 64 bits from the op geometry --
// independently of Prepare and scratch.h -- for BOTH kernel flavours (the DSP kernels cannot run
// on the host; their sizes can be checked there). Shared by the C++ engine test and the fuzz
// targets.
#pragma once
#include <cstdint>

#include "engine.h"
#include "scratch.h"

namespace slimhar {
namespace test {

// The DSP kernels' scratch of an op as scratch.h sizes it for the tile Prepare chose, if it is
// what the kernels need for that tile, recomputed here in 64 bits from the geometry: a tile of
// 1 .. W input columns (conv) or 1 .. segs segments (fc) widened, the two channels' weights or the
// classes' sums; one column and every channel pair's weights for a conv that keeps them all
// (tile 0); ~0 otherwise (a broken promise).
inline uint64_t ScratchOf(const OpPlan& op) {
  auto up = [](uint64_t v, uint64_t a) { return (v + a - 1) / a * a; };
  uint64_t want = 0;
  if (op.kind == OpKind::kConv) {
    const ConvParams& p = op.conv.params;
    const uint64_t rows = uint64_t(op.in.h) + p.pad_top + p.pad_bottom, c4 = up(op.in.c, 4);
    if (op.in.c == 1 && p.kh <= 16) {
      const uint64_t kw = (p.kh + 1) / 2;  // weight words a channel; 7 with its constants for kw 3
      want = up(2 * op.in.w * up(rows + 2, 4), 16) + up(4ull * op.out.c * (kw == 3 ? 7 : kw), 16);
    } else if (p.tile == 0) {  // one column, and every channel pair's weights
      want = up(2 * rows * c4, 16) + (op.out.c + 1ull) / 2 * up(4ull * p.kh * c4, 16);
    } else if (p.tile <= op.in.w) {
      want = up(2 * rows * c4 * p.tile, 16) + up(4ull * p.kh * c4, 16);
    } else {
      return ~uint64_t(0);
    }
  } else if (op.kind == OpKind::kFullyConnected) {
    const WeightView& w = op.fc.w;
    if (op.fc.params.tile < 1 || op.fc.params.tile > w.segs) return ~uint64_t(0);
    want = up(2ull * op.fc.params.tile * up(w.seg_len, 4), 16) + up(4ull * w.out, 16);
  }
  return kernels::DspScratchBytes(op) == want ? want : ~uint64_t(0);
}

// Every buffer inside the arena; each op's DSP scratch inside arena + dsp_scratch_bytes and clear
// of every activation still needed while the op runs -- its own inputs and output, and any region
// a later op reads that no op between them rewrites (the liveness recomputed here from the ops'
// offsets alone, not from the planner's lifetimes). Checked for BOTH flavours: the host fuzzer
// exercises the DSP placement too.
inline bool PlanKeepsPromises(const Plan& p) {
  const uint64_t arena = p.arena_bytes, total = arena + p.dsp_scratch_bytes;
  bool ok = p.n_ops >= 1 && p.n_ops <= kMaxOps && arena % kArenaAlign == 0 && total <= kMaxArenaBytes &&
            p.arena_total() <= total && uint64_t(p.input_off) + p.input_size <= arena &&
            uint64_t(p.output_off) + p.output_size <= arena;
  auto in_bytes = [](const OpPlan& op) { return uint64_t(op.in.h) * op.in.w * op.in.c; };
  for (uint32_t k = 0; ok && k < p.n_ops; ++k) {
    const OpPlan& op = p.ops[k];
    ok &= uint64_t(op.out_off) + op.out_size <= arena;
    if (op.kind == OpKind::kConv || op.kind == OpKind::kPad || op.kind == OpKind::kFullyConnected)
      ok &= uint64_t(op.in_off[0]) + in_bytes(op) <= arena;
  }
  auto overlap = [](uint64_t a, uint64_t na, uint64_t b, uint64_t nb) { return na && nb && a < b + nb && b < a + na; };
  // the bytes op j reads from input i (0 when unknown: gather, reshape, elementwise read out_size)
  auto read = [&](const OpPlan& op, uint32_t i, uint64_t* off) {
    *off = op.in_off[i];
    if (op.kind == OpKind::kConv || op.kind == OpKind::kPad || op.kind == OpKind::kFullyConnected) return in_bytes(op);
    if (op.kind == OpKind::kAdd || op.kind == OpKind::kMaximum) return uint64_t(op.out_size);
    return uint64_t(0);
  };
  for (uint32_t k = 0; ok && k < p.n_ops; ++k) {
    const uint64_t n = ScratchOf(p.ops[k]);
    if (n == 0) continue;
    const uint64_t s = p.ops[k].scratch_off;
    ok &= s % kArenaAlign == 0 && n <= total && s <= total - n;
    ok &= !overlap(s, n, p.ops[k].out_off, p.ops[k].out_size);
    // a region read by op j >= k is alive at k unless an op in (k, j) rewrote it (RESHAPE writes nothing)
    auto alive = [&](uint32_t j, uint64_t off, uint64_t len) {
      for (uint32_t d = k + 1; d < j; ++d)
        if (p.ops[d].kind != OpKind::kReshape && p.ops[d].out_off <= off &&
            off + len <= uint64_t(p.ops[d].out_off) + p.ops[d].out_size)
          return false;
      return true;
    };
    for (uint32_t j = k; ok && j < p.n_ops; ++j)
      for (uint32_t i = 0; i < p.ops[j].n_in; ++i) {
        uint64_t off;
        const uint64_t len = read(p.ops[j], i, &off);
        if (alive(j, off, len)) ok &= !overlap(s, n, off, len);
      }
    if (alive(p.n_ops, p.output_off, p.output_size)) ok &= !overlap(s, n, p.output_off, p.output_size);
  }
  return ok;
}

}  // namespace test
}  // namespace slimhar
