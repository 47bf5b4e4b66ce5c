"""Each subnet's requantization multipliers, computed once at export exactly as TFLM's Prepare
computes them, so the device's cold switch does no floating point (docs/blob-format.md
"Multipliers").

For every CONV_2D and FULLY_CONNECTED of a subnet, in operator order, per output channel o:
real = (double(s_in) * double(s_w[o])) / double(s_out) with the model's float32 scales, then
TFLite's QuantizeMultiplier: frac, e = frexp(real); q = round-half-away(frac * 2^31); q == 2^31
-> q / 2, e + 1; e < -31 -> (0, 0). The firmware's own computation (quant_math.h) is the same
and is tested equal, table entry by table entry (firmware/test/test_engine).
"""
from __future__ import annotations

import math

import numpy as np


def quantize_multiplier(real: float) -> tuple[int, int]:
    if not (real >= 0.0) or not math.isfinite(real):
        raise ValueError(f"requantization scale {real!r} is not a finite non-negative number")
    if real == 0.0:
        return 0, 0
    frac, e = math.frexp(real)
    q = math.floor(frac * 2.0 ** 31 + 0.5)          # std::round: half away from zero (frac > 0)
    if q == 1 << 31:
        q //= 2
        e += 1
    if e < -31:
        return 0, 0
    if e > 30:
        raise ValueError(f"requantization scale {real!r} is too large (shift {e})")
    return int(q), int(e)


def weight_scales(s_in: float, s_out: float, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The float32 weight scales a multiplier table came from, given the op's input and output
    scales: s_w = mult * 2^(shift - 31) * s_out / s_in, rounded to float32. The multiplier keeps
    31 bits of the float64 product, the scale has 24: the nearest float32 is the original one
    (tflite_io.drop_weight_scales keeps the scales where it is not, e.g. an underflowed 0)."""
    return np.asarray([np.float32(math.ldexp(int(q), int(e) - 31) * s_out / s_in) for q, e in zip(mult, shift)],
                      np.float32)


def subnet_multipliers(model: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(int32 mult[n], int8 shift[n]) of a subnet flatbuffer, n = its conv / fc output channels."""
    from .tflite_io import read_model, weighted_ops
    mult, shift = [], []
    f32 = lambda t: np.asarray(t.quantization.scale, np.float32)
    for x, w, y, n in weighted_ops(read_model(model)):
        s_in, s_out, s_w = float(f32(x)[0]), float(f32(y)[0]), f32(w)
        for o in range(n):
            q, e = quantize_multiplier(s_in * float(s_w[o if len(s_w) > 1 else 0]) / s_out)
            mult.append(q)
            shift.append(e)
    return np.asarray(mult, "<i4"), np.asarray(shift, np.int8)
