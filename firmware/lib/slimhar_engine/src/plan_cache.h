// Prepared plans for the subnets a device switches between. Preparing a subnet from its
// flatbuffer costs tens of thousands of instructions, and a few thousand from its proven stored
// plan; switching to a subnet whose plan is cached costs a lookup. With at least as
// many slots as subnets, every subnet is prepared once at start-up; with fewer, the least
// recently used plan is replaced. Weights are never copied either way.
#pragma once
#include <cstdint>

#include "engine.h"

namespace slimhar {

class PlanCache {
 public:
  // slots[n_slots]: plans with their op storage bound (Plan::ops); mult / shift hold
  // n_slots * channels_per_slot entries (channels_per_slot: SLIMHAR_MODEL_STORE_CHANNELS from
  // `slimhar blob export-c`, 0 when every subnet carries its multiplier table).
  PlanCache(Plan* const* slots, uint32_t n_slots, int32_t* mult, int8_t* shift, uint32_t channels_per_slot);

  // The plan of `subnet`, prepared now if it is not cached. nullptr (and *status) on failure.
  const Plan* Get(const Blob& blob, uint32_t subnet, EngineStatus* status = nullptr);
  bool Contains(uint32_t subnet) const;
  // Drops subnet's plan (if cached): its next Get prepares it again -- from its proven stored
  // plan when it has one, which is what a cold switch costs (the firmware measures it at start-up).
  void Evict(uint32_t subnet);
  uint32_t prepares() const { return prepares_; }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  static constexpr uint32_t kMaxSlots = 256;
  Plan* const* slots_;
  uint32_t n_slots_;
  int32_t* mult_;
  int8_t* shift_;
  uint32_t per_slot_;
  uint32_t subnet_[kMaxSlots];
  uint32_t used_at_[kMaxSlots];
  uint32_t clock_ = 0, prepares_ = 0;
  PlanProofs proofs_;  // the first prepare of a subnet proves its stored plan, later ones decode it
};

}  // namespace slimhar
