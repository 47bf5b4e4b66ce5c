// int8 kernels, one job each, TFLite-Micro reference semantics, with CMSIS-NN-style signatures:
// explicit shapes, quantization and data (op_params.h), caller-owned scratch sized by the
// Dsp*ScratchBytes twins of scratch.h; nothing of the engine's plan. CONV_2D and FULLY_CONNECTED
// come in two flavours selected at compile time: the Cortex-M4 DSP flavour (SMLAD: two 16x16
// MACs per instruction) wherever the compiler targets a core with the DSP extension, unless
// SLIMHAR_PORTABLE_KERNELS is defined; the portable C++ flavour everywhere else. Both give
// identical bits.
#pragma once
#include <cstdint>

#include "op_params.h"

#if defined(__ARM_FEATURE_DSP) && !defined(SLIMHAR_PORTABLE_KERNELS)
#define SLIMHAR_KERNELS_DSP 1
#else
#define SLIMHAR_KERNELS_DSP 0
#endif

namespace slimhar {
namespace kernels {

// CONV_2D: `in` of in_dims, `out` of out_dims (out_dims.w == in_dims.w). `scratch`: the DSP
// flavour's DspConvScratchBytes(p, in_dims, out_dims) bytes for p.tile (scratch.h), 16-byte
// aligned, clear of `in` and `out`; the portable flavour takes none (null).
void ConvS8(const ConvParams& p, const ChannelQuant& quant, const Dims& in_dims, const int8_t* in, const WeightView& w,
            const BiasRef& bias, const Dims& out_dims, int8_t* out, void* scratch);
// FULLY_CONNECTED: `in` holds w.segs x w.seg_len values, `out` w.out. `scratch`: the DSP
// flavour's DspFcScratchBytes(p, w) bytes (scratch.h), as above.
void FullyConnectedS8(const FcParams& p, const ChannelQuant& quant, const int8_t* in, const WeightView& w,
                      const BiasRef& bias, int8_t* out, void* scratch);

void PadS8(const PadParams& p, const Dims& in_dims, const int8_t* in, const Dims& out_dims, int8_t* out);
// `size` elements of each input and of the output
void AddS8(const AddParams& p, uint32_t size, const int8_t* a, const int8_t* b, int8_t* out);
void MaximumS8(uint32_t size, const int8_t* a, const int8_t* b, int8_t* out);
// in_dims: [outer, axis, inner]; the output is [outer, n_index, inner]
void GatherS8(const GatherParams& p, const Dims& in_dims, const int8_t* in, int8_t* out);

// Bias of output channel o (op_params.h BiasRef): 0 where the layer has none.
inline int32_t Bias(const BiasRef& b, uint32_t o) {
  if (b.data == nullptr) return 0;
  if (b.bytes == 2) {
    const uint8_t* h = b.data + 2 * o;
    return int32_t(int16_t(uint16_t(h[0] | (h[1] << 8))));
  }
  const uint8_t* p = b.data + 4 * o;
  return int32_t(uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24));
}

}  // namespace kernels
}  // namespace slimhar
