// slimhar firmware (so far): validate the embedded blob, prepare every subnet's plan, and run
// each once to measure its latency on this core -- the numbers the subnet policy will use.
// IMU drivers, the policy and the serial protocol come with the next issues.
#include "engine.h"
#include "hal.h"
#include "plan_cache.h"
#include "slimhar_blob.h"
#include "slimhar_model.h"

#ifndef SLIMHAR_PLAN_SLOTS
#define SLIMHAR_PLAN_SLOTS 16  // prepared subnets kept in RAM (about 3 KB each + multipliers)
#endif

namespace {
#if defined(__ARM_FEATURE_DSP) && !defined(SLIMHAR_PORTABLE_KERNELS)
constexpr uint32_t kArenaBytes = SLIMHAR_MODEL_ARENA_BYTES + SLIMHAR_MODEL_SCRATCH_BYTES;
#else
constexpr uint32_t kArenaBytes = SLIMHAR_MODEL_ARENA_BYTES;
#endif
constexpr uint32_t kSlots = SLIMHAR_MODEL_SUBNETS < SLIMHAR_PLAN_SLOTS ? SLIMHAR_MODEL_SUBNETS : SLIMHAR_PLAN_SLOTS;

// Every buffer is static and sized at build time from the blob (slimhar blob export-c).
alignas(16) uint8_t g_arena[kArenaBytes];
slimhar::Plan g_slots[kSlots];
int32_t g_mult[kSlots * SLIMHAR_MODEL_MAX_CHANNELS];
int8_t g_shift[kSlots * SLIMHAR_MODEL_MAX_CHANNELS];
slimhar::Blob g_blob;
}  // namespace

int slimhar_app() {
  hal::Init();
  hal::CycleCounterStart();
  const slimhar::BlobStatus st = g_blob.Open(slimhar_model, SLIMHAR_MODEL_SIZE);
  hal::Write("slimhar: blob ");
  hal::Write(slimhar::StatusName(st));
  if (st != slimhar::BlobStatus::kOk) {
    hal::Write("\r\n");
    return 1;
  }
  hal::Write(", ");
  hal::WriteU(g_blob.subnet_count());
  hal::Write(" subnets, ");
  hal::WriteU(SLIMHAR_MODEL_SIZE);
  hal::Write(" bytes, kernels ");
  hal::Write(slimhar::KernelFlavour());
  hal::Write(", arena ");
  hal::WriteU(kArenaBytes);
  hal::Write(" bytes\r\n");
  slimhar::PlanCache cache(g_slots, kSlots, g_mult, g_shift, SLIMHAR_MODEL_MAX_CHANNELS);
  int failures = 0;
  for (uint32_t i = 0; i < g_blob.subnet_count(); ++i) {
    slimhar::SubnetInfo info;
    g_blob.GetSubnet(i, &info);
    slimhar::EngineStatus es;
    const uint64_t t0 = hal::Cycles();
    const slimhar::Plan* plan = cache.Get(g_blob, i, &es);
    const uint64_t t1 = hal::Cycles();
    if (plan == nullptr) {
      hal::Write("subnet ");
      hal::WriteU(i);
      hal::Write(": ");
      hal::Write(slimhar::EngineStatusName(es));
      hal::Write("\r\n");
      ++failures;
      continue;
    }
    // a window at the input zero point (a still sensor) -- the latency does not depend on data
    int8_t* x = slimhar::InputOf(*plan, g_arena);
    for (uint32_t k = 0; k < plan->input_size; ++k) x[k] = int8_t(plan->input_zp);
    const uint64_t t2 = hal::Cycles();
    es = slimhar::Invoke(*plan, g_arena, sizeof(g_arena));
    const uint64_t t3 = hal::Cycles();
    hal::Write("subnet ");
    hal::WriteU(i);
    hal::Write(" T'=");
    hal::WriteU(info.resolution);
    hal::Write(" channels=");
    hal::WriteU(info.channels[2]);
    hal::Write(" macs=");
    hal::WriteU(info.macs);
    hal::Write(" prepare=");
    hal::WriteU(uint32_t(t1 - t0));
    hal::Write(" invoke=");
    hal::WriteU(uint32_t(t3 - t2));
    hal::Write(es == slimhar::EngineStatus::kOk ? " cycles\r\n" : " FAILED\r\n");
    failures += es != slimhar::EngineStatus::kOk;
  }
  return failures ? 2 : 0;
}
