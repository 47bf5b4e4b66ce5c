// The wearable application, board-independent: the embedded blob, the engine's plan cache, the
// sample ring and windowing, the subnet policy, and the serial protocol (docs/serial-protocol.md)
// that a person, the HIL suite and the MLPerf Tiny runner drive. Every reply line goes through
// BoardApi::write; every command line ends with "m-ready". All memory is caller-owned.
#pragma once
#include <cstdint>

#include "axes.h"
#include "chain.h"
#include "engine.h"
#include "pipeline.h"
#include "plan_cache.h"
#include "policy.h"
#include "replay.h"
#include "slimhar_blob.h"
#include "text.h"

namespace slimhar {

constexpr uint32_t kProtocolVersion = 2;  // 2: `feed` takes the input spec's raw channels; `info input`, `info classes`
constexpr uint32_t kMaxSubnets = 256;
static_assert(kMaxProvenSubnets >= kMaxSubnets, "every subnet the application takes can use its stored plan");
constexpr uint32_t kMaxAxes = 16;
constexpr uint32_t kMaxClasses = 64;
constexpr uint32_t kMaxSamplesPerFeed = 8;

struct AppMemory {
  uint8_t* arena;              // 16-byte aligned, arena + scratch of the largest subnet
  uint32_t arena_bytes;
  Plan* const* slots;          // prepared plans kept, each with its op storage bound
  uint32_t n_slots;
  int32_t* mult;               // n_slots x channels_per_slot
  int8_t* shift;
  uint32_t channels_per_slot;
  float* samples;              // sample_capacity x axes
  uint32_t sample_capacity;    // at least window + hop
  int8_t* db;                  // MLPerf `db` input buffer, db_bytes
  uint32_t db_bytes;
};

struct BoardApi {
  void (*write)(const char* line);  // one line, without the line ending
  uint64_t (*cycles)();             // core clock (DWT CYCCNT; under QEMU -icount: instructions)
  uint32_t cycles_per_us;
  const char* clock_name;           // "cycles" or "instructions"
  void (*set_load)(uint32_t pct);   // emulation: a timer interrupt keeps the core busy pct % of the time
  void (*fault)();                  // `debug fault`: a deliberate bus fault (the fault handler's test)
  const char* board;
  const char* firmware;
  // Sensing (docs/device.md "Sensing"). replay: the sensor `feed` lines fill (always there);
  // sensor: the board's own IMU, or null (the emulated board: samples come over the link only);
  // axes: how the sensor's axes land on the spec's raw channels (the board's mounting table).
  imu::ReplayImu* replay = nullptr;
  imu::Imu* sensor = nullptr;
  const imu::AxisMap* axes = nullptr;
  uint32_t (*battery_mv)() = nullptr;  // the battery divider's voltage; null: none (set over serial)
};

struct Stats {
  uint32_t lines = 0, errors = 0, windows = 0, ran = 0, skipped = 0, drops = 0, overruns = 0, switches = 0,
           over_budget = 0, samples = 0;
  uint32_t per_subnet[kMaxSubnets] = {};
};

class App {
 public:
  // Opens the blob, takes rate, window, hop, chain and normalization from its input spec,
  // prepares and times every subnet once (the latency table the policy uses).
  // false: the blob or a subnet is unusable (the reason was written).
  bool Init(const uint8_t* blob, uint32_t blob_size, const AppMemory& mem, const BoardApi& board);
  void OnLine(const char* line, uint32_t n);  // one command line, without its terminator
  void OnOverlongLine();                      // a line longer than the line buffer was dropped
  void Poll();                                // run the windows the samples so far complete

  const Stats& stats() const { return stats_; }

 private:
  void Reply(text::Line& l);
  void Error(const char* what, const char* detail = nullptr);
  void Ready();
  void Info();
  void InfoInput();
  void SubnetRow(uint32_t i);
  void Feed(const char* line, const text::Tokens& t);
  void StartSensing();
  void Drain(imu::Imu* from, bool use);   // samples of `from` into the chain (use) or discarded
  void Push(const float* raw);
  void RunDueWindows();
  uint32_t SensorOverruns() const;
  void RunWindow(uint64_t end);
  bool Run(uint32_t subnet, const int8_t* input, uint64_t* cycles, const Plan** plan);
  void MlperfDb(const text::Tokens& t);
  void MlperfInfer(const text::Tokens& t);
  void Results();
  void PrintStats();
  uint32_t DbSubnet() const;
  uint32_t Us(uint64_t cycles) const { return uint32_t(cycles / board_.cycles_per_us); }

  Blob blob_;
  BoardApi board_{};
  AppMemory mem_{};
  PlanCache* cache_ = nullptr;
  alignas(PlanCache) uint8_t cache_storage_[sizeof(PlanCache)];
  SampleRing ring_;                 // model channels, after the chain
  Chain chain_;
  // where samples come from: the replay sensor (`feed`), or the board's IMU; both go through the
  // Imu interface when the spec's raw channels are IMU axes (routes_), else `feed` values go
  // straight into the chain
  enum class Source : uint8_t { kReplay, kSensor };
  Source source_ = Source::kReplay, default_source_ = Source::kReplay;
  bool replay_routed_ = false, sensor_routed_ = false, sensor_running_ = false, battery_forced_ = false;
  imu::Route replay_routes_[kSpecMaxRaw] = {}, sensor_routes_[kSpecMaxRaw] = {};
  const char* sensor_status_ = "none";
  uint32_t overrun_base_ = 0;           // the sensors' overrun counts at the last `stats reset`
  uint32_t window_ = 0, hop_ = 0, axes_ = 0, classes_ = 0, rate_mhz_ = 0, hop_us_ = 0;
  float mean_[kMaxAxes] = {}, std_[kMaxAxes] = {};
  uint32_t latency_us_[kMaxSubnets] = {}, latency_cycles_[kMaxSubnets] = {};
  uint32_t prepare_us_[kMaxSubnets] = {};  // a cold prepare (after the proving first one), measured at start-up
  uint32_t plan_stored_[kMaxSubnets / 32] = {};  // bit i: that prepare decoded a proven stored plan (else: the flatbuffer)
  policy::Candidate front_[policy::kMaxCandidates];
  uint32_t n_front_ = 0;
  policy::Config policy_cfg_;
  policy::State policy_state_;
  int32_t forced_ = -1;             // `subnet set N`
  uint32_t battery_pct_ = 100, duty_permille_ = 1000, load_pct_ = 0;
  bool stream_ = false;
  uint32_t feed_seq_ = 0;
  uint64_t next_end_ = 0;
  int32_t last_subnet_ = -1;
  uint32_t db_expected_ = 0, db_have_ = 0;
  int8_t out_[kMaxClasses] = {};    // the last inference's int8 logits (MLPerf `results`)
  uint32_t out_n_ = 0, out_subnet_ = 0;
  Stats stats_;
  text::Line line_, err_;
};

}  // namespace slimhar
