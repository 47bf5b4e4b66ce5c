// Shared by the libFuzzer targets (one per reader: fuzz_blob, fuzz_flatbuffer, fuzz_prepare,
// fuzz_invoke), all built on the host with ASan + UBSan (`make fuzz`).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine.h"
#include "slimhar_blob.h"
#include "../test/plan_promises.h"

namespace fuzz {

inline bool IsBlob(const uint8_t* data, size_t size) { return size >= 64 && std::memcmp(data, "SLIMHAR", 7) == 0; }

// An exact-size copy (ASan sees any read past it) whose CRC is recomputed unless byte 63's low
// bit is set: one input byte decides, so mutations reach the structure checks behind the CRC.
inline std::vector<uint8_t> BlobCopy(const uint8_t* data, size_t size) {
  std::vector<uint8_t> b(data, data + size);
  if ((b[63] & 1u) == 0) {
    static const uint8_t z[4] = {0, 0, 0, 0};
    uint32_t c = slimhar::Crc32(b.data(), 16);
    c = slimhar::Crc32(z, 4, c);
    c = slimhar::Crc32(b.data() + 20, b.size() - 20, c);
    for (int i = 0; i < 4; ++i) b[16 + i] = uint8_t(c >> (8 * i));
  }
  return b;
}

// The input as a blob, its CRC fixed (BlobCopy), opened over *storage; false if it is no blob or
// the reader refuses it.
inline bool OpenBlob(const uint8_t* data, size_t size, std::vector<uint8_t>* storage, slimhar::Blob* blob) {
  if (!IsBlob(data, size)) return false;
  *storage = BlobCopy(data, size);
  return blob->Open(storage->data(), storage->size()) == slimhar::BlobStatus::kOk;
}

// An accepted plan that breaks a promise to the kernels (plan_promises.h) aborts the run.
inline void CheckPlan(const slimhar::Plan& p) {
  if (!slimhar::test::PlanKeepsPromises(p)) __builtin_trap();
}

}  // namespace fuzz
