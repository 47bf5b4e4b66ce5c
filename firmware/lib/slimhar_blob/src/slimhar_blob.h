// Reader of slimhar's model.blob (docs/blob-format.md): validates everything before it
// trusts anything, never reads outside the buffer, no heap, no exceptions.
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
  kMisaligned,      // a section offset is not 16-byte aligned
  kOutOfBounds,     // a section, model or reference table lies outside the buffer
  kBadPoolTensor,   // rank, dims, size or bytes of a pool tensor
  kBadSubnet,       // a subnet table entry is absurd
  kBadRef,          // a weight reference points outside its pool tensor
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
};

class Blob {
 public:
  // Validates the whole blob; on anything but kOk the object stays unusable.
  BlobStatus Open(const uint8_t* data, size_t size);
  bool ok() const { return data_ != nullptr; }

  uint32_t subnet_count() const { return n_subnets_; }
  uint32_t pool_count() const { return n_pool_; }
  uint16_t window() const { return window_; }
  uint16_t axes() const { return axes_; }
  uint16_t classes() const { return classes_; }
  uint8_t arch() const { return arch_; }            // 0 = cnn, 1 = resnet
  float norm_mean(uint32_t c) const;                // per-axis input normalization
  float norm_std(uint32_t c) const;

  bool GetSubnet(uint32_t i, SubnetInfo* out) const;
  bool GetPoolTensor(uint32_t i, PoolTensor* out) const;
  bool GetRef(const SubnetInfo& s, uint32_t j, WeightRef* out) const;

 private:
  BlobStatus Check() const;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t n_subnets_ = 0, n_pool_ = 0, table_off_ = 0, pool_dir_off_ = 0, norm_off_ = 0;
  uint16_t window_ = 0, axes_ = 0, classes_ = 0;
  uint8_t arch_ = 0;
};

}  // namespace slimhar
