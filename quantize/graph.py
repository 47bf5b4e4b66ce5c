"""An int8 subnet as a small graph of TFLite builtin ops (the exporter's intermediate form).

``lower_subnet`` turns one (width, resolution) subnet of a checkpoint into tensors + ops:

    input int8 [1, T', C, 1]
    per block:  PAD (1 row top/bottom) -> CONV_2D k(6,1) s(3,1) VALID, BN folded, ReLU fused
                ResNet: + CONV_2D k(3,1) SAME (BN folded), shortcut CONV_2D on the same padded
                input, ADD with fused ReLU
    adaptive max pool to (6, C): when the feature length L != 6, for each pooled row the window
                [floor(i L/6), ceil((i+1) L/6)) -- windows of 1 or 2 rows at these lengths,
                overlapping when L < 6 -- as GATHERs along the time axis and a MAXIMUM chain
    RESHAPE [-1, 6*C*ch] (NHWC flatten; the fc weights were permuted to match torch's
                channel-major flatten once, in the pool)
    FULLY_CONNECTED per-channel int8 -> int8 logits [1, classes]

Constant weight tensors carry both their bytes (a copy of the pool slice) and ``pool_ref``
(pool tensor, out-channels, in-channels), which is all the blob stores for them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from slimhar.train.models.har_net import POOL_ROWS, pool_windows
from slimhar.train.models.slim_ops import channels_at

from .shared import PoolTensor

BN_EPS = 1e-5


@dataclass
class QTensor:
    name: str
    shape: list[int]
    dtype: str                             # "int8" | "int32"
    scale: list[float] | None = None
    zero_point: list[int] | None = None
    axis: int = 0
    data: np.ndarray | None = None         # constant bytes (weights, biases, shapes, indices)
    pool_ref: tuple[str, int, int] | None = None


@dataclass
class QOp:
    kind: str                              # CONV_2D, PAD, ADD, GATHER, MAXIMUM, RESHAPE, FULLY_CONNECTED
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class QGraph:
    tensors: list[QTensor]
    ops: list[QOp]
    inputs: list[int]
    outputs: list[int]
    meta: dict

    def add(self, t: QTensor) -> int:
        self.tensors.append(t)
        return len(self.tensors) - 1


def act_qparams(lo: float, hi: float) -> tuple[float, int]:
    """TFLite asymmetric int8 for a float range (the range is widened to contain 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return float(np.float32(scale)), zp


def fold(pool_t: PoolTensor, state: dict, idx: int | None, o: int) -> tuple[np.ndarray, np.ndarray]:
    """(per-channel weight scale s_w[o], float bias b[o]) of a layer in subnet `idx`."""
    delta = pool_t.delta[:o]
    if pool_t.bn is None:
        return delta, state["fc.bias"].double().numpy()
    g = state[f"{pool_t.bn}.weight"].double().numpy()[:o]
    beta = state[f"{pool_t.bn}.bias"].double().numpy()[:o]
    mean = state[f"{pool_t.bn}.stat_mean"].double().numpy()[idx, :o]
    var = state[f"{pool_t.bn}.stat_var"].double().numpy()[idx, :o]
    inv = 1.0 / np.sqrt(var + BN_EPS)
    s_w = delta * np.abs(g) * inv
    s_w = np.where(s_w > 0, s_w, delta * 1e-8)       # gamma == 0: the channel is a constant beta
    return s_w, beta - g * mean * inv


def lower_subnet(state: dict, spec: dict, pool: dict[str, PoolTensor], width: float, resolution: int,
                 ranges: dict[str, tuple[float, float]], subnet_index: int) -> QGraph:
    C, K = spec["axes"], spec["classes"]
    chans = [channels_at(c, width) for c in spec["channels"]]
    g = QGraph([], [], [], [], {"width": width, "resolution": resolution, "channels": chans})
    qp = {k: act_qparams(*v) for k, v in ranges.items()}

    def act(name, shape, key):
        s, z = qp[key]
        return g.add(QTensor(name, list(shape), "int8", [s], [z]))

    pads = g.add(QTensor("pad.rows", [4, 2], "int32", data=np.array([[0, 0], [1, 1], [0, 0], [0, 0]], np.int32)))

    def conv(name, x, x_key, w_name, o, i, out_shape, out_key, stride, padding, relu):
        pt = pool[w_name]
        s_w, b = fold(pt, state, subnet_index, o)
        s_in = qp[x_key][0]
        s_w32 = s_w.astype(np.float32)
        wt = g.add(QTensor(f"{name}.w", [o, pt.q.shape[1], 1, i], "int8", s_w32.tolist(), [0] * o, 0,
                           np.ascontiguousarray(pt.slice(o, i)), (w_name, o, i)))
        bias_scale = (np.float64(s_in) * s_w32.astype(np.float64))
        bq = np.clip(np.round(b / bias_scale), -2**31, 2**31 - 1).astype(np.int32)
        bt = g.add(QTensor(f"{name}.b", [o], "int32", bias_scale.astype(np.float32).tolist(), [0] * o, 0, bq))
        y = act(name, out_shape, out_key)
        g.ops.append(QOp("CONV_2D", [x, wt, bt], [y], {"stride": stride, "padding": padding, "relu": relu}))
        return y

    x = act("input", [1, resolution, C, 1], "input")
    g.inputs = [x]
    x_key, L, in_ch = "input", resolution, 1
    for b, o in enumerate(chans):
        s_x, z_x = qp[x_key]
        xp = g.add(QTensor(f"b{b}.pad", [1, L + 2, C, in_ch], "int8", [s_x], [z_x]))
        g.ops.append(QOp("PAD", [x, pads], [xp]))
        Lo = (L + 2 - spec["kernel"]) // spec["stride"] + 1
        shape = [1, Lo, C, o]
        if spec["arch"] == "cnn":
            x = conv(f"b{b}.conv1", xp, x_key, f"blocks.{b}.conv1", o, in_ch, shape, f"b{b}.out",
                     spec["stride"], "VALID", True)
        else:
            mid = conv(f"b{b}.conv1", xp, x_key, f"blocks.{b}.conv1", o, in_ch, shape, f"b{b}.mid",
                       spec["stride"], "VALID", True)
            main = conv(f"b{b}.conv2", mid, f"b{b}.mid", f"blocks.{b}.conv2", o, o, shape, f"b{b}.main",
                        1, "SAME", False)
            short = conv(f"b{b}.short", xp, x_key, f"blocks.{b}.short", o, in_ch, shape, f"b{b}.short",
                         spec["stride"], "VALID", False)
            x = act(f"b{b}.add", shape, f"b{b}.out")
            g.ops.append(QOp("ADD", [main, short], [x], {"relu": True}))
        x_key, L, in_ch = f"b{b}.out", Lo, o
    if L != POOL_ROWS:
        wins = pool_windows(L)
        s_x, z_x = qp[x_key]
        parts = []
        for j in range(max(e - s for s, e in wins)):
            idx = np.array([min(s + j, e - 1) for s, e in wins], np.int32)
            it = g.add(QTensor(f"pool.i{j}", [POOL_ROWS], "int32", data=idx))
            gt = g.add(QTensor(f"pool.g{j}", [1, POOL_ROWS, C, in_ch], "int8", [s_x], [z_x]))
            g.ops.append(QOp("GATHER", [x, it], [gt], {"axis": 1}))
            parts.append(gt)
        x = parts[0]
        for j, p in enumerate(parts[1:], 1):
            m = g.add(QTensor(f"pool.m{j}", [1, POOL_ROWS, C, in_ch], "int8", [s_x], [z_x]))
            g.ops.append(QOp("MAXIMUM", [x, p], [m]))
            x = m
    feats = POOL_ROWS * C * in_ch
    shp = g.add(QTensor("flat.shape", [2], "int32", data=np.array([-1, feats], np.int32)))
    s_x, z_x = qp[x_key]
    flat = g.add(QTensor("flat", [1, feats], "int8", [s_x], [z_x]))
    g.ops.append(QOp("RESHAPE", [x, shp], [flat]))
    pt = pool["fc"]
    s_w, b = fold(pt, state, None, K)
    s_w32 = s_w.astype(np.float32)
    wt = g.add(QTensor("fc.w", [K, feats], "int8", s_w32.tolist(), [0] * K, 0,
                       np.ascontiguousarray(pt.slice(K, in_ch)).reshape(K, feats), ("fc", K, in_ch)))
    bias_scale = np.float64(s_x) * s_w32.astype(np.float64)
    bq = np.clip(np.round(b / bias_scale), -2**31, 2**31 - 1).astype(np.int32)
    bt = g.add(QTensor("fc.b", [K], "int32", bias_scale.astype(np.float32).tolist(), [0] * K, 0, bq))
    out = act("logits", [1, K], "logits")
    g.ops.append(QOp("FULLY_CONNECTED", [flat, wt, bt], [out]))
    g.outputs = [out]
    return g


def range_keys(arch: str, blocks: int) -> list[str]:
    keys = ["input"]
    for b in range(blocks):
        keys += [f"b{b}.mid", f"b{b}.main", f"b{b}.short", f"b{b}.out"] if arch == "resnet" else [f"b{b}.out"]
    return keys + ["logits"]


def macs_check(g: QGraph) -> int:
    """MACs of the lowered graph (conv + fc), to cross-check against the model's own count."""
    total = 0
    for op in g.ops:
        if op.kind in ("CONV_2D", "FULLY_CONNECTED"):
            w = g.tensors[op.inputs[1]]
            out = g.tensors[op.outputs[0]]
            total += math.prod(out.shape[:-1]) * math.prod(w.shape)
    return total


def arena_ideal(g: QGraph) -> int:
    """Bytes of activations live at the worst moment: each non-constant tensor lives from the op
    that produces it (or the start, for the input) to the last op that reads it. The lower bound
    any arena planner can reach for this op order."""
    n = len(g.ops)
    first, last = {}, {}
    for i in g.inputs:
        first[i] = 0
    for k, op in enumerate(g.ops):
        for t in op.outputs:
            first.setdefault(t, k)
        for t in op.inputs:
            if g.tensors[t].data is None:
                last[t] = k
    for t in g.outputs:
        last[t] = n
    peak = 0
    for k in range(n):
        live = sum(math.prod(g.tensors[t].shape) for t in first if first[t] <= k <= last.get(t, first[t]))
        peak = max(peak, live)
    return peak
