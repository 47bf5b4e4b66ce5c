// What an accepted Plan promises the kernels, recomputed in 64 bits from the op geometry --
// independently of Prepare and scratch.h -- for BOTH kernel flavours (the DSP kernels cannot run
// on the host; their sizes can be checked there). Shared by the C++ engine test and the fuzz
// targets.
#pragma once
#include <cstdint>

#include "engine.h"

namespace slimhar {
namespace test {

// Every buffer inside the arena, the DSP flavour's widened input and weights inside the room
// Prepare left for them (kMaxArenaBytes less the activations).
inline bool PlanKeepsPromises(const Plan& p) {
  auto up = [](uint64_t v, uint64_t a) { return (v + a - 1) / a * a; };
  const uint64_t arena = p.arena_bytes;
  bool ok = p.n_ops >= 1 && p.n_ops <= kMaxOps && arena % kArenaAlign == 0 &&
            p.arena_total() <= kMaxArenaBytes && uint64_t(p.input_off) + p.input_size <= arena &&
            uint64_t(p.output_off) + p.output_size <= arena;
  uint64_t dsp = 0;
  for (uint32_t k = 0; ok && k < p.n_ops; ++k) {
    const OpPlan& op = p.ops[k];
    const uint64_t in = uint64_t(op.in_h) * op.in_w * op.in_c;
    ok &= uint64_t(op.out_off) + op.out_size <= arena;
    if (op.kind == OpKind::kConv || op.kind == OpKind::kPad || op.kind == OpKind::kFullyConnected)
      ok &= uint64_t(op.in_off[0]) + in <= arena;
    if (op.kind == OpKind::kConv) {
      const uint64_t rows = uint64_t(op.in_h) + op.pad_top + op.pad_bottom, c4 = up(op.in_c, 4);
      const uint64_t need = (op.in_c == 1 && op.kh <= 16)
                                ? up(2 * op.in_w * up(rows + 2, 4), 16) + up(4ull * op.out_c * ((op.kh + 1) / 2), 16)
                                : up(2 * rows * op.in_w * c4, 16) + up(4ull * op.kh * c4, 16);
      if (need > dsp) dsp = need;
    } else if (op.kind == OpKind::kFullyConnected) {
      const uint64_t need = up(2ull * op.w.segs * up(op.w.seg_len, 4), 16);
      if (need > dsp) dsp = need;
    }
  }
  return ok && dsp <= kMaxArenaBytes - arena;
}

}  // namespace test
}  // namespace slimhar
