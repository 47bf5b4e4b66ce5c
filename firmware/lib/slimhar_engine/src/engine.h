// slimhar's int8 inference engine: runs one subnet of a model.blob straight from the blob.
//
//   Prepare*()  reads the subnet's TFLite flatbuffer (bounds-checked), binds every weight tensor
//               to its slice of the shared pool IN PLACE (strides, no copy), computes the
//               per-channel requantization multipliers exactly as TFLite-Micro does, and plans
//               the activation arena from tensor lifetimes. Done once per subnet.
//   Invoke()    executes a prepared Plan on a caller-owned arena. Plans hold no mutable state,
//               so switching subnets is choosing another Plan: no weight is copied, ever.
//
// Outputs are bit-exact with TFLite-Micro's reference kernels. The kernels come in a portable
// C++ flavour and a Cortex-M4 DSP flavour (SMLAD), chosen at compile time (kernels.h).
#pragma once
#include <cstddef>
#include <cstdint>

#include "op_params.h"
#include "slimhar_blob.h"

namespace slimhar {

enum class EngineStatus : int {
  kOk = 0,
  kBadArgs,         // null pointers, subnet index out of range
  kBadModel,        // the flatbuffer is malformed (an offset or size outside it, a missing field)
  kUnsupported,     // a valid TFLite construct this engine does not run (op, type, geometry)
  kBadTensor,       // shapes / quantization of an op's tensors inconsistent
  kBadRef,          // a weight reference does not fit its tensor
  kTooLarge,        // more ops / tensors / channels than the Plan holds
  kArenaTooSmall,   // Invoke given fewer bytes than Plan::arena_total()
};
const char* EngineStatusName(EngineStatus s);

constexpr uint32_t kMaxOps = 24;       // the most ops any plan may hold (a ResNet subnet has 20)
constexpr uint32_t kMaxTensors = 96;   // tensors in one subgraph
constexpr uint32_t kArenaAlign = 16;
// The most arena + scratch one plan may need. Far above any Cortex-M's RAM, far below 2^32:
// Prepare refuses larger plans, so every offset and size a kernel derives from a plan fits
// 32 bits without wrapping. Sizes are computed in 64 bits until they have been checked.
constexpr uint32_t kMaxArenaBytes = 1u << 24;

enum class OpKind : uint8_t {
#define SLIMHAR_OP(kind, name, code, options, min_in, max_in, stem) kind,
#include "ops.def"
#undef SLIMHAR_OP
};

// The records of the ops that carry more than shapes (op_params.h: the kernels' arguments).
struct ConvOp {
  ConvParams params;
  WeightView w;
  BiasRef bias;
  ChannelQuant quant;
};
struct FcOp {
  FcParams params;
  WeightView w;
  BiasRef bias;
  ChannelQuant quant;
};

// One op, fully resolved: where its tensors lie in the arena, their shapes and zero points as the
// model has them, and its own parameters -- the member of the union its kind names (RESHAPE and
// MAXIMUM have none).
struct OpPlan {
  OpKind kind;
  uint8_t n_in;
  Dims in, out;                   // NHWC (GATHER: [outer, axis, inner] of its input)
  uint32_t in_off[2], out_off;
  uint32_t scratch_off;           // where the DSP kernels' scratch of this op lies (scratch.h sizes it)
  uint32_t out_size;              // elements
  int32_t in_zp[2], out_zp;       // the tensors' zero points (the kernels take offsets from them)
  union {
    ConvOp conv;
    FcOp fc;
    AddParams add;
    PadParams pad;
    GatherParams gather;
  };
};
// The weights / requantization of a conv or fully-connected op (null for the others).
inline const WeightView* WeightsOf(const OpPlan& op) {
  return op.kind == OpKind::kConv ? &op.conv.w : op.kind == OpKind::kFullyConnected ? &op.fc.w : nullptr;
}
inline const ChannelQuant* QuantOf(const OpPlan& op) {
  return op.kind == OpKind::kConv ? &op.conv.quant : op.kind == OpKind::kFullyConnected ? &op.fc.quant : nullptr;
}

// A prepared subnet. Its op records live in caller-owned storage of op_capacity records (the
// firmware sizes it to the blob's largest subnet, SLIMHAR_MODEL_MAX_OPS from `slimhar blob
// export-c`; PlanWith<N> carries its own); Prepare refuses a model with more ops than that.
struct Plan {
  uint32_t subnet = 0;
  uint32_t n_ops = 0;
  OpPlan* ops = nullptr;
  uint32_t op_capacity = 0;
  // Set by the caller, like op_capacity: the arena bytes it will give Invoke, 0 for no limit. The
  // DSP kernels' tiles (scratch.h) are the budget's, the fastest, wherever the plan's arena +
  // scratch stays within it; a smaller limit makes Prepare take smaller tiles where that lowers
  // the peak, down to the least this subnet can run in (1: always the least). The firmware passes
  // its static arena, so `export-c --least-ram` (an arena sized to the least peak of the largest
  // subnet) makes only the subnets that need it slower. The blob stores each subnet's plan made
  // with no limit and, where its tiles differ there, the one made for that least-RAM arena: a
  // limit that gives other tiles than both is not proven, and prepared from the flatbuffer.
  uint32_t ram_limit = 0;
  uint32_t arena_bytes = 0;      // activations, planned from lifetimes
  // The DSP kernels' scratch, one op's at a time, placed in the activations' gaps where they are
  // large enough (Lifetimes::PlaceScratch): scratch_bytes is what it adds ABOVE the activations
  // (DSP flavour; 0 for the portable one, whose kernels need none). dsp_scratch_bytes is the
  // same figure computed and bounded by every flavour, so a model is accepted or refused alike.
  uint32_t scratch_bytes = 0;
  uint32_t dsp_scratch_bytes = 0;
  uint32_t input_off = 0, input_size = 0, output_off = 0, output_size = 0;
  float input_scale = 0, output_scale = 0;
  int32_t input_zp = 0, output_zp = 0;
  uint32_t macs = 0;
  // Where the plan came from: the subnet's flatbuffer (kComputed) or the blob's stored plan, used
  // only once proven identical to what Prepare computes (kStored); and, for a computed plan of a
  // subnet that has a stored one, whether the two agreed (StoredProof).
  enum class Source : uint8_t { kComputed, kStored } source = Source::kComputed;
  enum class StoredProof : uint8_t { kNone, kProven, kDiffers } stored_proof = StoredProof::kNone;
  uint64_t arena_total() const { return uint64_t(arena_bytes) + scratch_bytes; }  // <= kMaxArenaBytes
};

// A plan with storage for N op records (tests, tools, a firmware with one plan).
template <uint32_t N>
struct PlanWith : Plan {
  static_assert(N >= 1 && N <= kMaxOps, "op capacity");
  OpPlan storage[N];
  PlanWith() {
    ops = storage;
    op_capacity = N;
  }
  PlanWith(const PlanWith&) = delete;  // a copy would point at the other plan's records
  PlanWith& operator=(const PlanWith&) = delete;
};
using FullPlan = PlanWith<kMaxOps>;

// Where Prepare puts per-channel multipliers and shifts: caller-owned, shared by many plans.
struct QuantStore {
  int32_t* mult;
  int8_t* shift;
  uint32_t capacity;
  uint32_t used = 0;
};

// How many subnets' proofs a PlanProofs holds (two bits each; a subnet past them is always
// prepared from its flatbuffer): the blob format's most subnets, unless the build says fewer --
// the firmware, whose application takes at most 256, passes -DSLIMHAR_MAX_PROVEN_SUBNETS=256.
#ifndef SLIMHAR_MAX_PROVEN_SUBNETS
#define SLIMHAR_MAX_PROVEN_SUBNETS 4096
#endif
constexpr uint32_t kMaxProvenSubnets = SLIMHAR_MAX_PROVEN_SUBNETS;
static_assert(kMaxProvenSubnets >= 32 && kMaxProvenSubnets % 32 == 0, "whole 32-bit words of proofs");

// Which stored plans of one open blob have been proven: a blob may carry each subnet's plan as
// the exporter computed it (docs/blob-format.md "Stored plan", quantize/plan.py). PrepareSubnet
// given proofs prepares a subnet from its flatbuffer the first time, decodes the stored plan and
// compares every field; only a plan found identical is used from then on, so a later (cold)
// prepare of that subnet decodes a few hundred bytes instead of parsing the flatbuffer. A stored
// plan is never trusted on its own: a wrong or crafted one costs the fast path, nothing else.
// A subnet may carry a second stored plan, for the blob's least-RAM arena (SubnetInfo::least_plan):
// the one found identical is the one used. The proofs are tied to the blob they were made on (its
// object and CRC) and to the Plan::ram_limit they were made under (another limit may give other
// tiles: proofs made under one are not used under another, and a proof under a new limit starts
// over); as with the multiplier table, the blob's bytes must not change while it is open.
class PlanProofs {
 public:
  // whether a stored plan of subnet was proven under ram_limit; least_ram (if given): that it was
  // the second one
  bool Has(const Blob& blob, uint32_t subnet, uint32_t ram_limit, bool* least_ram = nullptr) const;
  void Set(const Blob& blob, uint32_t subnet, uint32_t ram_limit, bool least_ram = false);
  void Clear();

 private:
  const Blob* blob_ = nullptr;
  uint32_t crc_ = 0, ram_limit_ = 0;
  uint32_t bits_[kMaxProvenSubnets / 32] = {};
  uint32_t least_[kMaxProvenSubnets / 32] = {};  // the proven one is the least-RAM plan
};

// A subnet of a validated blob: its flatbuffer + weight references into the shared pool.
// blob_multipliers: take the requantization multipliers the blob carries (computed at export
// exactly as TFLM does: no floating point here), else compute them in double as TFLM's Prepare.
// proofs: use and prove stored plans (above); null: always prepare from the flatbuffer.
EngineStatus PrepareSubnet(const Blob& blob, uint32_t subnet, Plan* plan, QuantStore* store,
                           bool blob_multipliers = true, PlanProofs* proofs = nullptr);
// A standalone .tflite (weights inside its buffers), e.g. from `slimhar blob unpack`.
EngineStatus PrepareModel(const uint8_t* model, uint32_t size, Plan* plan, QuantStore* store);

// Called after each op (profiling: per-op instruction counts in engine_check).
using OpHook = void (*)(uint32_t op_index, void* ctx);
EngineStatus Invoke(const Plan& plan, uint8_t* arena, size_t arena_size, OpHook hook = nullptr, void* ctx = nullptr);
inline int8_t* InputOf(const Plan& p, uint8_t* arena) { return reinterpret_cast<int8_t*>(arena + p.input_off); }
inline const int8_t* OutputOf(const Plan& p, const uint8_t* arena) {
  return reinterpret_cast<const int8_t*>(arena + p.output_off);
}

// The kernel flavour compiled in: "dsp" (Cortex-M4 SMLAD) or "portable".
const char* KernelFlavour();

}  // namespace slimhar
