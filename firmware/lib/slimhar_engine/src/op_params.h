// The kernels' arguments, CMSIS-NN style: each kernel (kernels.h) takes its shapes, its
// quantization and its data as explicit structs, never the engine's plan, so that a kernel can be
// called -- and tested -- on its own. Each op's record in a Plan (engine.h OpPlan) holds these
// structs as Prepare filled them; Eval passes them through unchanged.
#pragma once
#include <cstdint>

namespace slimhar {

// An int8 activation tensor's shape: NHWC, batch 1. GATHER reads [outer, axis, inner] from it.
struct Dims {
  uint16_t h, w, c;
};

// int8 weights of a conv / fully-connected layer, read in place: element (o, s, i) lives at
// base[o * out_stride + s * seg_stride + i] for o < out, s < segs, i < seg_len. For a slice of
// a pool tensor [O, k, 1, I] (conv) the segments are the kernel rows; for [K, 6C, Cin] (fc)
// they are the flattened positions.
struct WeightView {
  const int8_t* base;
  uint32_t out_stride, seg_stride;
  uint16_t out, segs, seg_len;
};

// One bias per output channel, little-endian and possibly unaligned inside the flatbuffer: int32
// (bytes 4, TFLite's), or int16 (bytes 2) where a blob stores a bias whose values all fit
// (docs/blob-format.md). data null: the layer has none (TFLite allows it), it adds 0.
struct BiasRef {
  const uint8_t* data;
  uint8_t bytes;
};

// Per-output-channel requantization: a Q31 multiplier and a power-of-two shift (TFLM's).
struct ChannelQuant {
  const int32_t* mult;
  const int8_t* shift;
};

// CONV_2D with a (kh, 1) kernel, stride along H only; SAME padding as rows skipped at the top and
// bottom. input_offset is minus the input zero point, output_offset the output zero point;
// [act_min, act_max] the fused activation's range. The weights are a WeightView with segs == kh
// and seg_len == the input channels, out == the output channels. tile: the DSP flavour's way
// through the input (scratch.h): input columns widened at a time (1 .. in_dims.w), or 0 -- every
// output channel pair's weights widened once and kept, the input one column at a time; the
// portable flavour ignores it.
struct ConvParams {
  int32_t input_offset, output_offset, act_min, act_max;
  uint8_t kh, stride, pad_top, pad_bottom;
  uint16_t tile;
};

// FULLY_CONNECTED over the flattened input (segs x seg_len of its WeightView). tile: segments the
// DSP flavour widens at a time (1 .. segs).
struct FcParams {
  int32_t input_offset, output_offset, act_min, act_max;
  uint16_t tile;
};

// ADD of two same-shaped tensors: TFLite's int8 rescaling, both inputs to a common scale with 20
// bits of headroom (mult / shift per input, then the output's).
struct AddParams {
  int32_t input_offset[2], output_offset, act_min, act_max;
  int32_t mult[3];
  int8_t shift[3];
};

// PAD: rows / columns / channels added before the input along H, W, C (the amounts after follow
// from the two shapes), filled with `value` (the output zero point).
struct PadParams {
  uint16_t before[3];
  int8_t value;
};

// GATHER along one axis: n_index int32 little-endian indices, each checked to lie in the axis.
struct GatherParams {
  const uint8_t* index;
  uint16_t n_index;
};

}  // namespace slimhar
