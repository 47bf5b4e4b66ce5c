// libFuzzer target: Prepare alone -- a blob's subnets (PrepareSubnet, proving and then using
// their stored plans) or a standalone TFLite flatbuffer (PrepareModel) -- with every accepted plan checked against what the kernels of
// both flavours will touch (fuzz_common.h: CheckPlan), a flatbuffer's also at its least RAM
// (Plan::ram_limit). No kernel runs, so it is fast.
#include "fuzz_common.h"

namespace {
int32_t g_mult[4096];
int8_t g_shift[4096];
slimhar::FullPlan g_plan;

void Prepared(slimhar::EngineStatus st, const slimhar::QuantStore& store) {
  if (st == slimhar::EngineStatus::kOk) {
    fuzz::CheckPlan(g_plan);
  } else if (g_plan.n_ops != 0 || store.used != 0) {
    __builtin_trap();  // a refused prepare leaves no half-made plan and gives its multipliers back
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (fuzz::IsBlob(data, size)) {
    std::vector<uint8_t> b;
    slimhar::Blob blob;
    if (!fuzz::OpenBlob(data, size, &b, &blob)) return 0;
    // with proofs, twice: the first prepare proves a stored plan (either of a subnet's two), the
    // second decodes it -- and a decoded plan must keep the same promises (it is the computed
    // one, field by field); without a RAM limit and at the least (other tiles, the proofs anew)
    slimhar::PlanProofs proofs;
    for (const uint32_t limit : {0u, 1u}) {
      g_plan.ram_limit = limit;
      for (uint32_t i = 0; i < blob.subnet_count() && i < 16; ++i) {
        for (int pass = 0; pass < 2; ++pass) {
          slimhar::QuantStore store{g_mult, g_shift, 4096};
          Prepared(slimhar::PrepareSubnet(blob, i, &g_plan, &store, true, &proofs), store);
          if (pass == 1 && proofs.Has(blob, i, limit) && g_plan.source != slimhar::Plan::Source::kStored) __builtin_trap();
        }
      }
    }
    g_plan.ram_limit = 0;
    return 0;
  }
  std::vector<uint8_t> m(data, data + size);
  // without a limit and at the least arena + scratch (Plan::ram_limit 1: other DSP tiles), whose
  // plan must keep the same promises and never need more than the unlimited one
  slimhar::QuantStore store{g_mult, g_shift, 4096};
  g_plan.ram_limit = 0;
  const slimhar::EngineStatus st = slimhar::PrepareModel(m.data(), uint32_t(m.size()), &g_plan, &store);
  Prepared(st, store);
  const uint64_t unlimited = uint64_t(g_plan.arena_bytes) + g_plan.dsp_scratch_bytes;
  store.used = 0;
  g_plan.ram_limit = 1;
  const slimhar::EngineStatus least = slimhar::PrepareModel(m.data(), uint32_t(m.size()), &g_plan, &store);
  g_plan.ram_limit = 0;
  Prepared(least, store);
  if (st == slimhar::EngineStatus::kOk &&
      (least != slimhar::EngineStatus::kOk || uint64_t(g_plan.arena_bytes) + g_plan.dsp_scratch_bytes > unlimited))
    __builtin_trap();
  return 0;
}
