// Reader of slimhar's model.blob, version 3 (docs/blob-format.md): validates everything before
// it trusts anything, never reads outside the buffer, no heap, no exceptions. The blob carries
// the model's input spec (rate, window, hop, raw channels, preprocessing chain, normalization,
// class names) so the firmware feeds any model without being rebuilt for it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace slimhar {

enum class BlobStatus : int {
  kOk = 0,
  kTooSmall,        // shorter than a header
  kBadMagic,
  kBadVersion,
  kBadHeaderSize,
  kSizeMismatch,    // header's total size != buffer size (truncated or padded)
  kBadCrc,
  kBadCounts,       // subnet / pool counts out of range
  kBadShape,        // window / axes / classes / arch absurd
  kMisaligned,      // a section offset is not aligned as the format says (16 bytes; the multiplier table 4)
  kOutOfBounds,     // a section, model or reference table lies outside the buffer
  kBadPoolTensor,   // rank, dims, size or bytes of a pool tensor
  kBadSubnet,       // a subnet table entry is absurd
  kBadRef,          // a weight reference points outside its pool tensor
  kBadSpec,         // the input spec section: magic, version, counts, size, a stage, the map, values
};

// Limits of the input spec (quantize/input_spec.py has the same).
constexpr uint32_t kSpecVersion = 1;
constexpr uint32_t kSpecMaxRaw = 16, kSpecMaxChannels = 16, kSpecMaxSlots = 64, kSpecMaxStages = 16,
                   kSpecMaxSos = 32, kSpecMaxState = 512;
constexpr uint16_t kSpecFlagOffline = 1;  // the stream carries the model channels, preprocessed on the host

enum class SpecOp : uint8_t { kMedian = 0, kSos = 1, kSub = 2 };

// One chain stage: slots [src, src + count) -> [dst, dst + count). median: of the sample and the
// two before it (arg0 = 3); sos: sections [arg0, arg0 + arg1) in cascade; sub: src - src2.
struct SpecStage {
  SpecOp op;
  uint8_t count, src, src2, dst, arg0, arg1;
};

// A normalized second-order section (a0 = 1) and its steady state for a unit input.
struct SosSection {
  float b0, b1, b2, a1, a2, zi0, zi1;
};

struct InputSpec {
  float sample_rate_hz = 0;
  uint16_t window = 0, hop = 0, flags = 0, n_classes = 0;
  uint8_t n_raw = 0, n_channels = 0, n_slots = 0, n_stages = 0, n_sos = 0;
  uint32_t state_floats = 0;  // median history + SOS state the chain needs
  bool offline() const { return (flags & kSpecFlagOffline) != 0; }
};

const char* StatusName(BlobStatus s);

// CRC-32 (IEEE 802.3, as zlib), continuing from `crc`.
uint32_t Crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

struct PoolTensor {
  const int8_t* data;
  uint32_t size;
  uint32_t rank;
  uint32_t dims[4];
  char name[17];
};

struct WeightRef {
  uint16_t tensor, pool, out, in;
};

struct SubnetInfo {
  float width;
  uint16_t resolution, classes;
  uint16_t channels[3];
  uint32_t macs, params, arena_bytes;
  float float_acc, int8_acc;
  const uint8_t* model;      // the subnet's TFLite flatbuffer (pool-backed weights empty)
  uint32_t model_size;
  uint32_t refs_offset, n_refs;
  // The requantization multipliers of its conv / fc channels in operator order, computed at export
  // exactly as TFLM's Prepare does: int32 mult[n] then int8 shift[n] (n = 0: none, compute them).
  const uint8_t* mults;
  uint32_t n_mults;
  // The engine's plan of the subnet as export computed it (null: none); its bytes inside the
  // blob, its content unchecked here (the engine proves it before it uses it).
  const uint8_t* plan;
  uint32_t plan_size;
  // Its plan as a firmware sized for the least RAM prepares it (Plan::ram_limit = the blob's
  // least-RAM arena, `export-c --least-ram`), where that one takes other tiles (null: none);
  // unchecked like the first.
  const uint8_t* least_plan;
  uint32_t least_plan_size;
};

class Blob {
 public:
  // Validates the whole blob; on anything but kOk the object stays unusable.
  BlobStatus Open(const uint8_t* data, size_t size);
  bool ok() const { return data_ != nullptr; }

  uint32_t subnet_count() const { return n_subnets_; }
  uint32_t crc() const;                             // the header's CRC-32: the blob's identity
  uint32_t pool_count() const { return n_pool_; }
  uint16_t window() const { return window_; }
  uint16_t axes() const { return axes_; }
  uint16_t classes() const { return classes_; }
  uint8_t arch() const { return arch_; }            // 0 = cnn, 1 = resnet
  float norm_mean(uint32_t c) const;                // per-axis input normalization
  float norm_std(uint32_t c) const;
  const InputSpec& spec() const { return spec_; }
  // Text fields of the spec, NUL-terminated into out (size >= 25); false when out of range.
  bool RawName(uint32_t i, char* out, char* unit) const;       // name: 17 bytes, unit: 9 bytes
  bool ChannelName(uint32_t c, char* out, char* unit) const;
  bool ClassName(uint32_t k, char* out) const;                 // 25 bytes
  bool GetStage(uint32_t i, SpecStage* out) const;
  bool GetSos(uint32_t i, SosSection* out) const;
  uint8_t OutMap(uint32_t c) const;                            // the slot model channel c reads

  bool GetSubnet(uint32_t i, SubnetInfo* out) const;
  bool GetPoolTensor(uint32_t i, PoolTensor* out) const;
  bool GetRef(const SubnetInfo& s, uint32_t j, WeightRef* out) const;

 private:
  BlobStatus Check() const;
  BlobStatus CheckSpec(uint32_t off, uint32_t avail);
  uint32_t SpecNames() const { return spec_off_ + 32; }
  uint32_t SpecNorm() const { return SpecNames() + 24u * (spec_.n_raw + spec_.n_channels); }
  uint32_t SpecMap() const { return SpecNorm() + 8u * spec_.n_channels; }
  uint32_t SpecStages() const { return SpecMap() + ((spec_.n_channels + 3u) & ~3u); }
  uint32_t SpecSos() const { return SpecStages() + 8u * spec_.n_stages; }
  uint32_t SpecClasses() const { return SpecSos() + 32u * spec_.n_sos; }
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t n_subnets_ = 0, n_pool_ = 0, table_off_ = 0, pool_dir_off_ = 0, spec_off_ = 0;
  InputSpec spec_;
  uint16_t window_ = 0, axes_ = 0, classes_ = 0;
  uint8_t arch_ = 0;
};

}  // namespace slimhar
