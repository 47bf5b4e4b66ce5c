#include "plan_cache.h"

namespace slimhar {

PlanCache::PlanCache(Plan* const* slots, uint32_t n_slots, int32_t* mult, int8_t* shift, uint32_t channels_per_slot)
    : slots_(slots), n_slots_(n_slots > kMaxSlots ? kMaxSlots : n_slots), mult_(mult), shift_(shift),
      per_slot_(channels_per_slot) {
  for (uint32_t i = 0; i < kMaxSlots; ++i) {
    subnet_[i] = kEmpty;
    used_at_[i] = 0;
  }
}

bool PlanCache::Contains(uint32_t subnet) const {
  for (uint32_t i = 0; i < n_slots_; ++i)
    if (subnet_[i] == subnet) return true;
  return false;
}

void PlanCache::Evict(uint32_t subnet) {
  for (uint32_t i = 0; i < n_slots_; ++i)
    if (subnet_[i] == subnet) subnet_[i] = kEmpty;
}

const Plan* PlanCache::Get(const Blob& blob, uint32_t subnet, EngineStatus* status) {
  if (subnet >= blob.subnet_count()) {  // refused before a slot is given up for it
    if (status) *status = EngineStatus::kBadArgs;
    return nullptr;
  }
  uint32_t victim = 0;
  for (uint32_t i = 0; i < n_slots_; ++i) {
    if (subnet_[i] == subnet) {  // the common case: a switch to a prepared subnet
      used_at_[i] = ++clock_;
      if (status) *status = EngineStatus::kOk;
      return slots_[i];
    }
    if (subnet_[i] == kEmpty || (subnet_[victim] != kEmpty && used_at_[i] < used_at_[victim])) victim = i;
  }
  if (n_slots_ == 0) {
    if (status) *status = EngineStatus::kBadArgs;
    return nullptr;
  }
  QuantStore store{mult_ + victim * per_slot_, shift_ + victim * per_slot_, per_slot_};
  subnet_[victim] = kEmpty;
  const EngineStatus st = PrepareSubnet(blob, subnet, slots_[victim], &store, true, &proofs_);
  ++prepares_;
  if (status) *status = st;
  if (st != EngineStatus::kOk) return nullptr;
  subnet_[victim] = subnet;
  used_at_[victim] = ++clock_;
  return slots_[victim];
}

}  // namespace slimhar
