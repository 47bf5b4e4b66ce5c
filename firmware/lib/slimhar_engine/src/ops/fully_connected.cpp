// FULLY_CONNECTED: default weights format, fused NONE / RELU, per-channel (or per-tensor) int8 weights,
// optional int32 bias. Kernels: kernels_dsp.cpp / kernels_portable.cpp.
#include "../prepare_ctx.h"
#include "../kernels.h"

namespace slimhar {
namespace prep {

EngineStatus PrepareFullyConnected(const Ctx& c, const OpArgs& a, OpPlan* op, QuantStore* store) {
  const fb::Table* opt = a.opt;
  const TensorInfo* in = a.in;
  const TensorInfo& out = *a.out;
  const TensorInfo* bias = a.bias();
  const TensorInfo &x = in[0], &w = in[1];
  int8_t act = 0, fmt = 0;
  if (opt) {
    NEED(fb::Scalar<int8_t>(c.b, *opt, 0, 0, &act) && fb::Scalar<int8_t>(c.b, *opt, 1, 0, &fmt),
         EngineStatus::kBadModel);
  }
  NEED(fmt == 0 && w.rank == 2 && IsConst(w), EngineStatus::kUnsupported);
  NEED(x.elems == uint32_t(w.dims[1]) && out.elems == uint32_t(w.dims[0]), EngineStatus::kBadTensor);
  float s_in, s_out;
  TRY(ActQuant(c, x, &s_in, &op->in_zp[0]));
  TRY(ActQuant(c, out, &s_out, &op->out_zp));
  FcOp& fc = op->fc;
  fc.params.input_offset = -op->in_zp[0];
  fc.params.output_offset = op->out_zp;
  TRY(ActRange(act, op->out_zp, &fc.params.act_min, &fc.params.act_max));
  TRY(BindWeights(c, w, &fc.w));
  NEED(uint32_t(fc.w.segs) * fc.w.seg_len == x.elems, EngineStatus::kBadRef);
  NEED(x.elems <= kMaxDot, EngineStatus::kTooLarge);
  TRY(BindChannels(c, w, bias, s_in, s_out, &fc.bias, &fc.quant, store));
  return EngineStatus::kOk;
}

void EvalFullyConnected(const OpPlan& op, uint8_t* arena, void* scratch) {
  const FcOp& fc = op.fc;
  kernels::FullyConnectedS8(fc.params, fc.quant, In(op, arena, 0), fc.w, fc.bias, Out(op, arena), scratch);
}

}  // namespace prep
}  // namespace slimhar
