// Stored plans: decoding the blob's compact form (docs/blob-format.md "Stored plan") and the
// field-by-field comparison that proves one. The format stores what Prepare derives from the
// flatbuffer -- geometry, arena offsets / 16, zero points, activation ranges, ADD's multipliers,
// where biases and gather indices lie -- and leaves out what follows from it: a weight view's
// strides (from its pool tensor), the multiplier pointers (the table, consumed in op order), an
// op's input geometry, offset and zero point when they are the previous op's output's, the
// subnet's input and output (op 0's input, the last op's output) and its MACs.
#include "stored_plan.h"

#include <cstring>

#include "kernels.h"
#include "scratch.h"

namespace slimhar {
namespace stored {
namespace {

constexpr uint32_t kHeader = 26, kFormat = 3;
// record flags; bits 2-3: the bias (0 none, 1 int16, 2 int32), bits 4-5: the activation range
enum : uint8_t { kInGeomExplicit = 1, kOutSizeExplicit = 2, kInChained = 64, kUnusedFlags = 0x80 };

// Little-endian reads from bytes already known to lie inside the plan (Reader takes each
// record's whole length, from its kind and flags, with one bounds check).
struct Bytes {
  const uint8_t* p;
  uint8_t U8() { return *p++; }
  int8_t I8() { return int8_t(*p++); }
  uint16_t U16() {
    const uint16_t v = uint16_t(p[0] | (p[1] << 8));
    p += 2;
    return v;
  }
  uint32_t U32() {
    const uint32_t v = uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
    p += 4;
    return v;
  }
  float F32() {
    const uint32_t v = U32();
    float f;
    std::memcpy(&f, &v, 4);
    return f;
  }
};

// A record's bytes after its kind and flags: the common part, the optional input geometry and
// output size, the op's own fields (docs/blob-format.md "Stored plan").
uint32_t RecordTail(OpKind kind, uint8_t flags) {
  uint32_t n = ((flags & kInChained) ? 9 : 12) + ((flags & kInGeomExplicit) ? 6 : 0) + ((flags & kOutSizeExplicit) ? 4 : 0);
  const uint32_t weights = 11 + (((flags >> 2) & 3u) ? 4 : 0);  // scratch, tile, pool, out, segs, seg_len, [bias]
  switch (kind) {
    case OpKind::kPad: return n + 6;
    case OpKind::kConv: return n + 4 + weights;
    case OpKind::kAdd: return n + 18;
    case OpKind::kGather: return n + 6;
    case OpKind::kMaximum: return n + 3;
    case OpKind::kReshape: return n;
    case OpKind::kFullyConnected: return n + weights;
  }
  return n;
}

// What CONV_2D and FULLY_CONNECTED take from their tensors' zero points and fused activation
// (ops/conv.cpp, ops/fully_connected.cpp).
template <typename Params>
void LayerQuant(const OpPlan& op, int32_t act_min, int32_t act_max, Params* p) {
  p->input_offset = -op.in_zp[0];
  p->output_offset = op.out_zp;
  p->act_min = act_min;
  p->act_max = act_max;
}

// Walks a stored plan: the header once, then the op records in order.
class Reader {
 public:
  // which: the subnet's stored plan (kFirst) or the one for the least-RAM arena that follows it
  Reader(const Blob& blob, const SubnetInfo& sub, Which which)
      : blob_(blob),
        sub_(sub),
        plan_(which == Which::kLeastRam ? sub.least_plan : sub.plan),
        size_(which == Which::kLeastRam ? sub.least_plan_size : sub.plan_size) {}

  bool Header(Plan* p) {
    if (plan_ == nullptr || size_ < kHeader) return false;
    // the multipliers are read in place: the table must be the blob's, word aligned
    if (sub_.mults == nullptr || (reinterpret_cast<uintptr_t>(sub_.mults) & 3u) != 0) return false;
    Bytes c{Take(kHeader)};
    n_ops_ = c.U8();
    const uint8_t format = c.U8();
    const uint16_t size = c.U16();
    p->arena_bytes = c.U32();
    p->dsp_scratch_bytes = c.U32();
    p->input_scale = c.F32();
    p->output_scale = c.F32();
    prev_.h = c.U16();
    prev_.w = c.U16();
    prev_.c = c.U16();
    const uint64_t input_size = uint64_t(prev_.h) * prev_.w * prev_.c;
    p->input_size = uint32_t(input_size);
    p->n_ops = n_ops_;
    p->scratch_bytes = SLIMHAR_KERNELS_DSP ? p->dsp_scratch_bytes : 0;
    return format == kFormat && size == size_ && n_ops_ >= 1 && n_ops_ <= kMaxOps && input_size <= kMaxArenaBytes &&
           uint64_t(p->arena_bytes) + p->dsp_scratch_bytes <= kMaxArenaBytes;
  }

  // After the last op: what the header leaves out, from the records -- the subnet's input is op
  // 0's, its output the last op's, its MACs those of its CONV_2D and FULLY_CONNECTED ops.
  void Tail(Plan* p) const {
    p->input_off = input_off_;
    p->input_zp = input_zp_;
    p->output_off = prev_off_;
    p->output_zp = prev_zp_;
    p->output_size = prev_size_;
    p->macs = uint32_t(macs_);
  }

  bool Op(OpPlan* op) {
    *op = OpPlan{};
    const uint8_t* h = Take(2);
    if (h == nullptr) return false;
    const uint8_t kind = h[0], flags = h[1];
    if (kind > uint8_t(OpKind::kFullyConnected) || (flags & kUnusedFlags) != 0) return false;
    op->kind = OpKind(kind);
    const uint8_t* q = Take(RecordTail(op->kind, flags));
    if (q == nullptr) return false;
    Bytes c{q};
    op->out.h = c.U16();
    op->out.w = c.U16();
    op->out.c = c.U16();
    op->out_off = 16u * c.U16();
    op->out_zp = c.I8();
    if (flags & kInChained) {  // the previous op's output; op 0 has none
      if (ops_read_ == 0) return false;
      op->in_off[0] = prev_off_;
      op->in_zp[0] = prev_zp_;
    } else {
      op->in_off[0] = 16u * c.U16();
      op->in_zp[0] = c.I8();
    }
    if (ops_read_ == 0) {
      input_off_ = op->in_off[0];
      input_zp_ = op->in_zp[0];
    }
    ++ops_read_;
    prev_off_ = op->out_off;
    prev_zp_ = op->out_zp;
    if (flags & kInGeomExplicit) {
      op->in.h = c.U16();
      op->in.w = c.U16();
      op->in.c = c.U16();
    } else {
      op->in = prev_;
    }
    prev_ = op->out;
    const uint64_t product = uint64_t(op->out.h) * op->out.w * op->out.c;
    if (flags & kOutSizeExplicit) {
      op->out_size = c.U32();
    } else if (product <= kMaxArenaBytes) {
      op->out_size = uint32_t(product);
    } else {
      return false;
    }
    prev_size_ = op->out_size;
    // the fused activation's range (prepare.cpp ActRange): CONV_2D, FULLY_CONNECTED and ADD
    // have one (code 1 or 2), the other ops none (code 0)
    const uint32_t act = (flags >> 4) & 3u;
    const bool has_act = op->kind == OpKind::kConv || op->kind == OpKind::kFullyConnected || op->kind == OpKind::kAdd;
    if (act == 3 || (act != 0) != has_act) return false;
    const int32_t act_min = act == 1 ? -128 : (op->out_zp > -128 ? op->out_zp : -128), act_max = 127;
    const uint32_t bias_code = (flags >> 2) & 3u;
    op->n_in = (op->kind == OpKind::kAdd || op->kind == OpKind::kMaximum) ? 2 : 1;
    switch (op->kind) {
      case OpKind::kPad:
        for (int d = 0; d < 3; ++d) op->pad.before[d] = c.U16();
        op->pad.value = int8_t(op->out_zp);
        return true;
      case OpKind::kAdd:
      case OpKind::kMaximum:
        op->in_off[1] = 16u * c.U16();
        op->in_zp[1] = c.I8();
        if (op->kind == OpKind::kAdd) {
          AddParams& p = op->add;
          p.input_offset[0] = -op->in_zp[0];
          p.input_offset[1] = -op->in_zp[1];
          p.output_offset = op->out_zp;
          p.act_min = act_min;
          p.act_max = act_max;
          for (int k = 0; k < 3; ++k) p.mult[k] = int32_t(c.U32());
          for (int k = 0; k < 3; ++k) p.shift[k] = c.I8();
        }
        return true;
      case OpKind::kGather: {
        op->gather.n_index = c.U16();
        const uint32_t at = c.U32();
        if (uint64_t(at) + 4ull * op->gather.n_index > sub_.model_size) return false;
        op->gather.index = sub_.model + at;
        return true;
      }
      case OpKind::kConv: {
        ConvParams& p = op->conv.params;
        LayerQuant(*op, act_min, act_max, &p);
        p.kh = c.U8();
        p.stride = c.U8();
        p.pad_top = c.U8();
        p.pad_bottom = c.U8();
        return Weighted(c, op, bias_code, &p.tile, &op->conv.w, &op->conv.bias, &op->conv.quant);
      }
      case OpKind::kFullyConnected: {
        FcParams& p = op->fc.params;
        LayerQuant(*op, act_min, act_max, &p);
        return Weighted(c, op, bias_code, &p.tile, &op->fc.w, &op->fc.bias, &op->fc.quant);
      }
      case OpKind::kReshape:
        return true;
    }
    return false;
  }

  // every op read, every byte and every multiplier used
  bool Done() const { return at_ == size_ && mults_used_ == sub_.n_mults; }
  uint32_t n_ops() const { return n_ops_; }

 private:
  // k more bytes of the plan, or null past its end
  const uint8_t* Take(uint32_t k) {
    if (k > size_ - at_) return nullptr;
    const uint8_t* q = plan_ + at_;
    at_ += k;
    return q;
  }

  // CONV_2D / FULLY_CONNECTED: scratch offset and tile, the weights' pool tensor and slice, the
  // bias, the next channels of the multiplier table
  bool Weighted(Bytes& c, OpPlan* op, uint32_t bias_code, uint16_t* tile, WeightView* wv, BiasRef* bias,
                ChannelQuant* quant) {
    op->scratch_off = 16u * c.U16();
    *tile = c.U16();
    PoolTensor t;
    const uint8_t pool = c.U8();
    WeightView& w = *wv;
    w.out = c.U16();
    w.segs = c.U16();
    w.seg_len = c.U16();
    if (bias_code == 3 || !blob_.GetPoolTensor(pool, &t) || t.rank < 2) return false;
    uint64_t mid = 1;
    for (uint32_t d = 1; d + 1 < t.rank; ++d) mid *= t.dims[d];
    w.base = t.data;
    w.seg_stride = t.dims[t.rank - 1];
    w.out_stride = uint32_t(mid * w.seg_stride);  // <= the tensor's size (Blob::Open checked it)
    bias->bytes = bias_code == 1 ? 2 : 4;
    if (bias_code != 0) {
      const uint32_t at = c.U32();
      if (uint64_t(at) + uint64_t(bias->bytes) * w.out > sub_.model_size) return false;
      bias->data = sub_.model + at;
    }
    // at most 2^32 - 1 so far, the term below 2^64 - 2^32 (32 + 16 + 16 bits): no wrap; Prepare
    // refuses more than 2^32 - 1 too
    macs_ += uint64_t(op->out_size) * w.segs * w.seg_len;
    if (macs_ > 0xFFFFFFFFu) return false;
    if (w.out > sub_.n_mults - mults_used_) return false;
    quant->mult = reinterpret_cast<const int32_t*>(sub_.mults + 4u * mults_used_);
    quant->shift = reinterpret_cast<const int8_t*>(sub_.mults + 4u * sub_.n_mults + mults_used_);
    mults_used_ += w.out;
    return true;
  }

  const Blob& blob_;
  const SubnetInfo& sub_;
  const uint8_t* plan_;
  uint32_t size_;
  uint32_t at_ = 0, n_ops_ = 0, mults_used_ = 0, ops_read_ = 0;
  Dims prev_{0, 0, 0};
  // op 0's input, the last op read's output (offset, zero point, elements), the MACs so far
  uint32_t input_off_ = 0, prev_off_ = 0, prev_size_ = 0;
  int32_t input_zp_ = 0, prev_zp_ = 0;
  uint64_t macs_ = 0;
};

bool SameView(const WeightView& a, const WeightView& b) {
  return a.base == b.base && a.out_stride == b.out_stride && a.seg_stride == b.seg_stride && a.out == b.out &&
         a.segs == b.segs && a.seg_len == b.seg_len;
}

bool SameDims(const Dims& a, const Dims& b) { return a.h == b.h && a.w == b.w && a.c == b.c; }

// A layer's weights, bias and requantization; the bias width matters only where there is one
// (Prepare and the decoder both leave it 4 without one).
bool SameLayer(const WeightView& wa, const BiasRef& ba, const ChannelQuant& qa, const WeightView& wb, const BiasRef& bb,
               const ChannelQuant& qb) {
  return SameView(wa, wb) && ba.data == bb.data && ba.bytes == bb.bytes && qa.mult == qb.mult && qa.shift == qb.shift;
}

// The fields both plans have, then the union member of their kind, field by field.
bool SameOp(const OpPlan& a, const OpPlan& b) {
  if (!(a.kind == b.kind && a.n_in == b.n_in && SameDims(a.in, b.in) && SameDims(a.out, b.out) &&
        a.in_off[0] == b.in_off[0] && a.in_off[1] == b.in_off[1] && a.out_off == b.out_off &&
        a.scratch_off == b.scratch_off && a.out_size == b.out_size && a.in_zp[0] == b.in_zp[0] &&
        a.in_zp[1] == b.in_zp[1] && a.out_zp == b.out_zp))
    return false;
  switch (a.kind) {
    case OpKind::kConv: {
      const ConvParams &p = a.conv.params, &r = b.conv.params;
      return p.input_offset == r.input_offset && p.output_offset == r.output_offset && p.act_min == r.act_min &&
             p.act_max == r.act_max && p.kh == r.kh && p.stride == r.stride && p.pad_top == r.pad_top &&
             p.pad_bottom == r.pad_bottom && p.tile == r.tile &&
             SameLayer(a.conv.w, a.conv.bias, a.conv.quant, b.conv.w, b.conv.bias, b.conv.quant);
    }
    case OpKind::kFullyConnected: {
      const FcParams &p = a.fc.params, &r = b.fc.params;
      return p.input_offset == r.input_offset && p.output_offset == r.output_offset && p.act_min == r.act_min &&
             p.act_max == r.act_max && p.tile == r.tile && SameLayer(a.fc.w, a.fc.bias, a.fc.quant, b.fc.w, b.fc.bias, b.fc.quant);
    }
    case OpKind::kAdd: {
      const AddParams &p = a.add, &r = b.add;
      bool same = p.output_offset == r.output_offset && p.act_min == r.act_min && p.act_max == r.act_max;
      for (int k = 0; k < 2; ++k) same = same && p.input_offset[k] == r.input_offset[k];
      for (int k = 0; k < 3; ++k) same = same && p.mult[k] == r.mult[k] && p.shift[k] == r.shift[k];
      return same;
    }
    case OpKind::kPad:
      return a.pad.value == b.pad.value && a.pad.before[0] == b.pad.before[0] && a.pad.before[1] == b.pad.before[1] &&
             a.pad.before[2] == b.pad.before[2];
    case OpKind::kGather:
      return a.gather.index == b.gather.index && a.gather.n_index == b.gather.n_index;
    case OpKind::kMaximum:
    case OpKind::kReshape:
      return true;
  }
  return false;
}

}  // namespace

EngineStatus Decode(const Blob& blob, const SubnetInfo& sub, Which which, Plan* plan) {
  Reader r(blob, sub, which);
  Plan head;
  if (!r.Header(&head) || r.n_ops() > plan->op_capacity) return EngineStatus::kBadModel;
  for (uint32_t k = 0; k < r.n_ops(); ++k)
    if (!r.Op(&plan->ops[k])) return EngineStatus::kBadModel;
  if (!r.Done()) return EngineStatus::kBadModel;
  r.Tail(&head);
  OpPlan* ops = plan->ops;
  const uint32_t capacity = plan->op_capacity, limit = plan->ram_limit;
  *plan = head;
  plan->ops = ops;
  plan->op_capacity = capacity;
  plan->ram_limit = limit;
  return EngineStatus::kOk;
}

bool SameAs(const Blob& blob, const SubnetInfo& sub, Which which, const Plan& p) {
  Reader r(blob, sub, which);
  Plan h;
  if (!r.Header(&h) || r.n_ops() != p.n_ops) return false;
  if (h.arena_bytes != p.arena_bytes || h.dsp_scratch_bytes != p.dsp_scratch_bytes || h.scratch_bytes != p.scratch_bytes ||
      h.input_size != p.input_size || std::memcmp(&h.input_scale, &p.input_scale, 4) != 0 ||
      std::memcmp(&h.output_scale, &p.output_scale, 4) != 0)
    return false;
  for (uint32_t k = 0; k < p.n_ops; ++k) {
    OpPlan op;
    if (!r.Op(&op) || !SameOp(op, p.ops[k])) return false;
  }
  if (!r.Done()) return false;
  r.Tail(&h);
  return h.macs == p.macs && h.input_off == p.input_off && h.output_off == p.output_off &&
         h.output_size == p.output_size && h.input_zp == p.input_zp && h.output_zp == p.output_zp;
}

}  // namespace stored

bool PlanProofs::Has(const Blob& blob, uint32_t subnet, uint32_t ram_limit, bool* least_ram) const {
  const bool has = &blob == blob_ && blob.crc() == crc_ && ram_limit == ram_limit_ && subnet < kMaxProvenSubnets &&
                   ((bits_[subnet / 32] >> (subnet % 32)) & 1u);
  if (has && least_ram != nullptr) *least_ram = ((least_[subnet / 32] >> (subnet % 32)) & 1u) != 0;
  return has;
}

void PlanProofs::Set(const Blob& blob, uint32_t subnet, uint32_t ram_limit, bool least_ram) {
  if (&blob != blob_ || blob.crc() != crc_ || ram_limit != ram_limit_) {  // the proofs of the last blob / limit go
    Clear();
    blob_ = &blob;
    crc_ = blob.crc();
    ram_limit_ = ram_limit;
  }
  if (subnet >= kMaxProvenSubnets) return;
  bits_[subnet / 32] |= 1u << (subnet % 32);
  if (least_ram) {
    least_[subnet / 32] |= 1u << (subnet % 32);
  } else {
    least_[subnet / 32] &= ~(1u << (subnet % 32));
  }
}

void PlanProofs::Clear() {
  blob_ = nullptr;
  crc_ = ram_limit_ = 0;
  for (uint32_t& b : bits_) b = 0;
  for (uint32_t& b : least_) b = 0;
}

}  // namespace slimhar
