// GATHER: constant int32 indices along one axis, batch_dims 0, every index checked. Kernel:
// kernels_elementwise.cpp.
#include "../prepare_ctx.h"
#include "../kernels.h"

namespace slimhar {
namespace prep {

EngineStatus PrepareGather(const Ctx& c, const OpArgs& a, OpPlan* op, QuantStore*) {
  const fb::Table* opt = a.opt;
  const TensorInfo* in = a.in;
  const TensorInfo& out = *a.out;
  const TensorInfo &x = in[0], &idx = in[1];
  int32_t axis = 0, batch_dims = 0;
  if (opt) {
    NEED(fb::Scalar<int32_t>(c.b, *opt, 0, 0, &axis) && fb::Scalar<int32_t>(c.b, *opt, 1, 0, &batch_dims),
         EngineStatus::kBadModel);
  }
  if (axis < 0) axis += int32_t(x.rank);
  NEED(batch_dims == 0 && axis >= 0 && uint32_t(axis) < x.rank, EngineStatus::kUnsupported);
  NEED(idx.type == kTypeInt32 && idx.rank == 1 && idx.data != nullptr && idx.data_size == 4 * idx.elems,
       EngineStatus::kUnsupported);
  NEED(out.rank == x.rank, EngineStatus::kBadTensor);
  for (uint32_t d = 0; d < x.rank; ++d)
    NEED(out.dims[d] == (d == uint32_t(axis) ? int32_t(idx.elems) : x.dims[d]), EngineStatus::kBadTensor);
  for (uint32_t k = 0; k < idx.elems; ++k) {
    const int32_t v = int32_t(fb::Rd32(idx.data + 4 * k));
    NEED(v >= 0 && v < x.dims[axis], EngineStatus::kBadTensor);
  }
  TRY(ActQuant(c, x, nullptr, &op->in_zp[0]));
  TRY(ActQuant(c, out, nullptr, &op->out_zp));
  op->gather.index = idx.data;
  op->gather.n_index = uint16_t(idx.elems);
  // the kernel walks [outer, axis, inner]: the input's Dims hold that geometry for it
  uint64_t outer = 1, inner = 1;
  for (int32_t d = 0; d < axis; ++d) outer *= uint32_t(x.dims[d]);
  for (uint32_t d = uint32_t(axis) + 1; d < x.rank; ++d) inner *= uint32_t(x.dims[d]);
  NEED(outer <= 65535 && inner <= 65535, EngineStatus::kTooLarge);
  op->in = Dims{uint16_t(outer), uint16_t(x.dims[axis]), uint16_t(inner)};
  return EngineStatus::kOk;
}

void EvalGather(const OpPlan& op, uint8_t* arena, void*) {
  kernels::GatherS8(op.gather, op.in, In(op, arena, 0), Out(op, arena));
}

}  // namespace prep
}  // namespace slimhar
