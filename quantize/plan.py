"""Each subnet's engine plan, computed at export and stored in the blob (docs/blob-format.md
"Stored plan"), so that a cold switch on the device decodes a few hundred bytes instead of
parsing the flatbuffer and planning the arena again.

This mirrors firmware/lib/slimhar_engine's Prepare field by field: the geometry and
quantization of every op (prepare.cpp FillGeometry, ops/<stem>.cpp), the activation offsets and
DSP scratch placement (arena.py, planner.cpp), where each op's bias / gather indices lie in the
subnet's flatbuffer, and ADD's multipliers (requant.py, TFLM's arithmetic). The device never
trusts a stored plan on its own: it prepares the subnet from its flatbuffer once, compares, and
uses the stored form only after it was found identical (engine.h PlanProofs) -- a plan this
module got wrong costs speed, not correctness. tests/test_engine.py checks that every stored plan
of the test blobs is proven.
"""
from __future__ import annotations

import math
import struct

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from .arena import DSP_SCRATCH_BUDGET, blob_memory, layout
from .blob import Blob, SubnetEntry
from .requant import quantize_multiplier

HEADER = struct.Struct("<BBHIIff3H")   # 26 bytes
COMMON = struct.Struct("<BB3HHbHb")    # 14 bytes: kind, flags, output H W C, output offset / 16 and zp, input offset / 16 and zp
CHAINED = struct.Struct("<BB3HHb")     # 11 bytes: the same without the input (IN_CHAINED)
assert HEADER.size == 26 and COMMON.size == 14 and CHAINED.size == 11
# 2: the conv / fc weights part carries its DSP tile (prepare.cpp ChooseTiles); 3: what follows
# from the records left out of the header (MACs, element counts, the input's and output's offset
# and zero point), an input that is the previous op's output not repeated
FORMAT = 3
ALIGN = 16
MAX_OFFSET = ALIGN * 0xFFFF      # offsets are stored / 16 in a u16

# OpKind (firmware/lib/slimhar_engine/src/ops.def, in its order; that file is not part of the
# installed package, so the order is repeated here -- a drift makes every stored plan "differ",
# which tests/test_engine.py fails on)
_OPS = fb.BuiltinOperator
KIND = {_OPS.PAD: 0, _OPS.CONV_2D: 1, _OPS.ADD: 2, _OPS.GATHER: 3, _OPS.MAXIMUM: 4, _OPS.RESHAPE: 5,
        _OPS.FULLY_CONNECTED: 6}
# record flags
IN_GEOM_EXPLICIT = 1        # else the previous op's output geometry (the model input's for op 0)
OUT_SIZE_EXPLICIT = 2       # else out_h * out_w * out_c
BIAS_SHIFT = 2              # 2 bits: 0 none, 1 int16, 2 int32
ACT_SHIFT = 4               # 2 bits: 0 no range (act_min = act_max = 0), 1 NONE, 2 RELU
IN_CHAINED = 64             # the input's offset and zero point are the previous op's output's (never op 0)


class NoStoredPlan(Exception):
    """The subnet has a form the stored plan does not describe (the engine prepares it from the
    flatbuffer every time)."""


def _elems(t) -> int:
    return math.prod(int(d) for d in t.shape)


def _hwc(t) -> tuple[int, int, int]:
    """prepare.cpp FillGeometry's view of a tensor."""
    if len(t.shape) == 4:
        return int(t.shape[1]), int(t.shape[2]), int(t.shape[3])
    n = _elems(t)
    return 1, 1, (0 if n > 65535 else n)


def _zp(t) -> int:
    return int(t.quantization.zeroPoint[0])


def _scale(t) -> float:
    return float(np.float32(t.quantization.scale[0]))


def _data_positions(model: bytes) -> dict[int, int]:
    """buffer index -> position of its data in the flatbuffer (the vector's first byte)."""
    root = fb.Model.GetRootAs(model, 0)
    pos = {}
    for b in range(root.BuffersLength()):
        buf = root.Buffers(b)
        o = buf._tab.Offset(4)
        if o and buf.DataLength():
            pos[b] = buf._tab.Vector(o)
    return pos


def _off16(v: int) -> int:
    if v % ALIGN or v > MAX_OFFSET:
        raise NoStoredPlan(f"offset {v}")
    return v // ALIGN


def _act(code: int, zp: int) -> tuple[int, int, int]:
    """(flag, act_min, act_max) of a fused activation (prepare.cpp ActRange)."""
    if code == fb.ActivationFunctionType.NONE:
        return 1, -128, 127
    if code == fb.ActivationFunctionType.RELU:
        return 2, max(zp, -128), 127
    raise NoStoredPlan(f"activation {code}")


def least_ram_limit(blob: Blob, budget: int = DSP_SCRATCH_BUDGET) -> int:
    """The arena a firmware built for the least RAM gives every plan as its Plan::ram_limit
    (`export-c --least-ram`: the largest subnet's least activations + scratch, arena.blob_memory)."""
    m = blob_memory(blob, budget, ram_limit=1)
    return m["arena_bytes"] + m["scratch_bytes"]


def stored_plans(blob: Blob, s: SubnetEntry, least_limit: int, budget: int = DSP_SCRATCH_BUDGET) -> tuple[bytes, bytes]:
    """Subnet `s`'s stored plan (no RAM limit: the budget's tiles) and, when they differ, its plan
    for the least-RAM firmware (Plan::ram_limit = `least_limit`, least_ram_limit), else b"". The
    two have the same size: a limit changes only the tiles and scratch offsets, fixed-width fields."""
    first = stored_plan(blob, s, budget)
    arena, scratch = HEADER.unpack_from(first)[3:5]
    if arena + scratch <= least_limit:
        return first, b""     # the fastest tiles fit: Prepare keeps them under that limit too
    least = stored_plan(blob, s, budget, least_limit)
    assert len(least) == len(first) and least != first, s.name
    return first, least


def stored_plan(blob: Blob, s: SubnetEntry, budget: int = DSP_SCRATCH_BUDGET, ram_limit: int = 0) -> bytes:
    """The stored plan of subnet `s` (its bytes in the blob) as the engine prepares it with
    Plan::ram_limit `ram_limit`; NoStoredPlan when the subnet has no multiplier table or a form
    the format does not describe."""
    if not s.mult_count:
        raise NoStoredPlan("no multiplier table")
    lay = layout(blob, s, budget, ram_limit)
    model = blob.model_bytes(s)
    m = lay.model
    sg = m.subgraphs[0]
    if len(sg.operators) > 255:
        raise NoStoredPlan("ops")
    data_at = _data_positions(model)
    refs = {t: (p, o, i) for t, p, o, i in s.refs}
    tin, tout = sg.tensors[sg.inputs[0]], sg.tensors[sg.outputs[0]]
    # the header leaves out what the records give: the input is op 0's, the output the last op's
    if sg.operators[0].inputs[0] != sg.inputs[0] or sg.operators[-1].outputs[0] != sg.outputs[0]:
        raise NoStoredPlan("the model's input / output is not the first op's / last op's")
    if _elems(tin) != math.prod(_hwc(tin)):
        raise NoStoredPlan("input elements")
    prev = _hwc(tin)
    prev_out = None          # the previous op's output offset and zero point
    records, mults = [], 0
    for k, op in enumerate(sg.operators):
        code = lay.codes[op.opcodeIndex]
        if code not in KIND:
            raise NoStoredPlan(f"op {code}")
        kind = KIND[code]
        ins = list(op.inputs)
        x, y = sg.tensors[ins[0]], sg.tensors[op.outputs[0]]
        out_h, out_w, out_c = _hwc(y)
        in_geom = _hwc(x)
        payload = b""
        bias_code, act_flag = 0, 0
        opt = op.builtinOptions
        if code == _OPS.GATHER:
            axis = opt.axis if opt is not None else 0
            if axis < 0:
                axis += len(x.shape)
            dims = [int(d) for d in x.shape]
            in_geom = (math.prod(dims[:axis]), dims[axis], math.prod(dims[axis + 1:]))
            idx = sg.tensors[ins[1]]
            payload = struct.pack("<HI", _elems(idx), data_at[idx.buffer])
        elif code == _OPS.PAD:
            pads = np.frombuffer(bytes(m.buffers[sg.tensors[ins[1]].buffer].data), "<i4").reshape(4, 2)
            payload = struct.pack("<3H", *(int(v) for v in pads[1:, 0]))
        elif code in (_OPS.ADD, _OPS.MAXIMUM):
            b = sg.tensors[ins[1]]
            payload = struct.pack("<Hb", _off16(lay.offset(ins[1])), _zp(b))
            if code == _OPS.ADD:
                act_flag, _, _ = _act(opt.fusedActivationFunction if opt is not None else 0, _zp(y))
                s1, s2, so = _scale(x), _scale(b), _scale(y)
                twice_max = 2.0 * max(s1, s2)
                qs = [quantize_multiplier(r) for r in (s1 / twice_max, s2 / twice_max, twice_max / (float(1 << 20) * so))]
                payload += struct.pack("<3i3b", *(q for q, _ in qs), *(e for _, e in qs))
        elif code in (_OPS.CONV_2D, _OPS.FULLY_CONNECTED):
            w = sg.tensors[ins[1]]
            if ins[1] not in refs:
                raise NoStoredPlan("weights outside the pool")
            p, out, seg_len = refs[ins[1]]
            dims = blob.pool[p].shape
            segs = math.prod(dims[1:-1])
            act_flag, _, _ = _act(opt.fusedActivationFunction if opt is not None else 0, _zp(y))
            bias = ins[2] if len(ins) > 2 and ins[2] != -1 else None
            bias_at = 0
            if bias is not None:
                bt = sg.tensors[bias]
                bias_code = 2 if bt.type == fb.TensorType.INT32 else 1
                bias_at = data_at[bt.buffer]
            scratch_at = _off16(lay.scratch_at[k]) if lay.scratch.get(k) else 0
            tile = lay.tiles.get(k, 0)
            weights = struct.pack("<BHHH", p, out, segs, seg_len) + (struct.pack("<I", bias_at) if bias is not None else b"")
            if code == _OPS.CONV_2D:
                kh, stride, h = int(w.shape[1]), int(opt.strideH), int(x.shape[1])
                pad = max((-(-h // stride) - 1) * stride + kh - h, 0) if opt.padding == fb.Padding.SAME else 0
                payload = struct.pack("<4BHH", kh, stride, pad // 2, pad - pad // 2, scratch_at, tile) + weights
            else:
                payload = struct.pack("<HH", scratch_at, tile) + weights
            mults += out
        flags = (bias_code << BIAS_SHIFT) | (act_flag << ACT_SHIFT)
        head_geom = b""
        if in_geom != prev:
            flags |= IN_GEOM_EXPLICIT
            head_geom = struct.pack("<3H", *in_geom)
        tail_size = b""
        if _elems(y) != out_h * out_w * out_c:
            flags |= OUT_SIZE_EXPLICIT
            tail_size = struct.pack("<I", _elems(y))
        out_at, in_at = _off16(lay.offset(op.outputs[0])), _off16(lay.offset(ins[0]))
        if (in_at, _zp(x)) == prev_out:
            common = CHAINED.pack(kind, flags | IN_CHAINED, out_h, out_w, out_c, out_at, _zp(y))
        else:
            common = COMMON.pack(kind, flags, out_h, out_w, out_c, out_at, _zp(y), in_at, _zp(x))
        records.append(common + head_geom + tail_size + payload)
        prev, prev_out = (out_h, out_w, out_c), (out_at, _zp(y))
    if mults != s.mult_count:
        raise NoStoredPlan("multiplier table")
    body = b"".join(records)
    size = HEADER.size + len(body)
    if size > 0xFFFF:
        raise NoStoredPlan("size")
    head = HEADER.pack(len(sg.operators), FORMAT, size, lay.arena_bytes, lay.total - lay.arena_bytes,
                       _scale(tin), _scale(tout), *_hwc(tin))
    return head + body
