#include "planner.h"

namespace slimhar {
namespace {
inline uint64_t AlignUp(uint64_t v) { return (v + kArenaAlign - 1) & ~uint64_t(kArenaAlign - 1); }

// The lowest aligned offset where `bytes` clear every buffer o < n for which taken(o) holds:
// from 0, step past each one it overlaps, in index order, until none does.
template <typename Taken>
uint64_t LowestClear(const uint64_t* off, const uint32_t* size, uint32_t n, uint64_t bytes, Taken taken) {
  uint64_t at = 0;
  bool moved = true;
  while (moved) {
    moved = false;
    for (uint32_t o = 0; o < n; ++o) {
      if (!taken(o)) continue;
      if (at < off[o] + size[o] && off[o] < at + bytes) {
        at = AlignUp(off[o] + size[o]);
        moved = true;
      }
    }
  }
  return at;
}
}  // namespace

void Lifetimes::Reset(uint32_t n_tensors, uint32_t) {
  n_tensors_ = n_tensors > kMaxTensors ? kMaxTensors : n_tensors;
  n_bufs_ = 0;
  for (uint32_t t = 0; t < kMaxTensors; ++t) buf_of_[t] = -1;
}

bool Lifetimes::Define(uint32_t t, uint32_t op, uint32_t bytes) {
  if (t >= n_tensors_ || buf_of_[t] >= 0 || n_bufs_ >= kMaxTensors) return false;
  buf_of_[t] = int16_t(n_bufs_);
  size_[n_bufs_] = bytes;
  first_[n_bufs_] = op;
  last_[n_bufs_] = op;
  ++n_bufs_;
  return true;
}

bool Lifetimes::Use(uint32_t t, uint32_t op) {
  if (t >= n_tensors_ || buf_of_[t] < 0) return false;
  uint32_t& l = last_[buf_of_[t]];
  if (op > l) l = op;
  return true;
}

bool Lifetimes::Alias(uint32_t out, uint32_t in, uint32_t op) {
  if (out >= n_tensors_ || buf_of_[out] >= 0 || !Use(in, op)) return false;
  buf_of_[out] = buf_of_[in];
  return true;
}

uint64_t Lifetimes::Plan(uint32_t* offsets) {
  // placement order: larger first; ties by first use, then creation order
  uint16_t order[kMaxTensors];
  for (uint32_t i = 0; i < n_bufs_; ++i) order[i] = uint16_t(i);
  for (uint32_t i = 1; i < n_bufs_; ++i) {  // insertion sort: a few dozen buffers
    const uint16_t b = order[i];
    uint32_t j = i;
    for (; j > 0; --j) {
      const uint16_t a = order[j - 1];
      const bool before = size_[b] > size_[a] || (size_[b] == size_[a] && (first_[b] < first_[a] ||
                                                                             (first_[b] == first_[a] && b < a)));
      if (!before) break;
      order[j] = a;
    }
    order[j] = b;
  }
  bool placed[kMaxTensors] = {};
  uint64_t arena = 0;
  for (uint32_t i = 0; i < n_bufs_; ++i) {
    const uint16_t b = order[i];
    // lowest aligned offset that clears every placed buffer alive at the same time
    const uint64_t at = LowestClear(off_, size_, n_bufs_, size_[b], [&](uint32_t o) {
      return placed[o] && first_[o] <= last_[b] && first_[b] <= last_[o];
    });
    off_[b] = at;
    placed[b] = true;
    if (AlignUp(at + size_[b]) > arena) arena = AlignUp(at + size_[b]);
  }
  for (uint32_t t = 0; t < n_tensors_; ++t) offsets[t] = buf_of_[t] >= 0 ? uint32_t(off_[buf_of_[t]]) : 0;
  return arena;
}

uint64_t Lifetimes::PlaceScratch(uint32_t op, uint64_t bytes) const {
  return LowestClear(off_, size_, n_bufs_, bytes, [&](uint32_t o) { return first_[o] <= op && op <= last_[o]; });
}

}  // namespace slimhar
