// Prepare: TFLite flatbuffer (+ the blob's weight references) -> Plan. Everything a kernel will
// trust is checked here once: field offsets, tensor types and shapes, quantization, weight
// slices, gather indices, op order.
#include <cstring>

#include "engine.h"
#include "fb_reader.h"
#include "prepare_ctx.h"
#include "planner.h"
#include "kernels.h"
#include "quant_math.h"
#include "scratch.h"
#include "stored_plan.h"

namespace slimhar {
namespace prep {


EngineStatus ReadTensor(const Ctx& c, int32_t idx, TensorInfo* t) {
  *t = TensorInfo{};
  NEED(idx >= 0 && uint32_t(idx) < c.tensors.len, EngineStatus::kBadModel);
  fb::Table tt;
  NEED(fb::VecTable(c.b, c.tensors, uint32_t(idx), &tt), EngineStatus::kBadModel);
  fb::Vec shape;
  NEED(fb::Vector(c.b, tt, 0, 4, &shape), EngineStatus::kBadModel);
  NEED(shape.len >= 1 && shape.len <= 4, EngineStatus::kUnsupported);
  t->rank = shape.len;
  uint64_t elems = 1;
  for (uint32_t d = 0; d < shape.len; ++d) {
    t->dims[d] = fb::VecI32(c.b, shape, d);
    NEED(t->dims[d] >= 1 && t->dims[d] <= 65535, EngineStatus::kBadTensor);
    elems *= uint64_t(t->dims[d]);
  }
  NEED(elems <= (1u << 24), EngineStatus::kTooLarge);
  t->elems = uint32_t(elems);
  NEED(fb::Scalar<int8_t>(c.b, tt, 1, 0, &t->type), EngineStatus::kBadModel);
  uint32_t buf_idx = 0;
  NEED(fb::Scalar<uint32_t>(c.b, tt, 2, 0, &buf_idx), EngineStatus::kBadModel);
  if (buf_idx != 0) {
    fb::Table bt;
    NEED(fb::VecTable(c.b, c.buffers, buf_idx, &bt), EngineStatus::kBadModel);
    fb::Vec data;
    NEED(fb::Vector(c.b, bt, 0, 1, &data), EngineStatus::kBadModel);
    uint64_t ext_off = 0;
    NEED(fb::Scalar<uint64_t>(c.b, bt, 1, 0, &ext_off), EngineStatus::kBadModel);
    NEED(ext_off == 0, EngineStatus::kUnsupported);  // buffers outside the flatbuffer
    if (data.len) {
      t->data = c.b.d + data.pos;
      t->data_size = data.len;
    }
  }
  fb::Table qt;
  bool has_q = false;
  NEED(fb::SubTable(c.b, tt, 4, &qt, &has_q), EngineStatus::kBadModel);
  if (has_q) {
    NEED(fb::Vector(c.b, qt, 2, 4, &t->scale), EngineStatus::kBadModel);
    NEED(fb::Vector(c.b, qt, 3, 8, &t->zp), EngineStatus::kBadModel);
    t->n_scale = t->scale.len;
    // one zero point per scale (TFLite), or one for all channels of a per-channel quantization
    // (the blob's form, docs/blob-format.md: quantize/tflite_io.py; BindChannels checks the
    // values), whose scales the blob may leave to its multiplier table (n_scale 0)
    NEED(t->zp.len == t->n_scale || (t->zp.len == 1 && t->n_scale != 1), EngineStatus::kBadTensor);
    NEED(fb::Scalar<int32_t>(c.b, qt, 6, 0, &t->q_dim), EngineStatus::kBadModel);
  }
  if (c.ref_of[idx]) {  // a slice of the pool: the flatbuffer must not carry the bytes too
    NEED(t->data == nullptr && c.blob->GetRef(c.sub, c.ref_of[idx] - 1u, &t->ref), EngineStatus::kBadRef);
    t->pool = true;
  }
  return EngineStatus::kOk;
}

bool IsConst(const TensorInfo& t) { return t.pool || t.data != nullptr; }

EngineStatus ActQuant(const Ctx& c, const TensorInfo& t, float* scale, int32_t* zp) {
  NEED(t.type == kTypeInt8 && !IsConst(t), EngineStatus::kUnsupported);
  NEED(t.n_scale == 1, EngineStatus::kBadTensor);  // per-tensor: TFLM's int8 kernels take one scale
  const float s = fb::VecF32(c.b, t.scale, 0);
  const int64_t z = fb::VecI64(c.b, t.zp, 0);
  NEED(s > 0.0f && s < 1e30f && z >= -128 && z <= 127, EngineStatus::kBadTensor);
  if (scale) *scale = s;
  if (zp) *zp = int32_t(z);
  return EngineStatus::kOk;
}

EngineStatus ActRange(int8_t act, int32_t zp, int32_t* lo, int32_t* hi) {
  *hi = 127;
  if (act == kActNone) {
    *lo = -128;
  } else if (act == kActRelu) {
    *lo = zp > -128 ? zp : -128;
  } else {
    return EngineStatus::kUnsupported;
  }
  return EngineStatus::kOk;
}

EngineStatus BindWeights(const Ctx& c, const TensorInfo& w, WeightView* v) {
  NEED(w.type == kTypeInt8, EngineStatus::kUnsupported);
  const uint32_t out = uint32_t(w.dims[0]);
  if (w.pool) {
    PoolTensor p;
    NEED(c.blob->GetPoolTensor(w.ref.pool, &p), EngineStatus::kBadRef);
    NEED(p.rank >= 2 && w.ref.out == out, EngineStatus::kBadRef);
    uint64_t mid = 1;
    for (uint32_t d = 1; d + 1 < p.rank; ++d) mid *= p.dims[d];
    // the tensor is the slice [out, dims[1..r-2], in], or that slice with its inner dims flattened
    bool same = w.rank == p.rank;
    for (uint32_t d = 1; same && d + 1 < p.rank; ++d) same = uint32_t(w.dims[d]) == p.dims[d];
    same = same && uint32_t(w.dims[w.rank - 1]) == w.ref.in;
    const bool flat = w.rank == 2 && uint64_t(w.dims[1]) == mid * w.ref.in;
    NEED(same || flat, EngineStatus::kBadRef);
    NEED(mid <= 65535, EngineStatus::kTooLarge);
    v->base = p.data;
    v->seg_stride = p.dims[p.rank - 1];
    v->out_stride = uint32_t(mid) * v->seg_stride;
    v->out = uint16_t(out);
    v->segs = uint16_t(mid);
    v->seg_len = w.ref.in;
    return EngineStatus::kOk;
  }
  NEED(w.data != nullptr && w.data_size == w.elems, EngineStatus::kBadTensor);
  v->base = reinterpret_cast<const int8_t*>(w.data);
  v->out = uint16_t(out);
  if (w.rank == 4) {  // [O, kh, kw=1, I]
    v->segs = uint16_t(w.dims[1] * w.dims[2]);
    v->seg_len = uint16_t(w.dims[3]);
  } else {
    NEED(w.rank == 2, EngineStatus::kUnsupported);
    v->segs = 1;
    v->seg_len = uint16_t(w.dims[1]);
  }
  v->seg_stride = v->seg_len;
  v->out_stride = uint32_t(v->segs) * v->seg_len;
  return EngineStatus::kOk;
}

// Per-channel weight scales + int32 bias; the multipliers TFLM computes in Prepare:
// real[o] = (double(s_in) * double(s_w[o])) / double(s_out).
// `bias` null: the layer has none (an optional input in TFLite), it adds 0.
EngineStatus BindChannels(const Ctx& c, const TensorInfo& w, const TensorInfo* bias, float s_in, float s_out,
                          BiasRef* b, ChannelQuant* quant, QuantStore* store) {
  const uint32_t n = uint32_t(w.dims[0]);
  // no scales (a quantization of one zero point): a blob subnet whose weight scales are its
  // multiplier table's, the only form that drops them; computing the multipliers needs them
  NEED(w.n_scale == n || w.n_scale == 1 || (w.n_scale == 0 && w.zp.len == 1 && c.mults != nullptr), EngineStatus::kBadTensor);
  NEED(w.n_scale == 1 || w.q_dim == 0, EngineStatus::kUnsupported);  // per output channel: axis 0
  for (uint32_t o = 0; o < w.zp.len; ++o) NEED(fb::VecI64(c.b, w.zp, o) == 0, EngineStatus::kUnsupported);
  // int32 as TFLite has it; int16 only inside a blob (its form of a bias whose values all fit:
  // the same values, widened back by unpack). TFLM runs no int16 bias with int8 weights: refused
  // in a standalone model.
  const uint8_t width = !bias ? 4 : bias->type == kTypeInt32 ? 4 : (bias->type == kTypeInt16 && c.blob) ? 2 : 0;
  if (bias) {
    NEED(width != 0 && bias->rank == 1 && uint32_t(bias->dims[0]) == n, EngineStatus::kBadTensor);
    NEED(bias->data != nullptr && bias->data_size == uint64_t(width) * n, EngineStatus::kBadTensor);
  }
  b->bytes = width;
  b->data = bias ? bias->data : nullptr;
  const bool room = store->used <= store->capacity && n <= store->capacity - store->used;
  int32_t* m = store->mult + (room ? store->used : 0);
  int8_t* sh = store->shift + (room ? store->used : 0);
  if (c.mults) {
    // computed at export exactly as below (quantize/requant.py; test_engine checks the two agree)
    // and checked against TFLM's ranges once, by Blob::Open (PrepareSubnet takes only an opened
    // blob): read in place from the blob (flash on a board) -- no floating point, no RAM, what
    // makes a cold switch cheap
    NEED(n <= c.n_mults - c.mults_used, EngineStatus::kBadTensor);
    const uint8_t* qm = c.mults + 4u * c.mults_used;
    const int8_t* qs = reinterpret_cast<const int8_t*>(c.mults + 4u * c.n_mults + c.mults_used);
    c.mults_used += n;
    quant->shift = qs;
    if ((reinterpret_cast<uintptr_t>(qm) & 3u) == 0) {  // the blob's buffer is aligned: use it as is
      quant->mult = reinterpret_cast<const int32_t*>(qm);
      return EngineStatus::kOk;
    }
    NEED(room, EngineStatus::kTooLarge);
    std::memcpy(m, qm, 4u * n);  // a caller's unaligned copy of the blob: the store holds them
    store->used += n;
    quant->mult = m;
    return EngineStatus::kOk;
  } else {
    NEED(room, EngineStatus::kTooLarge);
    for (uint32_t o = 0; o < n; ++o) {
      const float sw = fb::VecF32(c.b, w.scale, w.n_scale == 1 ? 0 : o);
      NEED(sw > 0.0f && sw < 1e30f, EngineStatus::kBadTensor);
      const double real = double(s_in) * double(sw) / double(s_out);
      int shift = 0;
      NEED(q::QuantizeMultiplier(real, &m[o], &shift), EngineStatus::kBadTensor);
      sh[o] = int8_t(shift);
    }
  }
  store->used += n;
  quant->mult = m;
  quant->shift = sh;
  return EngineStatus::kOk;
}

}  // namespace prep

namespace {
using namespace prep;

// What the engine runs of each TFLite op: its builtin code, options union tag and input counts
// (ops.def, the one op table), and its Prepare entry point (ops/<stem>.cpp), both in OpKind order.
struct OpSpec {
  int32_t code;
  OpKind kind;
  uint8_t options;
  uint8_t min_in, max_in;
};
constexpr OpSpec kOpSpecs[] = {
#define SLIMHAR_OP(kind, name, code, options, min_in, max_in, stem) {code, OpKind::kind, options, min_in, max_in},
#include "ops.def"
#undef SLIMHAR_OP
};

using PrepareFn = EngineStatus (*)(const Ctx&, const OpArgs&, OpPlan*, QuantStore*);
constexpr PrepareFn kPrepare[] = {
#define SLIMHAR_OP(kind, name, code, options, min_in, max_in, stem) Prepare##stem,
#include "ops.def"
#undef SLIMHAR_OP
};

void FillGeometry(const TensorInfo& x, const TensorInfo& y, OpPlan* op) {
  auto hwc = [](const TensorInfo& t) {
    if (t.rank == 4) return Dims{uint16_t(t.dims[1]), uint16_t(t.dims[2]), uint16_t(t.dims[3])};
    return Dims{1, 1, uint16_t(t.elems > 65535 ? 0 : t.elems)};
  };
  if (op->kind != OpKind::kGather) op->in = hwc(x);  // GATHER's: its [outer, axis, inner], set by PrepareGather
  op->out = hwc(y);
  op->out_size = y.elems;
}

// Each op's DSP scratch (computed and bounded by every flavour, so a model is accepted or refused
// alike), once the activations are planned: each op's tile choices (scratch.h DspTileChoices,
// fastest first) placed in the activations' gaps (Lifetimes::PlaceScratch) give the least peak of
// arena + scratch the subnet can run in; each op then takes its first choice whose scratch ends
// within the caller's limit (Plan::ram_limit; 0: none), or within that least peak when the limit
// is below it. Without a limit every op keeps the budget's tile. 64-bit throughout;
// quantize/arena.py mirrors it.
EngineStatus ChooseTiles(Plan* plan, const Lifetimes& life, uint64_t arena, uint64_t* total) {
  uint16_t tiles[kernels::kMaxTileChoices];
  auto end_of = [&](uint32_t k, const OpPlan& op, uint64_t* at) {
    const uint64_t bytes = kernels::DspScratchBytes(op);
    if (bytes > kMaxArenaBytes) return ~uint64_t(0);
    *at = life.PlaceScratch(k, bytes);
    return (*at + bytes + kArenaAlign - 1) & ~uint64_t(kArenaAlign - 1);
  };
  uint64_t target = kMaxArenaBytes, at = 0;
  *total = arena;
  if (plan->ram_limit != 0) {  // the least peak: every op's least end (without a limit, not needed)
    uint64_t peak = arena;
    for (uint32_t k = 0; k < plan->n_ops; ++k) {
      OpPlan* op = &plan->ops[k];
      const uint32_t n = kernels::DspTileChoices(*op, tiles);
      uint64_t least = ~uint64_t(0);
      for (uint32_t i = 0; i < n; ++i) {
        kernels::SetTile(op, tiles[i]);
        const uint64_t end = end_of(k, *op, &at);
        if (end < least) least = end;
      }
      if (n != 0 && least > peak) peak = least;
    }
    NEED(peak <= kMaxArenaBytes, EngineStatus::kTooLarge);
    target = plan->ram_limit > peak ? plan->ram_limit : peak;
  }
  for (uint32_t k = 0; k < plan->n_ops; ++k) {
    OpPlan* op = &plan->ops[k];
    const uint32_t n = kernels::DspTileChoices(*op, tiles);
    if (n == 0) continue;
    uint64_t end = ~uint64_t(0);
    for (uint32_t i = 0; i < n && end > target; ++i) {
      kernels::SetTile(op, tiles[i]);
      end = end_of(k, *op, &at);
    }
    NEED(end <= target, EngineStatus::kTooLarge);  // no choice fits within kMaxArenaBytes
    op->scratch_off = uint32_t(at);                // at + its bytes <= target <= kMaxArenaBytes
    if (end > *total) *total = end;
  }
  return EngineStatus::kOk;
}

EngineStatus PrepareImpl(Ctx& c, Plan* plan, QuantStore* store) {
  fb::Table model, sg;
  NEED(c.b.n >= 8 && std::memcmp(c.b.d + 4, "TFL3", 4) == 0, EngineStatus::kBadModel);
  NEED(fb::TableAt(c.b, fb::Rd32(c.b.d), &model), EngineStatus::kBadModel);
  fb::Vec subgraphs, sg_in, sg_out;
  NEED(fb::Vector(c.b, model, 1, 4, &c.opcodes) && fb::Vector(c.b, model, 2, 4, &subgraphs) &&
           fb::Vector(c.b, model, 4, 4, &c.buffers),
       EngineStatus::kBadModel);
  NEED(subgraphs.len == 1, EngineStatus::kUnsupported);
  NEED(fb::VecTable(c.b, subgraphs, 0, &sg), EngineStatus::kBadModel);
  NEED(fb::Vector(c.b, sg, 0, 4, &c.tensors) && fb::Vector(c.b, sg, 1, 4, &sg_in) && fb::Vector(c.b, sg, 2, 4, &sg_out) &&
           fb::Vector(c.b, sg, 3, 4, &c.ops),
       EngineStatus::kBadModel);
  NEED(c.tensors.len <= kMaxTensors, EngineStatus::kTooLarge);
  NEED(c.ops.len >= 1 && c.ops.len <= kMaxOps && c.ops.len <= plan->op_capacity, EngineStatus::kTooLarge);
  NEED(sg_in.len == 1 && sg_out.len == 1, EngineStatus::kUnsupported);
  if (c.blob) {  // each reference names a tensor of this subgraph, and no tensor twice
    static_assert(kMaxTensors < 256, "reference indices + 1 are kept in uint8_t");
    NEED(c.sub.n_refs <= kMaxTensors, EngineStatus::kBadRef);
    for (uint32_t j = 0; j < c.sub.n_refs; ++j) {
      WeightRef r;
      NEED(c.blob->GetRef(c.sub, j, &r) && r.tensor < c.tensors.len && c.ref_of[r.tensor] == 0, EngineStatus::kBadRef);
      c.ref_of[r.tensor] = uint8_t(j + 1);
    }
  }

  Lifetimes life;
  life.Reset(c.tensors.len, c.ops.len);
  const int32_t in_t = fb::VecI32(c.b, sg_in, 0), out_t = fb::VecI32(c.b, sg_out, 0);
  TensorInfo tin, tout;
  TRY(ReadTensor(c, in_t, &tin));
  TRY(ReadTensor(c, out_t, &tout));
  TRY(ActQuant(c, tin, &plan->input_scale, &plan->input_zp));
  TRY(ActQuant(c, tout, &plan->output_scale, &plan->output_zp));
  life.Define(uint32_t(in_t), 0, tin.elems);
  plan->input_size = tin.elems;
  plan->output_size = tout.elems;
  plan->macs = 0;
  plan->n_ops = c.ops.len;
  uint64_t macs = 0;

  static_assert(kMaxTensors <= 256, "tensor indices are kept in uint8_t");
  uint8_t op_in[kMaxOps][2] = {}, op_out[kMaxOps] = {};  // activation tensors of each op, for the offsets
  // a chain reads each op's output again as the next op's input: the last tensor read is kept
  int32_t last_i = in_t;
  TensorInfo last = tin;
  for (uint32_t k = 0; k < c.ops.len; ++k) {
    OpPlan* op = &plan->ops[k];
    *op = OpPlan{};
    fb::Table ot, code_t;
    NEED(fb::VecTable(c.b, c.ops, k, &ot), EngineStatus::kBadModel);
    uint32_t code_idx = 0;
    NEED(fb::Scalar<uint32_t>(c.b, ot, 0, 0, &code_idx), EngineStatus::kBadModel);
    NEED(fb::VecTable(c.b, c.opcodes, code_idx, &code_t), EngineStatus::kBadModel);
    int8_t dep = 0;
    int32_t code = 0;
    NEED(fb::Scalar<int8_t>(c.b, code_t, 0, 0, &dep) && fb::Scalar<int32_t>(c.b, code_t, 3, 0, &code),
         EngineStatus::kBadModel);
    if (int32_t(dep) > code) code = dep;
    fb::Vec ins, outs;
    NEED(fb::Vector(c.b, ot, 1, 4, &ins) && fb::Vector(c.b, ot, 2, 4, &outs), EngineStatus::kBadModel);
    fb::Table opt;
    bool has_opt = false;
    NEED(fb::SubTable(c.b, ot, 4, &opt, &has_opt), EngineStatus::kBadModel);
    const fb::Table* o = has_opt ? &opt : nullptr;

    const OpSpec* spec = nullptr;
    for (const OpSpec& sp : kOpSpecs)
      if (sp.code == code) spec = &sp;
    NEED(spec != nullptr, EngineStatus::kUnsupported);
    op->kind = spec->kind;
    // the options table must be the union member this op reads (absent: the schema's defaults)
    uint8_t opt_type = kOptNone;
    NEED(fb::Scalar<uint8_t>(c.b, ot, 3, kOptNone, &opt_type), EngineStatus::kBadModel);
    NEED(opt_type == spec->options || (opt_type == kOptNone && !has_opt), EngineStatus::kBadModel);
    NEED(ins.len >= spec->min_in && ins.len <= spec->max_in && outs.len == 1, EngineStatus::kUnsupported);
    TensorInfo t[3], y;
    int32_t ti[3] = {-1, -1, -1};
    bool present[3] = {false, false, false};
    for (uint32_t i = 0; i < ins.len; ++i) {
      ti[i] = fb::VecI32(c.b, ins, i);
      if (ti[i] == -1 && i >= spec->min_in) continue;  // an optional input left out
      if (ti[i] == last_i) {
        t[i] = last;  // the previous op's output (or the model's input): read and checked already
      } else {
        TRY(ReadTensor(c, ti[i], &t[i]));
      }
      present[i] = true;
    }
    const int32_t yi = fb::VecI32(c.b, outs, 0);
    TRY(ReadTensor(c, yi, &y));
    last_i = yi;
    last = y;
    NEED(!IsConst(y), EngineStatus::kBadModel);
    const OpArgs args{o, t, present, &y};
    TRY(kPrepare[uint32_t(op->kind)](c, args, op, store));
    FillGeometry(t[0], y, op);
    if (const WeightView* wv = WeightsOf(*op)) {
      macs += uint64_t(y.elems) * wv->segs * wv->seg_len;
      NEED(macs <= 0xFFFFFFFFu, EngineStatus::kTooLarge);
    }
    // activations this op reads must exist already (graph order); constants are not planned
    op->n_in = (op->kind == OpKind::kAdd || op->kind == OpKind::kMaximum) ? 2 : 1;
    for (uint32_t i = 0; i < op->n_in; ++i) {
      NEED(life.Use(uint32_t(ti[i]), k), EngineStatus::kBadModel);
      op_in[k][i] = uint8_t(ti[i]);  // < kMaxTensors, checked by ReadTensor
    }
    op_out[k] = uint8_t(yi);
    if (op->kind == OpKind::kReshape) {
      NEED(life.Alias(uint32_t(yi), uint32_t(ti[0]), k), EngineStatus::kBadModel);
    } else {
      NEED(life.Define(uint32_t(yi), k, y.elems), EngineStatus::kBadModel);
    }
  }
  NEED(life.Use(uint32_t(out_t), c.ops.len), EngineStatus::kBadModel);  // the output outlives the ops
  uint32_t offsets[kMaxTensors];
  const uint64_t arena = life.Plan(offsets);
  NEED(arena <= kMaxArenaBytes, EngineStatus::kTooLarge);
  for (uint32_t k = 0; k < c.ops.len; ++k) {
    OpPlan* op = &plan->ops[k];
    for (uint32_t i = 0; i < op->n_in; ++i) op->in_off[i] = offsets[op_in[k][i]];
    op->out_off = offsets[op_out[k]];
  }
  uint64_t total = arena;  // activations + the scratch that does not fit in their gaps
  TRY(ChooseTiles(plan, life, arena, &total));
  plan->arena_bytes = uint32_t(arena);
  plan->macs = uint32_t(macs);
  plan->input_off = offsets[in_t];
  plan->output_off = offsets[out_t];
  plan->dsp_scratch_bytes = uint32_t(total - arena);
  plan->scratch_bytes = SLIMHAR_KERNELS_DSP ? plan->dsp_scratch_bytes : 0;
  return EngineStatus::kOk;
}

}  // namespace

const char* EngineStatusName(EngineStatus s) {
  switch (s) {
    case EngineStatus::kOk: return "ok";
    case EngineStatus::kBadArgs: return "bad arguments";
    case EngineStatus::kBadModel: return "malformed model flatbuffer";
    case EngineStatus::kUnsupported: return "unsupported op or tensor";
    case EngineStatus::kBadTensor: return "inconsistent tensor shapes or quantization";
    case EngineStatus::kBadRef: return "weight reference does not fit its tensor";
    case EngineStatus::kTooLarge: return "model larger than the engine's limits";
    case EngineStatus::kArenaTooSmall: return "arena too small";
  }
  return "unknown";
}

EngineStatus PrepareSubnet(const Blob& blob, uint32_t subnet, Plan* plan, QuantStore* store, bool blob_multipliers,
                           PlanProofs* proofs) {
  if (plan == nullptr || plan->ops == nullptr || store == nullptr || !blob.ok()) return EngineStatus::kBadArgs;
  Ctx c;
  if (!blob.GetSubnet(subnet, &c.sub)) return EngineStatus::kBadArgs;
  // stored plans read the multipliers in place: only with the blob's table, word aligned
  const bool stored = proofs != nullptr && blob_multipliers && c.sub.plan != nullptr && c.sub.mults != nullptr &&
                      (reinterpret_cast<uintptr_t>(c.sub.mults) & 3u) == 0;
  // a cold prepare of a subnet whose stored plan was proven: decode it (no flatbuffer parsed)
  bool least = false;
  if (stored && proofs->Has(blob, subnet, plan->ram_limit, &least) &&
      stored::Decode(blob, c.sub, least ? stored::Which::kLeastRam : stored::Which::kFirst, plan) == EngineStatus::kOk) {
    plan->subnet = subnet;
    plan->source = Plan::Source::kStored;
    plan->stored_proof = Plan::StoredProof::kProven;
    return EngineStatus::kOk;
  }
  c.blob = &blob;
  c.b = fb::Buf{c.sub.model, c.sub.model_size};
  if (blob_multipliers && c.sub.n_mults) {
    c.mults = c.sub.mults;
    c.n_mults = c.sub.n_mults;
  }
  const uint32_t mark = store->used;
  EngineStatus st = PrepareImpl(c, plan, store);
  if (st == EngineStatus::kOk && c.mults && c.mults_used != c.n_mults) st = EngineStatus::kBadTensor;  // a table that does not fit
  if (st != EngineStatus::kOk) {
    store->used = mark;  // a failed prepare leaves the store as it was
    plan->n_ops = 0;
  }
  plan->subnet = subnet;
  plan->source = Plan::Source::kComputed;
  plan->stored_proof = Plan::StoredProof::kNone;
  if (st == EngineStatus::kOk && stored) {  // the first prepare of this subnet: prove a stored plan
    const bool first = stored::SameAs(blob, c.sub, stored::Which::kFirst, *plan);
    const bool second = !first && c.sub.least_plan != nullptr && stored::SameAs(blob, c.sub, stored::Which::kLeastRam, *plan);
    plan->stored_proof = first || second ? Plan::StoredProof::kProven : Plan::StoredProof::kDiffers;
    if (first || second) proofs->Set(blob, subnet, plan->ram_limit, second);
  }
  return st;
}

EngineStatus PrepareModel(const uint8_t* model, uint32_t size, Plan* plan, QuantStore* store) {
  if (model == nullptr || plan == nullptr || plan->ops == nullptr || store == nullptr) return EngineStatus::kBadArgs;
  Ctx c;
  c.b = fb::Buf{model, size};
  const uint32_t mark = store->used;
  const EngineStatus st = PrepareImpl(c, plan, store);
  if (st != EngineStatus::kOk) {
    store->used = mark;
    plan->n_ops = 0;
  }
  plan->subnet = 0;
  plan->source = Plan::Source::kComputed;
  plan->stored_proof = Plan::StoredProof::kNone;
  return st;
}

}  // namespace slimhar
