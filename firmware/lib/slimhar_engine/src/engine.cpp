#include "engine.h"

#include "kernels.h"
#include "prepare_ctx.h"

namespace slimhar {

const char* KernelFlavour() { return SLIMHAR_KERNELS_DSP ? "dsp" : "portable"; }

namespace {
// each op's Eval entry point (ops/<stem>.cpp), in OpKind order (ops.def)
using EvalFn = void (*)(const OpPlan&, uint8_t*, void*);
constexpr EvalFn kEval[] = {
#define SLIMHAR_OP(kind, name, code, options, min_in, max_in, stem) prep::Eval##stem,
#include "ops.def"
#undef SLIMHAR_OP
};
}  // namespace

EngineStatus Invoke(const Plan& plan, uint8_t* arena, size_t arena_size, OpHook hook, void* ctx) {
  if (arena == nullptr || plan.n_ops == 0) return EngineStatus::kBadArgs;
  if (uint64_t(arena_size) < plan.arena_total() || (reinterpret_cast<uintptr_t>(arena) % kArenaAlign) != 0)
    return EngineStatus::kArenaTooSmall;
  for (uint32_t k = 0; k < plan.n_ops; ++k) {
    const OpPlan& op = plan.ops[k];
    // scratch_off + the op's scratch <= arena_total() (Prepare), a multiple of kArenaAlign
    void* scratch = SLIMHAR_KERNELS_DSP ? arena + op.scratch_off : nullptr;
    kEval[uint32_t(op.kind)](op, arena, scratch);  // kind: set by Prepare from ops.def, < the table's size
    if (hook) hook(k, ctx);
  }
  return EngineStatus::kOk;
}

}  // namespace slimhar
