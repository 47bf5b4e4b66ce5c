// RESHAPE: a pure view (same scale and zero point): the planner aliases its output to its input,
// so it runs nothing.
#include "../prepare_ctx.h"

namespace slimhar {
namespace prep {

EngineStatus PrepareReshape(const Ctx& c, const OpArgs& a, OpPlan* op, QuantStore*) {
  const TensorInfo* in = a.in;
  const TensorInfo& out = *a.out;
  const bool has_shape = a.present[1];
  NEED(in[0].elems == out.elems, EngineStatus::kBadTensor);
  if (has_shape) {  // a constant new shape that agrees with the output tensor (-1: inferred)
    const TensorInfo& sh = in[1];
    NEED(sh.type == kTypeInt32 && sh.rank == 1 && sh.data != nullptr && sh.data_size == 4 * sh.elems,
         EngineStatus::kUnsupported);
    NEED(sh.elems == out.rank, EngineStatus::kBadTensor);
    for (uint32_t d = 0; d < out.rank; ++d) {
      const int32_t v = int32_t(fb::Rd32(sh.data + 4 * d));
      NEED(v == out.dims[d] || v == -1, EngineStatus::kBadTensor);
    }
  }
  float s1, s2;
  TRY(ActQuant(c, in[0], &s1, &op->in_zp[0]));
  TRY(ActQuant(c, out, &s2, &op->out_zp));
  NEED(s1 == s2 && op->in_zp[0] == op->out_zp, EngineStatus::kUnsupported);  // a pure view
  return EngineStatus::kOk;
}

void EvalReshape(const OpPlan&, uint8_t*, void*) {}  // the output is a view of the input

}  // namespace prep
}  // namespace slimhar
