#include "battery.h"

namespace slimhar {
namespace battery {

uint8_t LipoPercent(uint32_t mv) {
  constexpr uint32_t n = sizeof(kLipo) / sizeof(kLipo[0]);
  if (mv <= kLipo[0].mv) return kLipo[0].pct;
  if (mv >= kLipo[n - 1].mv) return kLipo[n - 1].pct;
  for (uint32_t i = 1; i < n; ++i) {
    if (mv <= kLipo[i].mv) {
      const uint32_t dv = kLipo[i].mv - kLipo[i - 1].mv, dp = kLipo[i].pct - kLipo[i - 1].pct;
      return uint8_t(kLipo[i - 1].pct + ((mv - kLipo[i - 1].mv) * dp + dv / 2) / dv);
    }
  }
  return 100;
}

uint32_t DividerMillivolts(uint32_t raw, uint32_t full_scale, uint32_t vref_mv, uint32_t r_top, uint32_t r_bottom) {
  if (full_scale == 0 || r_bottom == 0) return 0;
  const uint64_t v = uint64_t(raw) * vref_mv * (uint64_t(r_top) + r_bottom) / (uint64_t(full_scale) * r_bottom);
  return v > 0xFFFFFFFFull ? 0xFFFFFFFFu : uint32_t(v);
}

}  // namespace battery
}  // namespace slimhar
