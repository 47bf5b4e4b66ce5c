// CONV_2D: kernel (kh, 1), stride along H only, SAME or VALID, fused NONE / RELU, per-channel int8 weights
// (a pool slice or the model's own buffer), optional int32 bias. Kernels: kernels_dsp.cpp / kernels_portable.cpp.
#include "../prepare_ctx.h"
#include "../kernels.h"

namespace slimhar {
namespace prep {

EngineStatus PrepareConv(const Ctx& c, const OpArgs& a, OpPlan* op, QuantStore* store) {
  const fb::Table* opt = a.opt;
  const TensorInfo* in = a.in;
  const TensorInfo& out = *a.out;
  const TensorInfo* bias = a.bias();
  const TensorInfo &x = in[0], &w = in[1];
  int8_t padding = 0, act = 0;
  int32_t stride_w = 1, stride_h = 1, dil_w = 1, dil_h = 1;
  NEED(opt != nullptr, EngineStatus::kBadModel);
  NEED(fb::Scalar<int8_t>(c.b, *opt, 0, 0, &padding) && fb::Scalar<int32_t>(c.b, *opt, 1, 0, &stride_w) &&
           fb::Scalar<int32_t>(c.b, *opt, 2, 0, &stride_h) && fb::Scalar<int8_t>(c.b, *opt, 3, 0, &act) &&
           fb::Scalar<int32_t>(c.b, *opt, 4, 1, &dil_w) && fb::Scalar<int32_t>(c.b, *opt, 5, 1, &dil_h),
       EngineStatus::kBadModel);
  NEED(stride_w == 1 && dil_w == 1 && dil_h == 1 && stride_h >= 1 && stride_h <= 255, EngineStatus::kUnsupported);
  NEED(padding == kPadSame || padding == kPadValid, EngineStatus::kUnsupported);
  NEED(x.rank == 4 && w.rank == 4 && out.rank == 4 && x.dims[0] == 1 && out.dims[0] == 1, EngineStatus::kBadTensor);
  NEED(IsConst(w) && w.dims[2] == 1 && w.dims[3] == x.dims[3] && w.dims[0] == out.dims[3], EngineStatus::kBadTensor);
  NEED(out.dims[2] == x.dims[2] && w.dims[1] <= 255, EngineStatus::kBadTensor);
  const int32_t H = x.dims[1], kh = w.dims[1];
  int32_t ho, pad_total = 0;
  if (padding == kPadValid) {
    NEED(H >= kh, EngineStatus::kBadTensor);
    ho = (H - kh) / stride_h + 1;
  } else {
    ho = (H + stride_h - 1) / stride_h;
    pad_total = (ho - 1) * stride_h + kh - H;
    if (pad_total < 0) pad_total = 0;
  }
  NEED(out.dims[1] == ho && pad_total <= 255, EngineStatus::kBadTensor);
  float s_in, s_out;
  TRY(ActQuant(c, x, &s_in, &op->in_zp[0]));
  TRY(ActQuant(c, out, &s_out, &op->out_zp));
  ConvOp& cv = op->conv;
  cv.params.input_offset = -op->in_zp[0];
  cv.params.output_offset = op->out_zp;
  TRY(ActRange(act, op->out_zp, &cv.params.act_min, &cv.params.act_max));
  TRY(BindWeights(c, w, &cv.w));
  NEED(cv.w.segs == uint32_t(kh) && cv.w.seg_len == uint32_t(x.dims[3]), EngineStatus::kBadRef);
  // at most 2^16 products of |int8| x |int8 - zp| <= 127 x 255 per output: the int32
  // accumulator cannot overflow
  NEED(uint32_t(kh) * uint32_t(x.dims[3]) <= kMaxDot, EngineStatus::kTooLarge);
  TRY(BindChannels(c, w, bias, s_in, s_out, &cv.bias, &cv.quant, store));
  cv.params.kh = uint8_t(kh);
  cv.params.stride = uint8_t(stride_h);
  cv.params.pad_top = uint8_t(pad_total / 2);
  cv.params.pad_bottom = uint8_t(pad_total - pad_total / 2);
  return EngineStatus::kOk;
}

void EvalConv(const OpPlan& op, uint8_t* arena, void* scratch) {
  const ConvOp& cv = op.conv;
  kernels::ConvS8(cv.params, cv.quant, op.in, In(op, arena, 0), cv.w, cv.bias, op.out, Out(op, arena), scratch);
}

}  // namespace prep
}  // namespace slimhar
