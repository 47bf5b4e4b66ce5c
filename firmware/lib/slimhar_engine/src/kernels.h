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

// `scratch`: the op's DspScratchBytes (scratch.h) at OpPlan::scratch_off of the arena, 16-byte
// aligned, clear of every activation alive during the op (null for the portable flavour: unused).
void Conv(const OpPlan& p, const int8_t* in, int8_t* out, void* scratch);
void FullyConnected(const OpPlan& p, const int8_t* in, int8_t* out, void* scratch);

// Bias of output channel o (little-endian, possibly unaligned inside the flatbuffer: int32, or
// int16 where a blob stores a bias whose values all fit, docs/blob-format.md); a layer without a
// bias tensor (TFLite allows it for CONV_2D and FULLY_CONNECTED) adds 0.
inline int32_t Bias(const OpPlan& p, uint32_t o) {
  if (p.bias == nullptr) return 0;
  if (p.bias_bytes == 2) {
    const uint8_t* h = p.bias + 2 * o;
    return int32_t(int16_t(uint16_t(h[0] | (h[1] << 8))));
  }
  const uint8_t* b = p.bias + 4 * o;
  return int32_t(uint32_t(b[0]) | (uint32_t(b[1]) << 8) | (uint32_t(b[2]) << 16) | (uint32_t(b[3]) << 24));
}

}  // namespace kernels
}  // namespace slimhar
