// libFuzzer target: the blob reader alone. Blob::Open on the input (CRC fixed first, see
// fuzz_common.h), then every accessor on every entry of what it accepted, reading every byte
// the accessors point at (ASan flags anything outside the input).
#include "chain.h"
#include "fuzz_common.h"

namespace {
volatile uint32_t g_sink;
// reads every byte (ASan checks each); not instrumented for coverage: nothing to explore in it
#if defined(__clang__)
__attribute__((no_sanitize("coverage")))
#endif
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
  // the input spec: every text field, stage and section, then the chain on a few samples
  // (its state indexing must stay inside the 512 floats for any spec the reader accepts)
  char name[25], unit[9];
  const slimhar::InputSpec& sp = blob.spec();
  for (uint32_t i = 0; i < sp.n_raw; ++i) s += blob.RawName(i, name, unit) ? name[0] + unit[0] : 0;
  for (uint32_t c = 0; c < sp.n_channels; ++c) s += blob.ChannelName(c, name, unit) ? name[0] : 0;
  for (uint32_t k = 0; k < sp.n_classes; ++k) s += blob.ClassName(k, name) ? name[0] : 0;
  static slimhar::Chain chain;
  chain.Init(blob);
  float raw[slimhar::kSpecMaxRaw], out[slimhar::kSpecMaxChannels];
  for (int t = 0; t < 4; ++t) {
    for (uint32_t i = 0; i < sp.n_raw; ++i) raw[i] = float(t * 7 + int(i)) - 3.5f;
    chain.Push(raw, out);
    s += Touch(out, sizeof(float) * sp.n_channels);
  }
  g_sink = s;
  return 0;
}
