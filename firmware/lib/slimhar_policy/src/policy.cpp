#include "policy.h"

namespace slimhar {
namespace policy {
namespace {
uint32_t Predict(const Candidate& c, uint32_t slowdown_q16) {
  const uint64_t p = (uint64_t(c.latency_us) * slowdown_q16) >> 16;
  return p > 0xFFFFFFFFu ? 0xFFFFFFFFu : uint32_t(p);
}
// windows per run when `need` must fit `budget` on average: ceil(need / budget), 1 .. 255
uint8_t Stride(uint32_t need, uint32_t budget) {
  if (budget == 0) return 255;
  const uint64_t s = (uint64_t(need) + budget - 1) / budget;
  return uint8_t(s < 1 ? 1 : (s > 255 ? 255 : s));
}
}  // namespace

uint32_t ParetoFront(const Candidate* in, uint32_t n, Candidate* out) {
  uint32_t m = 0;
  for (uint32_t i = 0; i < n; ++i) {
    bool beaten = false;
    for (uint32_t j = 0; j < n && !beaten; ++j) {
      if (j == i) continue;
      const bool no_worse = in[j].acc_bp >= in[i].acc_bp && in[j].latency_us <= in[i].latency_us;
      const bool better = in[j].acc_bp > in[i].acc_bp || in[j].latency_us < in[i].latency_us;
      // identical entries: the lower subnet index stays
      beaten = no_worse && (better || in[j].subnet < in[i].subnet);
    }
    if (beaten || m == kMaxCandidates) continue;
    uint32_t k = m++;  // insertion by latency, then subnet index
    for (; k > 0 && (out[k - 1].latency_us > in[i].latency_us ||
                     (out[k - 1].latency_us == in[i].latency_us && out[k - 1].subnet > in[i].subnet));
         --k)
      out[k] = out[k - 1];
    out[k] = in[i];
  }
  return m;
}

uint32_t BatteryScalePermille(const Config& cfg, uint8_t b) {
  if (b >= cfg.full_pct) return 1000;
  if (b <= cfg.critical_pct) return cfg.low_scale_permille;
  const uint32_t lo = cfg.critical_pct + 1u, span = cfg.full_pct - lo;
  if (span == 0) return 1000;
  return cfg.low_scale_permille + (1000u - cfg.low_scale_permille) * (b - lo) / span;
}

uint32_t BudgetUs(const Config& cfg, const Input& in) {
  const uint64_t b = uint64_t(in.hop_us) * in.duty_permille / 1000u * BatteryScalePermille(cfg, in.battery_pct) / 1000u;
  return b > 0xFFFFFFFFu ? 0xFFFFFFFFu : uint32_t(b);
}

Decision Choose(const Candidate* front, uint32_t n, const Config& cfg, const Input& in, State* st) {
  Decision d{0, front[0].subnet, BudgetUs(cfg, in), 0, 1, 0};
  int32_t pick = 0;
  if (in.battery_pct <= cfg.critical_pct) {
    d.flags |= kCritical;
    const uint8_t s = Stride(Predict(front[0], st->slowdown_q16), d.budget_us);
    d.stride = s > cfg.critical_stride ? s : cfg.critical_stride;
  } else {
    int32_t best = -1;  // the most accurate subnet predicted to fit
    for (uint32_t i = 0; i < n; ++i)
      if (Predict(front[i], st->slowdown_q16) <= d.budget_us) best = int32_t(i);
    if (best < 0) {
      d.flags |= kNothingFits;
      d.stride = Stride(Predict(front[0], st->slowdown_q16), d.budget_us);
      best = 0;
    }
    pick = best;
    const int32_t cur = st->current;
    if (cur >= 0 && cur < int32_t(n) && best > cur) {
      // moving up: only after min_dwell windows, and only to a subnet that fits with margin
      pick = cur;
      if (st->dwell >= cfg.min_dwell) {
        const uint64_t room = uint64_t(d.budget_us) * (1000u - cfg.margin_permille) / 1000u;
        for (int32_t i = best; i > cur; --i) {
          if (Predict(front[i], st->slowdown_q16) <= room) {
            pick = i;
            break;
          }
        }
      }
    }
  }
  d.candidate = int16_t(pick);
  d.subnet = front[pick].subnet;
  d.predicted_us = Predict(front[pick], st->slowdown_q16);
  if (d.stride > 1 && st->window % d.stride != 0) d.flags |= kSkip;
  if (pick != st->current) {
    if (st->current >= 0) d.flags |= kSwitched;
    st->current = int16_t(pick);
    st->dwell = 0;
  } else if (st->dwell < 0xFFFF) {
    ++st->dwell;
  }
  ++st->window;
  return d;
}

void Observe(const Candidate& ran, uint32_t observed_us, State* st) {
  if (ran.latency_us == 0) return;
  uint64_t s = (uint64_t(observed_us) << 16) / ran.latency_us;
  if (s < kQ16 / 4) s = kQ16 / 4;
  if (s > 64ull * kQ16) s = 64ull * kQ16;
  st->slowdown_q16 = uint32_t(s);
}

}  // namespace policy
}  // namespace slimhar
