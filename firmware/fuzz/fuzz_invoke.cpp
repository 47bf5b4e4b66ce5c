// libFuzzer target: Prepare + Invoke (the portable kernels) on whatever Prepare accepts -- a
// blob's subnets (input starting with the blob magic) or a standalone TFLite flatbuffer. The
// slowest target: each accepted input also runs a model. The DSP kernels are ARM code: `make
// fuzz` replays this target's blob inputs through engine_check in QEMU.
#include "fuzz_common.h"

namespace {
alignas(16) uint8_t g_arena[256 * 1024];
int32_t g_mult[4096];
int8_t g_shift[4096];
slimhar::FullPlan g_plan;

void RunPlan() {
  fuzz::CheckPlan(g_plan);
  if (g_plan.arena_total() > sizeof(g_arena)) return;
  int8_t* x = slimhar::InputOf(g_plan, g_arena);
  for (uint32_t k = 0; k < g_plan.input_size; ++k) x[k] = int8_t(k * 37u);
  slimhar::Invoke(g_plan, g_arena, sizeof(g_arena));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (fuzz::IsBlob(data, size)) {
    std::vector<uint8_t> b;
    slimhar::Blob blob;
    if (!fuzz::OpenBlob(data, size, &b, &blob)) return 0;
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
