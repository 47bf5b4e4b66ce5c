#pragma once
#include "engine.h"
#include "kernels.h"

namespace slimhar {
// The largest scratch any op of the plan needs.
inline uint32_t ScratchBytes(const Plan& plan) {
  uint32_t m = 0;
  for (uint32_t k = 0; k < plan.n_ops; ++k) {
    const uint32_t s = kernels::OpScratchBytes(plan.ops[k]);
    if (s > m) m = s;
  }
  return m;
}
}  // namespace slimhar
