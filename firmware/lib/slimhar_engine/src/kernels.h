// int8 kernels, one job each, TFLite-Micro reference semantics. CONV_2D and FULLY_CONNECTED
// come in two flavours selected at compile time: the Cortex-M4 DSP flavour (SMLAD: two 16x16
// MACs per instruction) wherever the compiler targets a core with the DSP extension, unless
// SLIMHAR_PORTABLE_KERNELS is defined; the portable C++ flavour everywhere else. Both give
// identical bits.
#pragma once
#include <cstdint>

#include "engine.h"

#if defined(__ARM_FEATURE_DSP) && !defined(SLIMHAR_PORTABLE_KERNELS)
#define SLIMHAR_KERNELS_DSP 1
#else
#define SLIMHAR_KERNELS_DSP 0
#endif

namespace slimhar {
namespace kernels {

void Pad(const OpPlan& p, const int8_t* in, int8_t* out);
void Add(const OpPlan& p, const int8_t* a, const int8_t* b, int8_t* out);
void Gather(const OpPlan& p, const int8_t* in, int8_t* out);
void Maximum(const OpPlan& p, const int8_t* a, const int8_t* b, int8_t* out);

// `scratch` holds ScratchBytes(plan) bytes, 16-byte aligned (unused by the portable flavour).
void Conv(const OpPlan& p, const int8_t* in, int8_t* out, void* scratch);
void FullyConnected(const OpPlan& p, const int8_t* in, int8_t* out, void* scratch);

// Scratch one op of this flavour needs (0 for the portable flavour).
uint32_t OpScratchBytes(const OpPlan& p);

// Bias of output channel o (int32 little-endian, possibly unaligned inside the flatbuffer).
inline int32_t Bias(const OpPlan& p, uint32_t o) {
  const uint8_t* b = p.bias + 4 * o;
  return int32_t(uint32_t(b[0]) | (uint32_t(b[1]) << 8) | (uint32_t(b[2]) << 16) | (uint32_t(b[3]) << 24));
}

}  // namespace kernels
}  // namespace slimhar
