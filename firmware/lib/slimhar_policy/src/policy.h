// The subnet policy: which subnet runs the next window, from the device's subnet table (the
// blob's validation accuracy, latency measured on this core at start-up), the duty-cycle
// budget, the battery level and how much slower than at start-up inference runs now (load).
//
// A pure function of its arguments and a few words of state, in integer arithmetic only: the
// Python mirror (slimhar.tools.policy) decides bit for bit the same, which shared test vectors
// prove (firmware/test/test_policy). docs/device.md states the rules and curves.
#pragma once
#include <cstdint>

namespace slimhar {
namespace policy {

constexpr uint32_t kQ16 = 65536;          // fixed point 1.0 of the slowdown estimate
constexpr uint32_t kMaxCandidates = 64;

struct Candidate {
  uint16_t subnet;       // index in the blob
  uint16_t acc_bp;       // validation accuracy, basis points (9731 = 97.31 %)
  uint32_t latency_us;   // measured on this core at start-up, no load
};

struct Config {
  uint16_t margin_permille = 100;     // moving UP needs the new subnet to fit (1 - margin) x budget
  uint16_t min_dwell = 4;             // windows on a subnet before moving up again
  uint8_t full_pct = 50;              // battery at or above: the whole budget
  uint8_t critical_pct = 10;          // at or below: the smallest subnet on every critical_stride-th window
  uint16_t low_scale_permille = 250;  // budget share just above critical, linear up to full_pct
  uint8_t critical_stride = 2;
};

struct Input {
  uint32_t hop_us;          // time between windows (hop / sample rate)
  uint16_t duty_permille;   // the share of each hop inference may take
  uint8_t battery_pct;
};

struct State {
  int16_t current = -1;           // candidate index of the last window, -1 before the first
  uint16_t dwell = 0;             // windows since the last switch
  uint32_t slowdown_q16 = kQ16;   // observed / start-up latency of the last window run
  uint32_t window = 0;            // windows decided so far
};

enum Flag : uint8_t {
  kSwitched = 1,      // another subnet than the last window's
  kNothingFits = 2,   // even the smallest subnet is predicted over the budget: reduced rate
  kCritical = 4,      // battery at or below critical: smallest subnet, reduced rate
  kSkip = 8,          // this window is not run (reduced rate)
};

struct Decision {
  int16_t candidate;      // index into the candidate table
  uint16_t subnet;        // blob index
  uint32_t budget_us;     // this window's budget
  uint32_t predicted_us;  // the candidate's start-up latency x the slowdown estimate
  uint8_t stride;         // reduced rate: one window in `stride` runs (1: every window)
  uint8_t flags;          // Flag bits
};

// The subnets no other one beats on both accuracy and latency, fastest first (ties: the lower
// subnet index). Returns how many were written to out (at most kMaxCandidates).
uint32_t ParetoFront(const Candidate* in, uint32_t n, Candidate* out);

// Budget share of the battery level: 1000 at or above full_pct, low_scale at critical_pct + 1,
// linear in between (the curve of docs/device.md).
uint32_t BatteryScalePermille(const Config& cfg, uint8_t battery_pct);
uint32_t BudgetUs(const Config& cfg, const Input& in);

// The decision for the next window; updates state (current, dwell, window). `front` must be a
// ParetoFront (fastest first, accuracy rising), n >= 1.
Decision Choose(const Candidate* front, uint32_t n, const Config& cfg, const Input& in, State* state);

// Latency feedback after a window ran on candidate `ran`: the slowdown estimate becomes
// observed / start-up latency (clamped to 1/4 .. 64), so the next decision sees the load now.
void Observe(const Candidate& ran, uint32_t observed_us, State* state);

}  // namespace policy
}  // namespace slimhar
