// PAD: zero padding along H, W, C (batch never), the value the output zero point (no constant-values
// input). Kernel: kernels_elementwise.cpp.
#include "../prepare_ctx.h"
#include "../kernels.h"

namespace slimhar {
namespace prep {

EngineStatus PreparePad(const Ctx& c, const OpArgs& a, OpPlan* op, QuantStore*) {
  const TensorInfo* in = a.in;
  const TensorInfo& out = *a.out;
  const TensorInfo &x = in[0], &p = in[1];
  NEED(x.rank == 4 && out.rank == 4, EngineStatus::kUnsupported);
  NEED(p.type == kTypeInt32 && p.data != nullptr && p.rank == 2 && p.dims[0] == 4 && p.dims[1] == 2 &&
           p.data_size == 32,
       EngineStatus::kBadTensor);
  TRY(ActQuant(c, x, nullptr, &op->in_zp[0]));
  TRY(ActQuant(c, out, nullptr, &op->out_zp));
  for (int d = 0; d < 4; ++d) {
    const int32_t lo = int32_t(fb::Rd32(p.data + 8 * d)), hi = int32_t(fb::Rd32(p.data + 8 * d + 4));
    NEED(lo >= 0 && hi >= 0 && lo <= 4096 && hi <= 4096, EngineStatus::kBadTensor);
    NEED(out.dims[d] == x.dims[d] + lo + hi, EngineStatus::kBadTensor);
    if (d == 0) {
      NEED(lo == 0 && hi == 0, EngineStatus::kUnsupported);
    } else {
      op->pad.before[d - 1] = uint16_t(lo);
    }
  }
  // a quantized PAD without constant values pads with the output zero point
  op->pad.value = int8_t(op->out_zp);
  return EngineStatus::kOk;
}

void EvalPad(const OpPlan& op, uint8_t* arena, void*) {
  kernels::PadS8(op.pad, op.in, In(op, arena, 0), op.out, Out(op, arena));
}

}  // namespace prep
}  // namespace slimhar
