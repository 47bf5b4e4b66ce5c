#include "engine.h"

#include "kernels.h"

namespace slimhar {

const char* KernelFlavour() { return SLIMHAR_KERNELS_DSP ? "dsp" : "portable"; }

EngineStatus Invoke(const Plan& plan, uint8_t* arena, size_t arena_size, OpHook hook, void* ctx) {
  if (arena == nullptr || plan.n_ops == 0) return EngineStatus::kBadArgs;
  if (uint64_t(arena_size) < plan.arena_total() || (reinterpret_cast<uintptr_t>(arena) % kArenaAlign) != 0)
    return EngineStatus::kArenaTooSmall;
  void* scratch = arena + plan.arena_bytes;  // arena_bytes is a multiple of kArenaAlign
  for (uint32_t k = 0; k < plan.n_ops; ++k) {
    const OpPlan& op = plan.ops[k];
    const int8_t* a = reinterpret_cast<const int8_t*>(arena + op.in_off[0]);
    const int8_t* b = reinterpret_cast<const int8_t*>(arena + op.in_off[1]);
    int8_t* y = reinterpret_cast<int8_t*>(arena + op.out_off);
    switch (op.kind) {
      case OpKind::kConv: kernels::Conv(op, a, y, scratch); break;
      case OpKind::kFullyConnected: kernels::FullyConnected(op, a, y, scratch); break;
      case OpKind::kPad: kernels::Pad(op, a, y); break;
      case OpKind::kAdd: kernels::Add(op, a, b, y); break;
      case OpKind::kGather: kernels::Gather(op, a, y); break;
      case OpKind::kMaximum: kernels::Maximum(op, a, b, y); break;
      case OpKind::kReshape: break;  // the planner made its output a view of its input
    }
    if (hook) hook(k, ctx);
  }
  return EngineStatus::kOk;
}

}  // namespace slimhar
