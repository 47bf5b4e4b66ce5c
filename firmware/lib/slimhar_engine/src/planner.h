// Static arena planning from tensor lifetimes (greedy by size, like TFLM's greedy planner).
// Each activation buffer lives from the op that writes it to the last op that reads it; two
// buffers whose lives overlap never share bytes. RESHAPE outputs alias their input.
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
  uint64_t Plan(uint32_t* offsets) const;

 private:
  uint32_t n_tensors_ = 0, n_bufs_ = 0;
  int16_t buf_of_[kMaxTensors];
  uint32_t size_[kMaxTensors], first_[kMaxTensors], last_[kMaxTensors];
};

}  // namespace slimhar
