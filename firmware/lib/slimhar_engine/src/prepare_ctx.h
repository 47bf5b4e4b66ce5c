// What Prepare's per-op functions (ops/<stem>.cpp) share: the TFLite schema numbers the engine
// reads, a tensor as read from the flatbuffer (TensorInfo), the model being prepared (Ctx), the
// checks every op uses (prepare.cpp), and each op's two entry points, declared from ops.def.
// Internal to the engine: not part of its API (engine.h).
#pragma once
#include <cstdint>

#include "engine.h"
#include "fb_reader.h"

namespace slimhar {
namespace prep {

// TFLite schema numbers (schema.fbs) of what the exporter emits; the ops' own are in ops.def.
enum : int8_t { kTypeInt32 = 2, kTypeInt16 = 7, kTypeInt8 = 9 };
enum : int8_t { kActNone = 0, kActRelu = 1 };
enum : int8_t { kPadSame = 0, kPadValid = 1 };
enum : uint8_t { kOptNone = 0 };  // BuiltinOptions union tag of no options
constexpr uint32_t kMaxDot = 1u << 16;  // products per output of a conv / fc

struct TensorInfo {
  int8_t type = -1;
  uint32_t rank = 0;
  int32_t dims[4] = {0, 0, 0, 0};
  uint32_t elems = 0;
  uint32_t n_scale = 0;
  int32_t q_dim = 0;              // quantized_dimension of a per-axis quantization
  fb::Vec scale, zp;
  const uint8_t* data = nullptr;  // constant bytes in the flatbuffer
  uint32_t data_size = 0;
  bool pool = false;              // bound to a slice of the blob's pool
  WeightRef ref{};
};

struct Ctx {
  fb::Buf b;
  fb::Vec tensors, buffers, opcodes, ops;
  const Blob* blob = nullptr;
  SubnetInfo sub{};
  // the blob's precomputed multipliers (null: compute them), consumed op by op
  const uint8_t* mults = nullptr;
  uint32_t n_mults = 0;
  mutable uint32_t mults_used = 0;
  // which weight reference binds each tensor (0: none, else its index + 1), indexed once per
  // prepare instead of scanning every reference for every tensor read
  uint8_t ref_of[kMaxTensors] = {};
};

#define TRY(expr)                                    \
  do {                                               \
    const EngineStatus st_ = (expr);                 \
    if (st_ != EngineStatus::kOk) return st_;        \
  } while (0)
#define NEED(cond, err)           \
  do {                            \
    if (!(cond)) return (err);    \
  } while (0)

// A tensor of the model: read and bounds-checked (shape, type, buffer, quantization, pool reference).
EngineStatus ReadTensor(const Ctx& c, int32_t idx, TensorInfo* t);
bool IsConst(const TensorInfo& t);
// An int8 activation with per-tensor quantization.
EngineStatus ActQuant(const Ctx& c, const TensorInfo& t, float* scale, int32_t* zp);
// Act range of a fused activation on an int8 output (TFLite's CalculateActivationRangeQuantized).
EngineStatus ActRange(int8_t act, int32_t zp, int32_t* lo, int32_t* hi);
// Binds the weights of a conv ([O, kh, 1, I]) or fc ([K, F]) tensor, in place.
EngineStatus BindWeights(const Ctx& c, const TensorInfo& w, WeightView* v);
// Per-channel weight scales + int32 bias and the requantization multipliers (the blob's table,
// or TFLM's double computation); `bias` null: the layer has none.
EngineStatus BindChannels(const Ctx& c, const TensorInfo& w, const TensorInfo* bias, float s_in, float s_out,
                          BiasRef* b, ChannelQuant* quant, QuantStore* store);

// One op's operands as Prepare found them: its options table (null: absent, the schema's
// defaults), its inputs (in[i] valid where present[i]), its output.
struct OpArgs {
  const fb::Table* opt;
  const TensorInfo* in;     // [3]
  const bool* present;      // [3]
  const TensorInfo* out;
  const TensorInfo* bias() const { return present[2] ? &in[2] : nullptr; }
};

// The arena bytes of an op's input i and output (offsets the planner gave them).
inline const int8_t* In(const OpPlan& op, uint8_t* arena, uint32_t i) {
  return reinterpret_cast<const int8_t*>(arena + op.in_off[i]);
}
inline int8_t* Out(const OpPlan& op, uint8_t* arena) { return reinterpret_cast<int8_t*>(arena + op.out_off); }

// Prepare<stem>: validate the op exactly as far as the engine can run it as TFLM does, and fill
// its OpPlan (geometry is filled by the caller); Eval<stem>: run it on the arena.
#define SLIMHAR_OP(kind, name, code, options, min_in, max_in, stem)                     \
  EngineStatus Prepare##stem(const Ctx& c, const OpArgs& a, OpPlan* op, QuantStore* store); \
  void Eval##stem(const OpPlan& op, uint8_t* arena, void* scratch);
#include "ops.def"
#undef SLIMHAR_OP

}  // namespace prep
}  // namespace slimhar
