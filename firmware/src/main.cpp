// slimhar firmware: the wearable loop. The embedded blob is opened and every subnet prepared and
// timed once (the policy's latency table); then, forever: bytes from the serial link become
// command lines (docs/serial-protocol.md), IMU samples (on the emulated board: `feed` lines)
// fill the ring, every hop the policy picks a subnet and the window runs; between lines the
// core sleeps until the next interrupt, and the watchdog is fed.
#include "app.h"
#include "hal.h"
#include "scratch.h"
#include "slimhar_model.h"

#ifndef SLIMHAR_PLAN_SLOTS
// Prepared subnets kept in RAM (a plan is ~64 B + ~120 B per op record, sized to the blob's largest
// subnet, + 5 bytes per output channel when the blob carries no multiplier tables); a subnet not
// kept is prepared again when the policy moves to it (a cold switch, counted in that window's
// latency as prepare_us). The policy moves along its front, which is a handful of subnets.
#define SLIMHAR_PLAN_SLOTS 8
#endif
#ifndef SLIMHAR_FIRMWARE_VERSION
#define SLIMHAR_FIRMWARE_VERSION "0.3.0"
#endif

namespace {
#if defined(__ARM_FEATURE_DSP) && !defined(SLIMHAR_PORTABLE_KERNELS)
constexpr uint32_t kArenaBytes = SLIMHAR_MODEL_ARENA_BYTES + SLIMHAR_MODEL_SCRATCH_BYTES;
// the scratch export-c sized the arena for is the one these kernels use (embed_blob.py passes the
// build's SLIMHAR_DSP_SCRATCH_BUDGET): otherwise a subnet's plan could outgrow the static arena
static_assert(SLIMHAR_MODEL_DSP_SCRATCH_BUDGET == slimhar::kernels::kDspScratchBudget,
              "slimhar_model.h was sized for another SLIMHAR_DSP_SCRATCH_BUDGET");
// each plan's tiles fit this arena (Plan::ram_limit): with export-c's default sizing every subnet
// keeps its fastest tiles; sized for the least RAM (-DSLIMHAR_LEAST_RAM=1), the subnets that would
// not fit take smaller ones
constexpr uint32_t kPlanRamLimit = kArenaBytes;
#else
constexpr uint32_t kArenaBytes = SLIMHAR_MODEL_ARENA_BYTES;
constexpr uint32_t kPlanRamLimit = 0;  // the portable kernels use no scratch
#endif
constexpr uint32_t kSlots = SLIMHAR_MODEL_SUBNETS < SLIMHAR_PLAN_SLOTS ? SLIMHAR_MODEL_SUBNETS : SLIMHAR_PLAN_SLOTS;
constexpr uint32_t kSampleCapacity = 2 * SLIMHAR_MODEL_WINDOW;  // a window and two hops (50 % overlap)

// Every buffer is static and sized at build time from the blob (slimhar blob export-c).
alignas(16) uint8_t g_arena[kArenaBytes];
// each plan's op records sized to the blob's largest subnet, not to the engine's kMaxOps
slimhar::OpPlan g_ops[kSlots][SLIMHAR_MODEL_MAX_OPS];
slimhar::Plan g_slots[kSlots];
slimhar::Plan* g_slot_ptrs[kSlots];
// multipliers a plan keeps in RAM: none when the blob carries them (read in place from flash)
constexpr uint32_t kStoreChannels = SLIMHAR_MODEL_STORE_CHANNELS;
int32_t g_mult[kSlots * kStoreChannels + 1];
int8_t g_shift[kSlots * kStoreChannels + 1];
float g_samples[kSampleCapacity * SLIMHAR_MODEL_AXES];
int8_t g_db[4096];
slimhar::App g_app;
slimhar::imu::ReplayImu g_replay;  // `feed` lines: the emulated board's sensor, a HIL host's replay on a board
slimhar::text::LineReader g_reader;
}  // namespace

int slimhar_app() {
  hal::Init();
  hal::WriteLine("slimhar: firmware " SLIMHAR_FIRMWARE_VERSION ", protocol 2");
  for (uint32_t i = 0; i < kSlots; ++i) {
    g_slots[i].ops = g_ops[i];
    g_slots[i].op_capacity = SLIMHAR_MODEL_MAX_OPS;
    g_slots[i].ram_limit = kPlanRamLimit;
    g_slot_ptrs[i] = &g_slots[i];
  }
  const slimhar::AppMemory mem{g_arena, kArenaBytes, g_slot_ptrs, kSlots, g_mult, g_shift, kStoreChannels,
                               g_samples, kSampleCapacity, g_db, sizeof(g_db)};
  slimhar::BoardApi board{hal::WriteLine, hal::Cycles, hal::CyclesPerUs(), hal::ClockName(), hal::SetLoad,
                          hal::Fault, hal::BoardName(), SLIMHAR_FIRMWARE_VERSION};
  board.replay = &g_replay;
  board.sensor = hal::SensorImu();      // null on the emulated board
  board.axes = hal::SensorAxes();
  board.battery_mv = hal::HasBattery() ? hal::BatteryMillivolts : nullptr;
  if (!g_app.Init(slimhar_model, SLIMHAR_MODEL_SIZE, mem, board)) {
    hal::WriteLine("slimhar: halted (the embedded blob is unusable)");
    for (;;) hal::Sleep();  // the watchdog resets us; the reason was printed
  }
  hal::WriteLine("m-init-done");
  hal::WriteLine("m-ready");
  for (;;) {
    char c;
    bool busy = false;
    while (hal::ReadChar(&c)) {
      busy = true;
      const slimhar::text::LineReader::Event e = g_reader.Push(c);
      if (e == slimhar::text::LineReader::kLine) g_app.OnLine(g_reader.line(), g_reader.size());
      if (e == slimhar::text::LineReader::kOverlong) g_app.OnOverlongLine();
      hal::WatchdogFeed();
    }
    g_app.Poll();
    hal::WatchdogFeed();
    if (!busy) hal::Sleep();
  }
}
