// libFuzzer harness for everything the firmware reads from a blob: the blob reader, the
// bounded flatbuffer reader, Prepare (every check a kernel relies on) and Invoke (the
// portable kernels) -- built on the host with ASan + UBSan (`make fuzz`).
//
// An input starting with the blob magic is a blob: its CRC is recomputed first (one input
// byte decides), so mutations reach the structure checks behind it instead of dying at the
// CRC. Any other input is a standalone TFLite flatbuffer for PrepareModel.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine.h"
#include "slimhar_blob.h"

namespace {
alignas(16) uint8_t g_arena[256 * 1024];
int32_t g_mult[4096];
int8_t g_shift[4096];
slimhar::Plan g_plan;

void RunPlan() {
  if (g_plan.arena_total() > sizeof(g_arena)) return;
  int8_t* x = slimhar::InputOf(g_plan, g_arena);
  for (uint32_t k = 0; k < g_plan.input_size; ++k) x[k] = int8_t(k * 37u);
  slimhar::Invoke(g_plan, g_arena, sizeof(g_arena));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 64 && std::memcmp(data, "SLIMHAR", 7) == 0) {
    std::vector<uint8_t> b(data, data + size);  // exact-size copy: ASan sees any overread
    if ((b[63] & 1u) == 0) {                     // fix the CRC so the fuzzer gets past it
      static const uint8_t z[4] = {0, 0, 0, 0};
      uint32_t c = slimhar::Crc32(b.data(), 16);
      c = slimhar::Crc32(z, 4, c);
      c = slimhar::Crc32(b.data() + 20, b.size() - 20, c);
      for (int i = 0; i < 4; ++i) b[16 + i] = uint8_t(c >> (8 * i));
    }
    slimhar::Blob blob;
    if (blob.Open(b.data(), b.size()) != slimhar::BlobStatus::kOk) return 0;
    const uint32_t n = blob.subnet_count();
    for (uint32_t i = 0; i < n && i < 4; ++i) {  // a few subnets per input keeps it fast
      slimhar::QuantStore store{g_mult, g_shift, 4096};
      if (slimhar::PrepareSubnet(blob, (i * 7919u + b[62]) % n, &g_plan, &store) == slimhar::EngineStatus::kOk) RunPlan();
    }
    return 0;
  }
  std::vector<uint8_t> m(data, data + size);
  slimhar::QuantStore store{g_mult, g_shift, 4096};
  if (slimhar::PrepareModel(m.data(), uint32_t(m.size()), &g_plan, &store) == slimhar::EngineStatus::kOk) RunPlan();
  return 0;
}
