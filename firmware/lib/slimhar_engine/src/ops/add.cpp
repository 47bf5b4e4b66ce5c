// ADD: same shapes (no broadcasting), TFLite's int8 rescaling with 20 bits of headroom. Kernel:
// kernels_elementwise.cpp.
#include "../prepare_ctx.h"
#include "../kernels.h"
#include "../quant_math.h"

namespace slimhar {
namespace prep {

EngineStatus PrepareAdd(const Ctx& c, const OpArgs& a, OpPlan* op, QuantStore*) {
  const fb::Table* opt = a.opt;
  const TensorInfo* in = a.in;
  const TensorInfo& out = *a.out;
  int8_t act = 0;
  if (opt) NEED(fb::Scalar<int8_t>(c.b, *opt, 0, 0, &act), EngineStatus::kBadModel);
  for (int k = 0; k < 2; ++k) {  // no broadcasting: the exporter never emits it
    NEED(in[k].rank == out.rank, EngineStatus::kUnsupported);
    for (uint32_t d = 0; d < out.rank; ++d) NEED(in[k].dims[d] == out.dims[d], EngineStatus::kUnsupported);
  }
  float s1, s2, so;
  TRY(ActQuant(c, in[0], &s1, &op->in_zp[0]));
  TRY(ActQuant(c, in[1], &s2, &op->in_zp[1]));
  TRY(ActQuant(c, out, &so, &op->out_zp));
  AddParams& p = op->add;
  p.input_offset[0] = -op->in_zp[0];
  p.input_offset[1] = -op->in_zp[1];
  p.output_offset = op->out_zp;
  TRY(ActRange(act, op->out_zp, &p.act_min, &p.act_max));
  // TFLite's int8 ADD: both inputs rescaled to 2*max(s1, s2) with 20 bits of headroom
  const double twice_max = 2.0 * double(s1 > s2 ? s1 : s2);
  const double real[3] = {double(s1) / twice_max, double(s2) / twice_max, twice_max / (double(1 << 20) * double(so))};
  for (int k = 0; k < 3; ++k) {
    int shift = 0;
    NEED(q::QuantizeMultiplier(real[k], &p.mult[k], &shift) && shift <= 0, EngineStatus::kBadTensor);
    p.shift[k] = int8_t(shift);
  }
  return EngineStatus::kOk;
}

void EvalAdd(const OpPlan& op, uint8_t* arena, void*) {
  kernels::AddS8(op.add, op.out_size, In(op, arena, 0), In(op, arena, 1), Out(op, arena));
}

}  // namespace prep
}  // namespace slimhar
