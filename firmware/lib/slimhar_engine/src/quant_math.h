// Fixed-point requantization with the exact semantics of TFLite(-Micro)'s reference kernels
// (the default double-rounding build): a Q31 multiplier and a power-of-two shift per channel.
#pragma once
#include <cmath>
#include <cstdint>

namespace slimhar {
namespace q {

// TFLite's SaturatingRoundingDoublingHighMul: (a*b + nudge) / 2^31 with nudge = 2^30 for a
// non-negative product and 1 - 2^30 otherwise, the division truncating toward zero. For a
// negative product p, trunc((p + 1 - 2^30) / 2^31) == floor((p + 2^30) / 2^31), so both cases
// are one arithmetic shift of p + 2^30 (SMULL, an add with carry, a shift on the M4).
inline int32_t SatRoundDoublingHighMul(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  return int32_t((int64_t(a) * int64_t(b) + (int64_t(1) << 30)) >> 31);
}

// x / 2^e rounded to nearest, ties away from zero.
inline int32_t RoundingDivideByPOT(int32_t x, int e) {  // 0 <= e <= 31
  const int32_t mask = int32_t((1u << e) - 1u);
  const int32_t rem = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> e) + (rem > threshold ? 1 : 0);
}

inline int32_t MulByQuantMul(int32_t x, int32_t mult, int shift) {
  const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  return RoundingDivideByPOT(SatRoundDoublingHighMul(int32_t(uint32_t(x) << left), mult), right);
}

// For multipliers < 1 (shift <= 0), as the int8 ADD kernel uses them.
inline int32_t MulByQuantMulSmallerThanOne(int32_t x, int32_t mult, int shift) {
  return RoundingDivideByPOT(SatRoundDoublingHighMul(x, mult), -shift);
}

// real = mult * 2^(shift - 31), mult in [2^30, 2^31): frexp + round half away, as TFLite does.
inline bool QuantizeMultiplier(double real, int32_t* mult, int* shift) {
  if (!(real >= 0.0) || !std::isfinite(real)) return false;
  if (real == 0.0) {
    *mult = 0;
    *shift = 0;
    return true;
  }
  int e = 0;
  const double frac = std::frexp(real, &e);
  int64_t qf = int64_t(std::round(frac * double(int64_t(1) << 31)));
  if (qf == (int64_t(1) << 31)) {
    qf /= 2;
    ++e;
  }
  if (e < -31) {
    e = 0;
    qf = 0;
  }
  if (e > 30) return false;  // a multiplier this large means broken scales
  *mult = int32_t(qf);
  *shift = e;
  return true;
}

// int32 addition that wraps like the hardware (and TFLM's int32 arithmetic in practice) instead
// of being undefined on overflow: only a hostile model (an extreme bias or zero point) gets there.
inline int32_t WrapAdd(int32_t a, int32_t b) { return int32_t(uint32_t(a) + uint32_t(b)); }

inline int32_t Clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

}  // namespace q
}  // namespace slimhar
