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

// A conv's sizes depend on its parameters and its input and output shapes: the kernels'
// arguments (op_params.h), bundled here so each size below takes one argument.
struct ConvShape {
  const ConvParams& p;
  const Dims& in;
  const Dims& out;
};

// The first layer (one input channel, at most 16 kernel rows) takes its own DSP path.
inline bool DspOneChannelConv(const ConvShape& s) { return s.in.c == 1 && s.p.kh <= 16; }

// One-channel conv: every column widened to int16 ([W][rows]), then per output channel its packed
// weights (kw = ceil(kh / 2) words) -- or, for kernels of 5-6 rows (the exporter's 6), 7 words:
// the 3 weight words and the channel's requantization constants, which the kernel's per-output
// loop loads with one LDM (kernels_dsp.cpp OneChannelConst).
inline uint64_t DspOneChannelRows(const ConvShape& s) { return Up4(uint64_t(s.in.h) + s.p.pad_top + s.p.pad_bottom + 2); }
inline uint64_t DspOneChannelInBytes(const ConvShape& s) { return Up16(2ull * s.in.w * DspOneChannelRows(s)); }
constexpr uint64_t DspOneChannelWords(uint32_t kh) { return (kh + 1u) / 2u == 3 ? 7 : (kh + 1u) / 2u; }

// The DSP flavour widens int8 operands to int16 pairs in scratch once (SMLAD reads pairs). How
// much of an input is widened at a time is bounded by this budget (bytes; build flag
// SLIMHAR_DSP_SCRATCH_BUDGET, mirrored by quantize/arena.py DSP_SCRATCH_BUDGET): a conv widens
// as many whole input columns (sensor axes) as fit, at least one; a fully-connected layer as many
// flattened positions as fit, at least one, summing per class across those tiles. A larger
// budget widens each conv's weights fewer times (fewer instructions), a smaller one saves RAM:
// docs/results.md §4 measures the trade. Prepare places each op's scratch in a gap of the
// activations alive during that op when one is large enough (planner.h PlaceScratch), so a
// scratch costs RAM only where it does not fit beside them -- and where the budget's tile does
// not fit, it takes the fastest smaller one that keeps the subnet's peak lowest (the tile
// choices below, ChooseTiles in prepare.cpp).
#ifndef SLIMHAR_DSP_SCRATCH_BUDGET
#define SLIMHAR_DSP_SCRATCH_BUDGET 16384
#endif
constexpr uint64_t kDspScratchBudget = SLIMHAR_DSP_SCRATCH_BUDGET;

inline uint64_t Clamp1(uint64_t v, uint64_t hi) { return v < 1 ? 1 : (v > hi ? hi : v); }
// `most` units split into as few tiles as `fit` units a tile allow, the tiles made even: the
// same number of tiles (what costs instructions) in the least scratch (9 columns, 8 fit: 5 + 4).
inline uint64_t EvenTile(uint64_t fit, uint64_t most) {
  const uint64_t f = Clamp1(fit, most), tiles = (most + f - 1) / f;
  return (most + tiles - 1) / tiles;
}

// General conv: input columns widened column-major (rows x I4/2 words per column), `tile` columns
// at a time, then two output channels' widened weights.
inline uint64_t DspConvRows(const ConvShape& s) { return uint64_t(s.in.h) + s.p.pad_top + s.p.pad_bottom; }
inline uint64_t DspConvColWords(const ConvShape& s) { return DspConvRows(s) * (Up4(s.in.c) / 2); }
inline uint64_t DspConvWeightBytes(const ConvShape& s) { return Up16(4ull * 2 * s.p.kh * (Up4(s.in.c) / 2)); }
inline uint64_t DspConvTile(const ConvShape& s) {
  const uint64_t w = DspConvWeightBytes(s), col = 4 * DspConvColWords(s);
  return EvenTile(kDspScratchBudget > w && col ? (kDspScratchBudget - w) / col : 1, s.in.w);
}
inline uint64_t DspConvInBytes(const ConvShape& s, uint64_t tile) { return Up16(4 * DspConvColWords(s) * tile); }

// The other way to run a general conv: every output channel pair's widened weights kept for the
// whole op (widened once), the input one column at a time. Nothing is widened twice; what it pays
// is each pair's set-up (requantization constants, loops) once a column instead of once a tile
// (+1-5 % instructions on the narrowest subnets, docs/results.md §4). Taken wherever it needs less
// scratch -- narrow layers, whose weights are smaller than the input columns a tile would hold --
// so that a small subnet's arena + scratch comes closer to its activations alone.
inline uint64_t DspConvColBytes(const ConvShape& s) { return Up16(4 * DspConvColWords(s)); }
inline uint64_t DspConvAllWeightBytes(const ConvShape& s) { return (uint64_t(s.out.c) + 1) / 2 * DspConvWeightBytes(s); }
// ConvParams::tile / FcParams::tile: how many columns (segments) are widened at a time, 1 .. the
// input's columns (segments); for a general conv, kResidentTile: the weights kept (above). The
// one-channel path ignores it (kResidentTile by convention).
constexpr uint16_t kResidentTile = 0;

// Scratch of kernels::ConvS8 in the DSP flavour for p.tile (CMSIS-NN's *_get_buffer_size twin).
inline uint64_t DspConvScratchBytes(const ConvParams& p, const Dims& in, const Dims& out) {
  const ConvShape s{p, in, out};
  if (DspOneChannelConv(s)) return DspOneChannelInBytes(s) + Up16(4ull * out.c * DspOneChannelWords(p.kh));
  if (p.tile == kResidentTile) return DspConvColBytes(s) + DspConvAllWeightBytes(s);
  return DspConvInBytes(s, p.tile) + DspConvWeightBytes(s);
}

// The tiles Prepare may give an op, fastest first: the budget's choice; keeping the weights;
// then ever smaller tiles (each one more tile than the last, at most kMoreTiles of them, then
// one column at a time). Returns how many it wrote to `tiles` (<= kMaxTileChoices).
constexpr uint32_t kMoreTiles = 16, kMaxTileChoices = kMoreTiles + 3;
inline uint32_t SmallerTiles(uint64_t first, uint64_t most, uint16_t* tiles, uint32_t n) {
  const uint64_t n0 = (most + first - 1) / first;  // tiles of the budget's choice
  uint64_t last = first;                           // the smallest tile listed so far
  for (uint64_t k = n0 + 1; k <= most && k <= n0 + kMoreTiles; ++k) {
    const uint64_t t = (most + k - 1) / k;
    if (t < last) tiles[n++] = uint16_t(last = t);
  }
  if (last != 1) tiles[n++] = 1;
  return n;
}
inline uint32_t DspConvTileChoices(const ConvShape& s, uint16_t* tiles) {
  if (DspOneChannelConv(s)) {
    tiles[0] = kResidentTile;
    return 1;
  }
  // first the budget's tile, or keeping the weights wherever that needs less scratch (narrow
  // layers, whose weights are smaller than the input columns a tile would hold); then the other
  const uint64_t t = DspConvTile(s);  // 1 .. in.w (EvenTile)
  const bool keep = DspConvColBytes(s) + DspConvAllWeightBytes(s) < DspConvInBytes(s, t) + DspConvWeightBytes(s);
  tiles[0] = keep ? kResidentTile : uint16_t(t);
  tiles[1] = keep ? uint16_t(t) : kResidentTile;
  return SmallerTiles(t, s.in.w, tiles, 2);
}

// Fully connected: `tile` segments (flattened positions of seg_len channels) widened at a time,
// then one int32 partial sum per class.
inline uint64_t DspFcSegWords(const WeightView& w) { return Up4(w.seg_len) / 2; }
inline uint64_t DspFcAccBytes(const WeightView& w) { return Up16(4ull * w.out); }
inline uint64_t DspFcTile(const WeightView& w) {
  const uint64_t a = DspFcAccBytes(w), seg = 4 * DspFcSegWords(w);
  return EvenTile(kDspScratchBudget > a && seg ? (kDspScratchBudget - a) / seg : 1, w.segs);
}
inline uint64_t DspFcInBytes(const WeightView& w, uint64_t tile) { return Up16(4 * DspFcSegWords(w) * tile); }

// Scratch of kernels::FullyConnectedS8 in the DSP flavour for p.tile segments at a time.
inline uint64_t DspFcScratchBytes(const FcParams& p, const WeightView& w) { return DspFcInBytes(w, p.tile) + DspFcAccBytes(w); }

inline uint32_t DspFcTileChoices(const WeightView& w, uint16_t* tiles) {
  tiles[0] = uint16_t(DspFcTile(w));  // 1 .. segs
  return SmallerTiles(tiles[0], w.segs, tiles, 1);
}

// Scratch the DSP flavour needs for op p with the tile it has (0 for ops without scratch).
inline uint64_t DspScratchBytes(const OpPlan& p) {
  if (p.kind == OpKind::kConv) return DspConvScratchBytes(p.conv.params, p.in, p.out);
  if (p.kind == OpKind::kFullyConnected) return DspFcScratchBytes(p.fc.params, p.fc.w);
  return 0;
}
// The tiles op p may take (kernels' scratch above), fastest first; 0 for ops without scratch.
inline uint32_t DspTileChoices(const OpPlan& p, uint16_t* tiles) {
  if (p.kind == OpKind::kConv) return DspConvTileChoices(ConvShape{p.conv.params, p.in, p.out}, tiles);
  if (p.kind == OpKind::kFullyConnected) return DspFcTileChoices(p.fc.w, tiles);
  return 0;
}
inline void SetTile(OpPlan* p, uint16_t tile) {
  if (p->kind == OpKind::kConv) p->conv.params.tile = tile;
  if (p->kind == OpKind::kFullyConnected) p->fc.params.tile = tile;
}

}  // namespace kernels
}  // namespace slimhar
