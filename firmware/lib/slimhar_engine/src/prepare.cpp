// Prepare: TFLite flatbuffer (+ the blob's weight references) -> Plan. Everything a kernel will
// trust is checked here once: field offsets, tensor types and shapes, quantization, weight
// slices, gather indices, op order.
#include <cstring>

#include "engine.h"
#include "fb_reader.h"
#include "planner.h"
#include "kernels.h"
#include "quant_math.h"
#include "scratch.h"

namespace slimhar {
namespace {

// TFLite schema numbers (schema.fbs) of what the exporter emits; the ops' own are in ops.def.
enum : int8_t { kTypeInt32 = 2, kTypeInt8 = 9 };
enum : int8_t { kActNone = 0, kActRelu = 1 };
enum : int8_t { kPadSame = 0, kPadValid = 1 };
enum : uint8_t { kOptNone = 0 };  // BuiltinOptions union tag of no options
constexpr uint32_t kMaxDot = 1u << 16;  // products per output of a conv / fc

// What the engine runs of each TFLite op: its builtin code, options union tag and input counts
// (ops.def, the one op table).
struct OpSpec {
  int32_t code;
  OpKind kind;
  uint8_t options;
  uint8_t min_in, max_in;
};
constexpr OpSpec kOpSpecs[] = {
#define SLIMHAR_OP(kind, name, code, options, min_in, max_in) {code, OpKind::kind, options, min_in, max_in},
#include "ops.def"
#undef SLIMHAR_OP
};

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
    NEED(t->zp.len == t->n_scale, EngineStatus::kBadTensor);
    NEED(fb::Scalar<int32_t>(c.b, qt, 6, 0, &t->q_dim), EngineStatus::kBadModel);
  }
  if (c.blob) {
    for (uint32_t j = 0; j < c.sub.n_refs; ++j) {
      WeightRef r;
      NEED(c.blob->GetRef(c.sub, j, &r), EngineStatus::kBadRef);
      if (r.tensor == uint32_t(idx)) {
        NEED(!t->pool && t->data == nullptr, EngineStatus::kBadRef);
        t->pool = true;
        t->ref = r;
      }
    }
  }
  return EngineStatus::kOk;
}

bool IsConst(const TensorInfo& t) { return t.pool || t.data != nullptr; }

// An int8 activation with per-tensor quantization.
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

// Act range of a fused activation on an int8 output (TFLite's CalculateActivationRangeQuantized).
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

// Binds the weights of a conv ([O, kh, 1, I]) or fc ([K, F]) tensor, in place.
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
                          OpPlan* op, QuantStore* store) {
  const uint32_t n = uint32_t(w.dims[0]);
  NEED(w.n_scale == n || w.n_scale == 1, EngineStatus::kBadTensor);
  NEED(w.n_scale == 1 || w.q_dim == 0, EngineStatus::kUnsupported);  // per output channel: axis 0
  for (uint32_t o = 0; o < w.zp.len; ++o) NEED(fb::VecI64(c.b, w.zp, o) == 0, EngineStatus::kUnsupported);
  if (bias) {
    NEED(bias->type == kTypeInt32 && bias->rank == 1 && uint32_t(bias->dims[0]) == n, EngineStatus::kBadTensor);
    NEED(bias->data != nullptr && bias->data_size == 4 * n, EngineStatus::kBadTensor);
  }
  const bool room = store->used <= store->capacity && n <= store->capacity - store->used;
  int32_t* m = store->mult + (room ? store->used : 0);
  int8_t* sh = store->shift + (room ? store->used : 0);
  if (c.mults) {
    // computed at export exactly as below (quantize/requant.py; test_engine checks the two agree):
    // checked, then read in place from the blob (flash on a board) -- no floating point, no RAM:
    // what makes a cold switch cheap
    NEED(n <= c.n_mults - c.mults_used, EngineStatus::kBadTensor);
    const uint8_t* qm = c.mults + 4u * c.mults_used;
    const int8_t* qs = reinterpret_cast<const int8_t*>(c.mults + 4u * c.n_mults + c.mults_used);
    for (uint32_t o = 0; o < n; ++o) {
      int32_t v;
      std::memcpy(&v, qm + 4u * o, 4);
      NEED((v == 0 && qs[o] == 0) || (v >= (1 << 30) && qs[o] >= -31 && qs[o] <= 30), EngineStatus::kBadTensor);
    }
    c.mults_used += n;
    op->shift = qs;
    op->bias = bias ? bias->data : nullptr;
    if ((reinterpret_cast<uintptr_t>(qm) & 3u) == 0) {  // the blob's buffer is aligned: use it as is
      op->mult = reinterpret_cast<const int32_t*>(qm);
      return EngineStatus::kOk;
    }
    NEED(room, EngineStatus::kTooLarge);
    std::memcpy(m, qm, 4u * n);  // a caller's unaligned copy of the blob: the store holds them
    store->used += n;
    op->mult = m;
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
  op->mult = m;
  op->shift = sh;
  op->bias = bias ? bias->data : nullptr;
  return EngineStatus::kOk;
}

EngineStatus PrepareConv(const Ctx& c, const fb::Table* opt, const TensorInfo* in, const TensorInfo* bias,
                         const TensorInfo& out, OpPlan* op, QuantStore* store) {
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
  TRY(ActRange(act, op->out_zp, &op->act_min, &op->act_max));
  TRY(BindWeights(c, w, &op->w));
  NEED(op->w.segs == uint32_t(kh) && op->w.seg_len == uint32_t(x.dims[3]), EngineStatus::kBadRef);
  // at most 2^16 products of |int8| x |int8 - zp| <= 127 x 255 per output: the int32
  // accumulator cannot overflow
  NEED(uint32_t(kh) * uint32_t(x.dims[3]) <= kMaxDot, EngineStatus::kTooLarge);
  TRY(BindChannels(c, w, bias, s_in, s_out, op, store));
  op->kh = uint8_t(kh);
  op->stride = uint8_t(stride_h);
  op->pad_top = uint8_t(pad_total / 2);
  op->pad_bottom = uint8_t(pad_total - pad_total / 2);
  return EngineStatus::kOk;
}

EngineStatus PrepareFc(const Ctx& c, const fb::Table* opt, const TensorInfo* in, const TensorInfo* bias,
                       const TensorInfo& out, OpPlan* op, QuantStore* store) {
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
  TRY(ActRange(act, op->out_zp, &op->act_min, &op->act_max));
  TRY(BindWeights(c, w, &op->w));
  NEED(uint32_t(op->w.segs) * op->w.seg_len == x.elems, EngineStatus::kBadRef);
  NEED(x.elems <= kMaxDot, EngineStatus::kTooLarge);
  TRY(BindChannels(c, w, bias, s_in, s_out, op, store));
  return EngineStatus::kOk;
}

EngineStatus PrepareAdd(const Ctx& c, const fb::Table* opt, const TensorInfo* in, const TensorInfo& out, OpPlan* op) {
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
  TRY(ActRange(act, op->out_zp, &op->act_min, &op->act_max));
  // TFLite's int8 ADD: both inputs rescaled to 2*max(s1, s2) with 20 bits of headroom
  const double twice_max = 2.0 * double(s1 > s2 ? s1 : s2);
  const double real[3] = {double(s1) / twice_max, double(s2) / twice_max, twice_max / (double(1 << 20) * double(so))};
  for (int k = 0; k < 3; ++k) {
    int shift = 0;
    NEED(q::QuantizeMultiplier(real[k], &op->add_mult[k], &shift) && shift <= 0, EngineStatus::kBadTensor);
    op->add_shift[k] = int8_t(shift);
  }
  return EngineStatus::kOk;
}

EngineStatus PreparePad(const Ctx& c, const TensorInfo* in, const TensorInfo& out, OpPlan* op) {
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
      op->pad_before[d - 1] = uint16_t(lo);
    }
  }
  return EngineStatus::kOk;
}

EngineStatus PrepareGather(const Ctx& c, const fb::Table* opt, const TensorInfo* in, const TensorInfo& out,
                           OpPlan* op) {
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
  op->index = idx.data;
  op->n_index = uint16_t(idx.elems);
  // the kernel walks [outer, axis, inner]: keep the geometry in in_h/in_w/in_c for it
  uint64_t outer = 1, inner = 1;
  for (int32_t d = 0; d < axis; ++d) outer *= uint32_t(x.dims[d]);
  for (uint32_t d = uint32_t(axis) + 1; d < x.rank; ++d) inner *= uint32_t(x.dims[d]);
  NEED(outer <= 65535 && inner <= 65535, EngineStatus::kTooLarge);
  op->in_h = uint16_t(outer);
  op->in_w = uint16_t(x.dims[axis]);
  op->in_c = uint16_t(inner);
  return EngineStatus::kOk;
}

EngineStatus PrepareMaximum(const Ctx& c, const TensorInfo* in, const TensorInfo& out, OpPlan* op) {
  for (int k = 0; k < 2; ++k) {
    NEED(in[k].rank == out.rank, EngineStatus::kUnsupported);
    for (uint32_t d = 0; d < out.rank; ++d) NEED(in[k].dims[d] == out.dims[d], EngineStatus::kUnsupported);
    TRY(ActQuant(c, in[k], nullptr, &op->in_zp[k]));
  }
  TRY(ActQuant(c, out, nullptr, &op->out_zp));
  return EngineStatus::kOk;
}

EngineStatus PrepareReshape(const Ctx& c, const TensorInfo* in, bool has_shape, const TensorInfo& out, OpPlan* op) {
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

void FillGeometry(const TensorInfo& x, const TensorInfo& y, OpPlan* op) {
  auto hwc = [](const TensorInfo& t, uint16_t* h, uint16_t* w, uint16_t* ch) {
    if (t.rank == 4) {
      *h = uint16_t(t.dims[1]);
      *w = uint16_t(t.dims[2]);
      *ch = uint16_t(t.dims[3]);
    } else {
      *h = 1;
      *w = 1;
      *ch = uint16_t(t.elems > 65535 ? 0 : t.elems);
    }
  };
  if (op->kind != OpKind::kGather) hwc(x, &op->in_h, &op->in_w, &op->in_c);
  hwc(y, &op->out_h, &op->out_w, &op->out_c);
  op->out_size = y.elems;
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
  uint64_t macs = 0, dsp_scratch = 0;

  static_assert(kMaxTensors <= 256, "tensor indices are kept in uint8_t");
  uint8_t op_in[kMaxOps][2] = {}, op_out[kMaxOps] = {};  // activation tensors of each op, for the offsets
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
      TRY(ReadTensor(c, ti[i], &t[i]));
      present[i] = true;
    }
    const int32_t yi = fb::VecI32(c.b, outs, 0);
    TRY(ReadTensor(c, yi, &y));
    NEED(!IsConst(y), EngineStatus::kBadModel);
    const TensorInfo* bias = present[2] ? &t[2] : nullptr;
    switch (op->kind) {
      case OpKind::kConv: TRY(PrepareConv(c, o, t, bias, y, op, store)); break;
      case OpKind::kFullyConnected: TRY(PrepareFc(c, o, t, bias, y, op, store)); break;
      case OpKind::kAdd: TRY(PrepareAdd(c, o, t, y, op)); break;
      case OpKind::kPad: TRY(PreparePad(c, t, y, op)); break;
      case OpKind::kGather: TRY(PrepareGather(c, o, t, y, op)); break;
      case OpKind::kMaximum: TRY(PrepareMaximum(c, t, y, op)); break;
      case OpKind::kReshape: TRY(PrepareReshape(c, t, present[1], y, op)); break;
    }
    FillGeometry(t[0], y, op);
    if (op->kind == OpKind::kConv || op->kind == OpKind::kFullyConnected) {
      macs += uint64_t(y.elems) * op->w.segs * op->w.seg_len;
      NEED(macs <= 0xFFFFFFFFu, EngineStatus::kTooLarge);
    }
    const uint64_t scratch = kernels::DspScratchBytes(*op);  // bounded for every flavour (scratch.h)
    if (scratch > dsp_scratch) dsp_scratch = scratch;
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
  NEED(arena <= kMaxArenaBytes && dsp_scratch <= kMaxArenaBytes - arena, EngineStatus::kTooLarge);
  plan->arena_bytes = uint32_t(arena);
  plan->macs = uint32_t(macs);
  for (uint32_t k = 0; k < c.ops.len; ++k) {
    OpPlan* op = &plan->ops[k];
    for (uint32_t i = 0; i < op->n_in; ++i) op->in_off[i] = offsets[op_in[k][i]];
    op->out_off = offsets[op_out[k]];
  }
  plan->input_off = offsets[in_t];
  plan->output_off = offsets[out_t];
  plan->scratch_bytes = SLIMHAR_KERNELS_DSP ? uint32_t(dsp_scratch) : 0;
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

EngineStatus PrepareSubnet(const Blob& blob, uint32_t subnet, Plan* plan, QuantStore* store, bool blob_multipliers) {
  if (plan == nullptr || plan->ops == nullptr || store == nullptr || !blob.ok()) return EngineStatus::kBadArgs;
  Ctx c;
  if (!blob.GetSubnet(subnet, &c.sub)) return EngineStatus::kBadArgs;
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
  return st;
}

}  // namespace slimhar
