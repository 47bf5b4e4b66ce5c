// Static arena planning from tensor lifetimes (greedy by size, like TFLM's greedy planner).
// Each activation buffer lives from the op that writes it to the last op that reads it; two
// buffers whose lives overlap never share bytes. RESHAPE outputs alias their input.
// The DSP kernels' scratch of each op is then placed into the activations' gaps (PlaceScratch).
// quantize/arena.py mirrors this exactly so that `slimhar blob export-c` can size the
// firmware's static arena at build time; the engine tests check the two agree.
#pragma once
#include <cstdint>

#include "engine.h"

namespace slimhar {

class Lifetimes {
 public:
  void Reset(uint32_t n_tensors, uint32_t n_ops);
  bool Define(uint32_t tensor, uint32_t op, uint32_t bytes);  // written by op (the input: op 0)
  bool Use(uint32_t tensor, uint32_t op);                     // read by op; must be defined
  bool Alias(uint32_t out, uint32_t in, uint32_t op);         // out is a view of in
  // offsets[tensor] for every planned tensor; returns the arena bytes (a multiple of kArenaAlign),
  // computed in 64 bits; offsets are exact whenever the result is <= kMaxArenaBytes
  uint64_t Plan(uint32_t* offsets);
  // After Plan: the lowest aligned offset where `bytes` of scratch used by op `op` alone clear
  // every buffer alive during that op -- in a gap of the activations when one is large enough,
  // else above them. Scratch of different ops never lives at the same time, so each is placed
  // against the activations only. 64-bit, like Plan.
  uint64_t PlaceScratch(uint32_t op, uint64_t bytes) const;

 private:
  uint32_t n_tensors_ = 0, n_bufs_ = 0;
  int16_t buf_of_[kMaxTensors];
  uint32_t size_[kMaxTensors], first_[kMaxTensors], last_[kMaxTensors];
  uint64_t off_[kMaxTensors];  // each buffer's offset, set by Plan
};

}  // namespace slimhar
