#include "slimhar_blob.h"

#include <cstring>

namespace slimhar {
namespace {

constexpr uint8_t kMagic[8] = {'S', 'L', 'I', 'M', 'H', 'A', 'R', 0};
constexpr uint16_t kVersion = 3;  // 2: the input spec section; 3: refs, multipliers, plans packed closer
constexpr uint32_t kHeaderSize = 64, kPoolEntry = 48, kSubnetEntry = 64, kRefEntry = 8, kAlign = 16;
constexpr uint32_t kPlanHeader = 26;  // a stored plan's fixed part (format 3)
constexpr uint16_t kLeastPlanFollows = 1;  // subnet entry flag (docs/blob-format.md)
constexpr uint32_t kCrcOffset = 16, kMaxSubnets = 4096, kMaxPool = 256, kMaxDim = 1u << 16, kMaxRefs = 64;
constexpr uint32_t kMaxMults = 1u << 16;  // conv / fc output channels of one subnet together

// Little-endian field reads through memcpy: no alignment assumptions, no type punning.
inline uint16_t U16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t U32(const uint8_t* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24); }
inline float F32(const uint8_t* p) { uint32_t v = U32(p); float f; std::memcpy(&f, &v, 4); return f; }

// Table-driven CRC-32, four bytes a step ("slicing by 4": t[k][b] is the CRC of byte b followed
// by k zero bytes); the tables (4 KiB of flash) are built at compile time. The whole blob is
// checked when it is opened -- at boot on the device, on every input in the fuzzers -- so the
// loop is worth a quarter of the steps of the byte-wise one.
struct CrcTable {
  uint32_t t[4][256];
  constexpr CrcTable() : t() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int k = 1; k < 4; ++k) t[k][i] = t[0][t[k - 1][i] & 0xFFu] ^ (t[k - 1][i] >> 8);
  }
};
constexpr CrcTable kCrc;

// The fuzzers' coverage instrumentation would trace every compare of this loop (libFuzzer
// spent ~90 % of fuzz_blob's time there); it has no branch worth exploring.
#if defined(__clang__)
#define SLIMHAR_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define SLIMHAR_NO_COVERAGE
#endif

// [off, off + len) inside [kHeaderSize, size], without overflow
inline bool InBounds(uint64_t off, uint64_t len, size_t size) {
  return off >= kHeaderSize && off <= size && len <= size - off;
}

}  // namespace

const char* StatusName(BlobStatus s) {
  switch (s) {
    case BlobStatus::kOk: return "ok";
    case BlobStatus::kTooSmall: return "too small for a header";
    case BlobStatus::kBadMagic: return "bad magic";
    case BlobStatus::kBadVersion: return "unsupported version";
    case BlobStatus::kBadHeaderSize: return "bad header size";
    case BlobStatus::kSizeMismatch: return "size mismatch (truncated or padded)";
    case BlobStatus::kBadCrc: return "CRC mismatch";
    case BlobStatus::kBadCounts: return "absurd counts";
    case BlobStatus::kBadShape: return "absurd model shape";
    case BlobStatus::kMisaligned: return "misaligned section";
    case BlobStatus::kOutOfBounds: return "section out of bounds";
    case BlobStatus::kBadPoolTensor: return "bad pool tensor";
    case BlobStatus::kBadSubnet: return "bad subnet entry";
    case BlobStatus::kBadRef: return "bad weight reference";
    case BlobStatus::kBadSpec: return "bad input spec";
  }
  return "unknown";
}

SLIMHAR_NO_COVERAGE uint32_t Crc32(const uint8_t* data, size_t size, uint32_t crc) {
  crc = ~crc;
  for (; size >= 4; size -= 4, data += 4) {
    crc ^= uint32_t(data[0]) | (uint32_t(data[1]) << 8) | (uint32_t(data[2]) << 16) | (uint32_t(data[3]) << 24);
    crc = kCrc.t[3][crc & 0xFFu] ^ kCrc.t[2][(crc >> 8) & 0xFFu] ^ kCrc.t[1][(crc >> 16) & 0xFFu] ^ kCrc.t[0][crc >> 24];
  }
  for (; size > 0; --size, ++data) crc = kCrc.t[0][(crc ^ *data) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

BlobStatus Blob::Open(const uint8_t* data, size_t size) {
  data_ = nullptr;
  spec_ = InputSpec{};
  if (data == nullptr || size < kHeaderSize) return BlobStatus::kTooSmall;
  const uint8_t* h = data;
  if (std::memcmp(h, kMagic, 8) != 0) return BlobStatus::kBadMagic;
  if (U16(h + 8) != kVersion) return BlobStatus::kBadVersion;
  if (U16(h + 10) != kHeaderSize) return BlobStatus::kBadHeaderSize;
  if (U32(h + 12) != size) return BlobStatus::kSizeMismatch;
  static const uint8_t kZero[4] = {0, 0, 0, 0};
  uint32_t crc = Crc32(h, kCrcOffset);
  crc = Crc32(kZero, 4, crc);
  crc = Crc32(h + kCrcOffset + 4, size - kCrcOffset - 4, crc);
  if (crc != U32(h + kCrcOffset)) return BlobStatus::kBadCrc;
  n_subnets_ = U32(h + 20);
  table_off_ = U32(h + 24);
  n_pool_ = U32(h + 28);
  pool_dir_off_ = U32(h + 32);
  spec_off_ = U32(h + 44);
  window_ = U16(h + 56);
  axes_ = U16(h + 58);
  classes_ = U16(h + 60);
  arch_ = h[62];
  data_ = data;
  size_ = size;
  BlobStatus st = Check();
  if (st == BlobStatus::kOk) {
    // the spec runs up to the metadata when that follows it, else to the end of the file
    const uint32_t meta_off = U32(h + 48);
    const uint32_t end = meta_off > spec_off_ ? meta_off : uint32_t(size);
    st = CheckSpec(spec_off_, end - spec_off_);
  }
  if (st != BlobStatus::kOk) {
    data_ = nullptr;
    spec_ = InputSpec{};
  }
  return st;
}

// Everything quantize/input_spec.py: validate checks, in the same order of concerns.
BlobStatus Blob::CheckSpec(uint32_t off, uint32_t avail) {
  spec_ = InputSpec{};
  const uint8_t* p = data_ + off;
  if (avail < 32 || std::memcmp(p, "ISPC", 4) != 0 || U16(p + 4) != kSpecVersion) return BlobStatus::kBadSpec;
  InputSpec s;
  s.flags = U16(p + 6);
  const uint32_t size = U32(p + 8);
  s.sample_rate_hz = F32(p + 12);
  s.window = U16(p + 16);
  s.hop = U16(p + 18);
  s.n_raw = p[20];
  s.n_channels = p[21];
  s.n_slots = p[22];
  s.n_stages = p[23];
  s.n_sos = p[24];
  s.n_classes = U16(p + 26);
  if (s.n_raw == 0 || s.n_raw > kSpecMaxRaw || s.n_channels == 0 || s.n_channels > kSpecMaxChannels ||
      s.n_slots < s.n_raw || s.n_slots > kSpecMaxSlots || s.n_stages > kSpecMaxStages || s.n_sos > kSpecMaxSos ||
      s.n_classes == 0 || s.n_classes > 1024)
    return BlobStatus::kBadSpec;
  const uint32_t want = 32u + 24u * (s.n_raw + s.n_channels) + 8u * s.n_channels + ((s.n_channels + 3u) & ~3u) +
                        8u * s.n_stages + 32u * s.n_sos + 24u * s.n_classes;  // bounded by the limits: no overflow
  if (size != want || size > avail) return BlobStatus::kBadSpec;
  if (!(s.sample_rate_hz > 0.0f && s.sample_rate_hz <= 100000.0f) || s.hop == 0 || s.hop > s.window ||
      s.window != window_ || s.n_channels != axes_ || s.n_classes != classes_ || (s.flags & ~kSpecFlagOffline))
    return BlobStatus::kBadSpec;
  spec_off_ = off;
  spec_ = s;  // the offsets below depend on the counts
  for (uint32_t c = 0; c < s.n_channels; ++c) {
    const float m = norm_mean(c), d = norm_std(c);
    if (!(m - m == 0.0f) || !(d > 0.0f && d - d == 0.0f)) return BlobStatus::kBadSpec;  // finite; std > 0
    if (OutMap(c) >= s.n_slots) return BlobStatus::kBadSpec;
  }
  if (s.offline() && (s.n_stages != 0 || s.n_raw != s.n_channels)) return BlobStatus::kBadSpec;
  for (uint32_t i = 0; i < s.n_sos; ++i) {
    const uint8_t* q = data_ + SpecSos() + 32u * i;
    for (int k = 0; k < 7; ++k) {
      const float v = F32(q + 4 * k);
      if (!(v - v == 0.0f)) return BlobStatus::kBadSpec;
    }
  }
  uint32_t state = 0;
  for (uint32_t i = 0; i < s.n_stages; ++i) {
    SpecStage st;
    GetStage(i, &st);
    const uint32_t n = st.count;
    bool ok = n > 0 && st.src + n <= s.n_slots && st.dst >= s.n_raw && st.dst + n <= s.n_slots;
    switch (st.op) {
      case SpecOp::kMedian: ok = ok && st.arg0 == 3 && st.arg1 == 0; state += 2 * n; break;
      case SpecOp::kSos: ok = ok && st.arg1 > 0 && uint32_t(st.arg0) + st.arg1 <= s.n_sos; state += 2u * st.arg1 * n; break;
      case SpecOp::kSub: ok = ok && st.src2 + n <= s.n_slots; break;
      default: ok = false;
    }
    if (!ok) return BlobStatus::kBadSpec;
  }
  if (state > kSpecMaxState) return BlobStatus::kBadSpec;
  spec_.state_floats = state;
  return BlobStatus::kOk;
}

BlobStatus Blob::Check() const {
  const uint8_t* h = data_;
  if (n_subnets_ == 0 || n_subnets_ > kMaxSubnets || n_pool_ == 0 || n_pool_ > kMaxPool) return BlobStatus::kBadCounts;
  if (axes_ == 0 || axes_ > 64 || classes_ == 0 || classes_ > 1024 || window_ == 0 || window_ > 8192 || arch_ > 1)
    return BlobStatus::kBadShape;
  const uint32_t pool_data_off = U32(h + 36), pool_data_size = U32(h + 40);
  const uint32_t meta_off = U32(h + 48), meta_size = U32(h + 52);
  const uint32_t offs[5] = {table_off_, pool_dir_off_, pool_data_off, spec_off_, meta_off};
  for (uint32_t o : offs)
    if (o % kAlign) return BlobStatus::kMisaligned;
  if (!InBounds(table_off_, uint64_t(n_subnets_) * kSubnetEntry, size_) ||
      !InBounds(pool_dir_off_, uint64_t(n_pool_) * kPoolEntry, size_) ||
      !InBounds(pool_data_off, pool_data_size, size_) || !InBounds(spec_off_, 32, size_) ||
      !InBounds(meta_off, meta_size, size_))
    return BlobStatus::kOutOfBounds;
  for (uint32_t k = 0; k < n_pool_; ++k) {
    const uint8_t* e = h + pool_dir_off_ + k * kPoolEntry;
    const uint32_t off = U32(e + 16), sz = U32(e + 20), rank = U32(e + 24);
    if (rank < 1 || rank > 4) return BlobStatus::kBadPoolTensor;
    uint64_t prod = 1;
    for (uint32_t d = 0; d < rank; ++d) {
      const uint32_t dim = U32(e + 28 + 4 * d);
      if (dim == 0 || dim > kMaxDim) return BlobStatus::kBadPoolTensor;
      prod *= dim;
    }
    if (prod != sz) return BlobStatus::kBadPoolTensor;
    if (off < pool_data_off || uint64_t(off) + sz > uint64_t(pool_data_off) + pool_data_size)
      return BlobStatus::kBadPoolTensor;
  }
  for (uint32_t k = 0; k < n_subnets_; ++k) {
    const uint8_t* e = h + table_off_ + k * kSubnetEntry;
    const float w = F32(e);
    const uint16_t res = U16(e + 4), cls = U16(e + 6);
    const uint32_t moff = U32(e + 36), msize = U32(e + 40), roff = U32(e + 44), nref = U32(e + 48);
    if (!(w > 0.0f && w <= 1.0f) || res == 0 || res > window_ || cls != classes_ || msize <= 8 || nref > kMaxRefs)
      return BlobStatus::kBadSubnet;
    if (moff % kAlign) return BlobStatus::kMisaligned;
    if (!InBounds(moff, msize, size_) || !InBounds(roff, uint64_t(nref) * kRefEntry, size_))
      return BlobStatus::kOutOfBounds;
    const uint32_t qoff = U32(e + 52), qn = U32(e + 56);
    if (qn > kMaxMults) return BlobStatus::kBadSubnet;
    if (qn && qoff % 4) return BlobStatus::kMisaligned;
    if (qn && !InBounds(qoff, 5ull * qn, size_)) return BlobStatus::kOutOfBounds;
    // the stored plan (docs/blob-format.md): its size (u16 at +2) inside the file; its content is
    // the engine's to check (PrepareSubnet trusts one only once it has proven it, engine.h)
    const uint32_t poff = U32(e + 60);
    if (poff) {  // read byte by byte: any alignment
      if (!InBounds(poff, 4, size_) || U16(h + poff + 2) < kPlanHeader) return BlobStatus::kOutOfBounds;
      if (!InBounds(poff, U16(h + poff + 2), size_)) return BlobStatus::kOutOfBounds;
    }
    // entry flags: only "the least-RAM plan follows the stored plan" (right after it, as long)
    const uint16_t flags = U16(e + 14);
    if ((flags & ~kLeastPlanFollows) != 0 || (flags != 0 && poff == 0)) return BlobStatus::kBadSubnet;
    if (flags) {
      const uint32_t psize = U16(h + poff + 2);
      const uint64_t loff = uint64_t(poff) + psize;  // in bounds: checked above
      if (!InBounds(loff, psize, size_) || U16(h + loff + 2) != psize) return BlobStatus::kOutOfBounds;
    }
    // every multiplier as TFLM's QuantizeMultiplier makes them (0 with shift 0, or in [2^30, 2^31)
    // with a shift in [-31, 30]): checked once here, so that a cold Prepare reads them unchecked
    for (uint32_t j = 0; j < qn; ++j) {
      const int32_t m = int32_t(U32(h + qoff + 4 * j));
      const int8_t sh = int8_t(h[qoff + 4 * qn + j]);
      if (!((m == 0 && sh == 0) || (m >= (1 << 30) && sh >= -31 && sh <= 30))) return BlobStatus::kBadSubnet;
    }
    for (uint32_t j = 0; j < nref; ++j) {
      const uint8_t* r = h + roff + j * kRefEntry;
      const uint16_t p = U16(r + 2), out = U16(r + 4), in = U16(r + 6);
      if (p >= n_pool_) return BlobStatus::kBadRef;
      const uint8_t* pe = h + pool_dir_off_ + p * kPoolEntry;
      const uint32_t rank = U32(pe + 24);
      if (out == 0 || out > U32(pe + 28) || in == 0 || in > U32(pe + 28 + 4 * (rank - 1))) return BlobStatus::kBadRef;
    }
  }
  return BlobStatus::kOk;
}

// The accessors below serve CheckSpec too (data_ is set while it runs), so they test the spec's
// counts, not ok().
float Blob::norm_mean(uint32_t c) const {
  return (data_ && c < spec_.n_channels) ? F32(data_ + SpecNorm() + 4 * c) : 0.0f;
}
float Blob::norm_std(uint32_t c) const {
  return (data_ && c < spec_.n_channels) ? F32(data_ + SpecNorm() + 4 * (spec_.n_channels + c)) : 1.0f;
}
uint32_t Blob::crc() const { return data_ ? U32(data_ + kCrcOffset) : 0; }
uint8_t Blob::OutMap(uint32_t c) const { return (data_ && c < spec_.n_channels) ? data_[SpecMap() + c] : 0; }

namespace {
void CopyText(const uint8_t* src, uint32_t n, char* out) {
  uint32_t k = 0;
  for (; k < n && src[k]; ++k) out[k] = (src[k] > 0x20 && src[k] < 0x7f) ? char(src[k]) : '_';
  out[k] = 0;
}
}  // namespace

bool Blob::RawName(uint32_t i, char* out, char* unit) const {
  if (!data_ || i >= spec_.n_raw) return false;
  CopyText(data_ + SpecNames() + 24u * i, 16, out);
  CopyText(data_ + SpecNames() + 24u * i + 16, 8, unit);
  return true;
}
bool Blob::ChannelName(uint32_t c, char* out, char* unit) const {
  if (!data_ || c >= spec_.n_channels) return false;
  CopyText(data_ + SpecNames() + 24u * (spec_.n_raw + c), 16, out);
  CopyText(data_ + SpecNames() + 24u * (spec_.n_raw + c) + 16, 8, unit);
  return true;
}
bool Blob::ClassName(uint32_t k, char* out) const {
  if (!data_ || k >= spec_.n_classes) return false;
  CopyText(data_ + SpecClasses() + 24u * k, 24, out);
  return true;
}
bool Blob::GetStage(uint32_t i, SpecStage* out) const {
  if (!data_ || i >= spec_.n_stages || out == nullptr) return false;
  const uint8_t* q = data_ + SpecStages() + 8u * i;
  *out = SpecStage{SpecOp(q[0]), q[1], q[2], q[3], q[4], q[5], q[6]};
  return true;
}
bool Blob::GetSos(uint32_t i, SosSection* out) const {
  if (!data_ || i >= spec_.n_sos || out == nullptr) return false;
  const uint8_t* q = data_ + SpecSos() + 32u * i;
  *out = SosSection{F32(q), F32(q + 4), F32(q + 8), F32(q + 12), F32(q + 16), F32(q + 20), F32(q + 24)};
  return true;
}

bool Blob::GetSubnet(uint32_t i, SubnetInfo* out) const {
  if (!ok() || i >= n_subnets_ || out == nullptr) return false;
  const uint8_t* e = data_ + table_off_ + i * kSubnetEntry;
  out->width = F32(e);
  out->resolution = U16(e + 4);
  out->classes = U16(e + 6);
  for (int c = 0; c < 3; ++c) out->channels[c] = U16(e + 8 + 2 * c);
  out->macs = U32(e + 16);
  out->params = U32(e + 20);
  out->arena_bytes = U32(e + 24);
  out->float_acc = F32(e + 28);
  out->int8_acc = F32(e + 32);
  out->model = data_ + U32(e + 36);
  out->model_size = U32(e + 40);
  out->refs_offset = U32(e + 44);
  out->n_refs = U32(e + 48);
  out->n_mults = U32(e + 56);
  out->mults = out->n_mults ? data_ + U32(e + 52) : nullptr;
  const uint32_t poff = U32(e + 60);
  out->plan = poff ? data_ + poff : nullptr;
  out->plan_size = poff ? U16(data_ + poff + 2) : 0;
  const bool least = (U16(e + 14) & kLeastPlanFollows) != 0;  // Open checked: only with a plan
  out->least_plan = least ? out->plan + out->plan_size : nullptr;
  out->least_plan_size = least ? out->plan_size : 0;
  return true;
}

bool Blob::GetPoolTensor(uint32_t i, PoolTensor* out) const {
  if (!ok() || i >= n_pool_ || out == nullptr) return false;
  const uint8_t* e = data_ + pool_dir_off_ + i * kPoolEntry;
  std::memcpy(out->name, e, 16);
  out->name[16] = 0;
  out->data = reinterpret_cast<const int8_t*>(data_ + U32(e + 16));
  out->size = U32(e + 20);
  out->rank = U32(e + 24);
  for (int d = 0; d < 4; ++d) out->dims[d] = U32(e + 28 + 4 * d);
  return true;
}

bool Blob::GetRef(const SubnetInfo& s, uint32_t j, WeightRef* out) const {
  if (!ok() || j >= s.n_refs || out == nullptr || !InBounds(uint64_t(s.refs_offset) + uint64_t(j) * kRefEntry, kRefEntry, size_))
    return false;
  const uint8_t* r = data_ + s.refs_offset + j * kRefEntry;
  *out = WeightRef{U16(r), U16(r + 2), U16(r + 4), U16(r + 6)};
  return true;
}

}  // namespace slimhar
