// Scratch of the DSP kernels: how many bytes each op needs and where its parts lie. Kept apart
// from the kernels and compiled for every flavour, so that Prepare can bound the DSP sizes on
// the host too (the fuzzer runs there) and a model is accepted or refused the same way by every
// build. Everything is computed in 64 bits from the op's geometry: a hostile model (wide rows,
// many channels, tall SAME padding) cannot wrap a size around, and Prepare refuses any plan
// whose total passes kMaxArenaBytes, so 32-bit offsets derived from these sizes stay exact.
#pragma once
#include <cstdint>

#include "engine.h"

namespace slimhar {
namespace kernels {

inline uint64_t Up4(uint64_t v) { return (v + 3u) & ~uint64_t(3); }
inline uint64_t Up16(uint64_t v) { return (v + 15u) & ~uint64_t(15); }

// The first layer (one input channel, at most 16 kernel rows) takes its own DSP path.
inline bool DspOneChannelConv(const OpPlan& p) { return p.kind == OpKind::kConv && p.in_c == 1 && p.kh <= 16; }

// One-channel conv: every column widened to int16 ([W][rows]), then the packed weights ([O][kw]).
inline uint64_t DspOneChannelRows(const OpPlan& p) { return Up4(uint64_t(p.in_h) + p.pad_top + p.pad_bottom + 2); }
inline uint64_t DspOneChannelInBytes(const OpPlan& p) { return Up16(2ull * p.in_w * DspOneChannelRows(p)); }

// General conv: the whole input widened column-major (rows x I4/2 words per column), then two
// output channels' widened weights.
inline uint64_t DspConvRows(const OpPlan& p) { return uint64_t(p.in_h) + p.pad_top + p.pad_bottom; }
inline uint64_t DspConvInWords(const OpPlan& p) { return DspConvRows(p) * p.in_w * (Up4(p.in_c) / 2); }
inline uint64_t DspConvInBytes(const OpPlan& p) { return Up16(4 * DspConvInWords(p)); }

// Scratch the DSP flavour needs for op p (0 for ops without scratch).
inline uint64_t DspScratchBytes(const OpPlan& p) {
  if (DspOneChannelConv(p)) return DspOneChannelInBytes(p) + Up16(4ull * p.out_c * ((p.kh + 1u) / 2u));
  if (p.kind == OpKind::kConv) return DspConvInBytes(p) + Up16(4ull * 2 * p.kh * (Up4(p.in_c) / 2));
  if (p.kind == OpKind::kFullyConnected) return Up16(4ull * p.w.segs * (Up4(p.w.seg_len) / 2));
  return 0;
}

}  // namespace kernels
}  // namespace slimhar
