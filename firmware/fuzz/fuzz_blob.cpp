// libFuzzer target: the blob reader alone. Blob::Open on the input (CRC fixed first, see
// fuzz_common.h), then every accessor on every entry of what it accepted, reading every byte
// the accessors point at (ASan flags anything outside the input).
#include "fuzz_common.h"

namespace {
volatile uint32_t g_sink;
uint32_t Touch(const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  uint32_t s = 0;
  for (size_t i = 0; i < n; ++i) s += b[i];
  return s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> b = fuzz::IsBlob(data, size) ? fuzz::BlobCopy(data, size) : std::vector<uint8_t>(data, data + size);
  slimhar::Blob blob;
  if (blob.Open(b.data(), b.size()) != slimhar::BlobStatus::kOk) return 0;
  uint32_t s = 0;
  for (uint32_t c = 0; c < blob.axes(); ++c) {  // any float bits at all: read them as bits
    const float f[2] = {blob.norm_mean(c), blob.norm_std(c)};
    s += Touch(f, sizeof(f));
  }
  for (uint32_t i = 0; i < blob.pool_count(); ++i) {
    slimhar::PoolTensor p;
    if (!blob.GetPoolTensor(i, &p)) __builtin_trap();
    s += Touch(p.data, p.size);
  }
  for (uint32_t i = 0; i < blob.subnet_count(); ++i) {
    slimhar::SubnetInfo si;
    if (!blob.GetSubnet(i, &si)) __builtin_trap();
    s += Touch(si.model, si.model_size);
    for (uint32_t j = 0; j < si.n_refs; ++j) {
      slimhar::WeightRef r;
      slimhar::PoolTensor p;
      if (!blob.GetRef(si, j, &r) || !blob.GetPoolTensor(r.pool, &p)) __builtin_trap();
      s += r.out + r.in;
    }
  }
  g_sink = s;
  return 0;
}
