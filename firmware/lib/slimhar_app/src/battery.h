// A single-cell Li-Po's state of charge from its voltage (docs/device.md "Battery"): the usual
// resting-voltage curve of a 3.7 V nominal cell, piecewise linear between these points, 0 % at
// 3.30 V (a protection circuit cuts off around 3.0 V; below 3.3 V little charge is left) and
// 100 % at 4.20 V. Integer only, so the host and the board agree.
#pragma once
#include <cstdint>

namespace slimhar {
namespace battery {

struct CurvePoint {
  uint16_t mv;
  uint8_t pct;
};

constexpr CurvePoint kLipo[] = {{3300, 0},  {3500, 5},  {3600, 10}, {3700, 25}, {3750, 40}, {3800, 50},
                                {3850, 60}, {3900, 70}, {4000, 80}, {4100, 90}, {4200, 100}};

// State of charge, 0..100 %, linear between the curve's points (rounded to nearest), clamped.
uint8_t LipoPercent(uint32_t millivolts);

// The battery's voltage from an ADC reading through a divider: raw / full_scale x vref x
// (r_top + r_bottom) / r_bottom, in mV (64-bit intermediate; 0 for a zero full scale or r_bottom).
uint32_t DividerMillivolts(uint32_t raw, uint32_t full_scale, uint32_t vref_mv, uint32_t r_top, uint32_t r_bottom);

}  // namespace battery
}  // namespace slimhar
