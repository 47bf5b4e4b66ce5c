// MAXIMUM: same shapes and quantization semantics as TFLite's reference. Kernel: kernels_elementwise.cpp.
#include "../prepare_ctx.h"
#include "../kernels.h"

namespace slimhar {
namespace prep {

EngineStatus PrepareMaximum(const Ctx& c, const OpArgs& a, OpPlan* op, QuantStore*) {
  const TensorInfo* in = a.in;
  const TensorInfo& out = *a.out;
  for (int k = 0; k < 2; ++k) {
    NEED(in[k].rank == out.rank, EngineStatus::kUnsupported);
    for (uint32_t d = 0; d < out.rank; ++d) NEED(in[k].dims[d] == out.dims[d], EngineStatus::kUnsupported);
    TRY(ActQuant(c, in[k], nullptr, &op->in_zp[k]));
  }
  TRY(ActQuant(c, out, nullptr, &op->out_zp));
  return EngineStatus::kOk;
}

void EvalMaximum(const OpPlan& op, uint8_t* arena, void*) {
  kernels::MaximumS8(op.out_size, In(op, arena, 0), In(op, arena, 1), Out(op, arena));
}

}  // namespace prep
}  // namespace slimhar
