"""The firmware engine's memory plan, computed on the host from a blob: the activation arena
(firmware/lib/slimhar_engine/src/planner.cpp) and the DSP kernels' scratch
(scratch.h: DspScratchBytes), so that `slimhar blob export-c` can size the firmware's one
static arena at build time. Mirrors the C++ exactly; tests/test_engine.py checks every subnet
against what the engine itself reports.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from .blob import Blob, SubnetEntry
from .tflite_io import read_model

ALIGN = 16
_CONV, _FC, _RESHAPE = fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.FULLY_CONNECTED, fb.BuiltinOperator.RESHAPE


def _up(v: int, a: int) -> int:
    return (v + a - 1) // a * a


@dataclass
class MemoryPlan:
    arena_bytes: int       # activations, lifetime-planned (engine.h Plan::arena_bytes)
    scratch_bytes: int     # what the DSP kernels' scratch adds above them (Plan::scratch_bytes)
    channels: int          # per-channel multipliers the plan stores (QuantStore entries)
    ops: int = 0           # op records the plan holds (Plan::n_ops)


def _lowest_clear(n: int, taken: list[tuple[int, int]]) -> int:
    """planner.cpp LowestClear: from 0, step past every (offset, size) that `n` bytes would
    overlap -- in list order, repeated until none does."""
    at, moved = 0, True
    while moved:
        moved = False
        for o, size in taken:
            if at < o + size and o < at + n:
                at = _up(o + size, ALIGN)
                moved = True
    return at


def greedy_offsets(sizes: list[int], first: list[int], last: list[int]) -> tuple[list[int], int]:
    """planner.cpp Lifetimes::Plan: larger buffers first (ties: earlier first use, then creation
    order); each goes to the lowest offset reached by stepping past every placed buffer that is
    alive at the same time and overlaps it, repeated until nothing overlaps."""
    order = sorted(range(len(sizes)), key=lambda b: (-sizes[b], first[b], b))
    off: dict[int, int] = {}
    arena = 0
    for b in order:
        at = _lowest_clear(sizes[b], [(off[o], sizes[o]) for o in range(len(sizes))
                                      if o in off and not (first[o] > last[b] or first[b] > last[o])])
        off[b] = at
        arena = max(arena, _up(at + sizes[b], ALIGN))
    return [off[b] for b in range(len(sizes))], arena


def place_scratch(sizes: list[int], first: list[int], last: list[int], off: list[int], op: int, n: int) -> int:
    """planner.cpp Lifetimes::PlaceScratch: the lowest aligned offset where op's `n` bytes of
    scratch clear every buffer alive during op (a gap of the activations, else above them)."""
    return _lowest_clear(n, [(off[o], sizes[o]) for o in range(len(sizes)) if first[o] <= op <= last[o]])


# scratch.h's default budget for the DSP kernels' widened operands (build flag
# SLIMHAR_DSP_SCRATCH_BUDGET); a firmware built with another one passes it to `export-c`
# (firmware/scripts/embed_blob.py does), and main.cpp refuses to compile when they disagree
DSP_SCRATCH_BUDGET = 16384


def _tile(budget_left: int, unit: int, most: int) -> int:
    """How many units (conv input columns, fc segments) fit the budget: at least 1, at most all."""
    fit = min(max(budget_left // unit if budget_left > 0 and unit else 1, 1), most)
    tiles = -(-most // fit)                     # as few tiles as fit allows, made even (scratch.h EvenTile)
    return -(-most // tiles)


RESIDENT = 0      # scratch.h kResidentTile: a conv keeps every channel pair's weights widened
MORE_TILES = 16   # scratch.h kMoreTiles


def _smaller_tiles(first: int, most: int) -> list[int]:
    """scratch.h SmallerTiles: one tile more than the last, at most MORE_TILES of them, then 1."""
    n0, last, out = -(-most // first), first, []
    for k in range(n0 + 1, min(most, n0 + MORE_TILES) + 1):
        t = -(-most // k)
        if t < last:
            out.append(t)
            last = t
    return out + ([1] if last != 1 else [])


def _conv_choices(x_shape, w_shape, out_shape, stride: int, same: bool, budget: int) -> list[tuple[int, int]]:
    """scratch.h DspConvTileChoices with DspConvScratchBytes: (tile, scratch bytes), fastest first."""
    rows_in, cols, ch_in = x_shape[1], x_shape[2], x_shape[3]
    ch_out, kh = w_shape[0], w_shape[1]
    pad = max((out_shape[1] - 1) * stride + kh - rows_in, 0) if same else 0
    if ch_in == 1 and kh <= 16:
        rows = _up(rows_in + pad + 2, 4)
        words = 7 if (kh + 1) // 2 == 3 else (kh + 1) // 2   # scratch.h DspOneChannelWords
        return [(RESIDENT, _up(2 * cols * rows, ALIGN) + _up(4 * ch_out * words, ALIGN))]
    i4 = _up(ch_in, 4)
    weights = _up(4 * 2 * kh * (i4 // 2), ALIGN)
    col = 4 * (rows_in + pad) * (i4 // 2)
    t = _tile(budget - weights, col, cols)

    def tiled(n: int) -> tuple[int, int]:
        return n, _up(col * n, ALIGN) + weights
    resident = (RESIDENT, _up(col, ALIGN) + (ch_out + 1) // 2 * weights)
    first = [resident, tiled(t)] if resident[1] < tiled(t)[1] else [tiled(t), resident]
    return first + [tiled(n) for n in _smaller_tiles(t, cols)]


def _fc_choices(segs: int, seg_len: int, classes: int, budget: int) -> list[tuple[int, int]]:
    """scratch.h DspFcTileChoices with DspFcScratchBytes."""
    acc = _up(4 * classes, ALIGN)
    seg = 4 * (_up(seg_len, 4) // 2)
    t = _tile(budget - acc, seg, segs)
    return [(n, _up(seg * n, ALIGN) + acc) for n in [t] + _smaller_tiles(t, segs)]


MAX_ARENA_BYTES = 1 << 24   # engine.h kMaxArenaBytes


def _choose_tiles(choices: dict[int, list[tuple[int, int]]], sizes, first, last, off, arena: int,
                  ram_limit: int):
    """prepare.cpp ChooseTiles: the least peak of arena + scratch some choice of every op allows;
    then each op's first (fastest) choice whose scratch ends within `ram_limit` (0: no limit), or
    within that least peak when the limit is below it. Returns (op -> (tile, bytes, offset), arena
    + scratch)."""
    def end(k: int, n: int) -> tuple[int, int]:
        at = place_scratch(sizes, first, last, off, k, n)
        return at, (_up(at + n, ALIGN) if n <= MAX_ARENA_BYTES else 1 << 64)
    target = MAX_ARENA_BYTES
    if ram_limit:
        target = max(ram_limit, max([arena] + [min(end(k, n)[1] for _, n in c) for k, c in choices.items()]))
    chosen, total = {}, arena
    for k, c in choices.items():
        for tile, n in c:
            at, e = end(k, n)
            if e <= target:
                break
        chosen[k] = (tile, n, at)
        total = max(total, e)
    return chosen, total


@dataclass
class Layout:
    """Where the engine's Prepare puts a subnet's activations and DSP scratch (planner.cpp)."""
    model: object                  # the subnet's flatbuffer (fb.ModelT)
    codes: list[int]               # builtin code of each operator code
    buf_of: dict[int, int]         # activation tensor -> its buffer (a RESHAPE output shares its input's)
    sizes: list[int]               # buffer bytes
    offsets: list[int]             # buffer offsets in the arena
    arena_bytes: int
    scratch: dict[int, int]        # op -> its DSP scratch bytes (conv, fc)
    scratch_at: dict[int, int]     # op -> the scratch's offset (Lifetimes::PlaceScratch)
    total: int                     # activations + the scratch above them
    channels: int
    tiles: dict[int, int]          # op -> its tile (ConvParams / FcParams::tile, prepare.cpp ChooseTiles)

    def offset(self, tensor: int) -> int:
        return self.offsets[self.buf_of[tensor]]


def layout(blob: Blob, s: SubnetEntry, budget: int = DSP_SCRATCH_BUDGET, ram_limit: int = 0) -> Layout:
    """The engine's plan of subnet `s` for a DSP build with scratch budget `budget`, prepared with
    Plan::ram_limit `ram_limit` (0: none, the budget's tiles; 1: the least arena + scratch)."""
    m = read_model(blob.model_bytes(s))
    sg = m.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in m.operatorCodes]
    pool_backed = {t: (p, o, i) for t, p, o, i in s.refs}

    def elems(t: int) -> int:
        return math.prod(int(d) for d in sg.tensors[t].shape)

    buf_of: dict[int, int] = {}
    sizes, first, last = [], [], []

    def define(t: int, k: int) -> None:
        buf_of[t] = len(sizes)
        sizes.append(elems(t))
        first.append(k)
        last.append(k)

    def use(t: int, k: int) -> None:
        last[buf_of[t]] = max(last[buf_of[t]], k)

    define(sg.inputs[0], 0)
    choices: dict[int, list[tuple[int, int]]] = {}   # op -> its (tile, DSP scratch bytes), fastest first
    channels = 0
    n_in = {fb.BuiltinOperator.ADD: 2, fb.BuiltinOperator.MAXIMUM: 2}
    for k, op in enumerate(sg.operators):
        code = codes[op.opcodeIndex]
        for t in list(op.inputs)[:n_in.get(code, 1)]:
            use(t, k)
        y = op.outputs[0]
        if code == _RESHAPE:
            buf_of[y] = buf_of[op.inputs[0]]
        else:
            define(y, k)
        if code == _CONV:
            x, w = (sg.tensors[i] for i in op.inputs[:2])
            o = op.builtinOptions
            choices[k] = _conv_choices([int(d) for d in x.shape], [int(d) for d in w.shape],
                                       [int(d) for d in sg.tensors[y].shape], o.strideH, o.padding == fb.Padding.SAME,
                                       budget)
            channels += int(w.shape[0])
        elif code == _FC:
            wt = op.inputs[1]
            if wt in pool_backed:
                p, _, i = pool_backed[wt]
                dims = blob.pool[p].shape
                segs, seg_len = math.prod(dims[1:-1]), i
            else:
                segs, seg_len = 1, int(sg.tensors[wt].shape[1])
            choices[k] = _fc_choices(segs, seg_len, int(sg.tensors[wt].shape[0]), budget)
            channels += int(sg.tensors[wt].shape[0])
    use(sg.outputs[0], len(sg.operators))
    off, arena = greedy_offsets(sizes, first, last)
    chosen, total = _choose_tiles(choices, sizes, first, last, off, arena, ram_limit)
    return Layout(m, codes, buf_of, sizes, off, arena, {k: n for k, (_, n, _) in chosen.items()},
                  {k: at for k, (_, _, at) in chosen.items()}, total, channels,
                  {k: t for k, (t, _, _) in chosen.items()})


def memory_plan(blob: Blob, s: SubnetEntry, budget: int = DSP_SCRATCH_BUDGET, ram_limit: int = 0) -> MemoryPlan:
    """The engine's plan of subnet `s` for a DSP build with scratch budget `budget` (and
    Plan::ram_limit, as layout)."""
    lay = layout(blob, s, budget, ram_limit)
    return MemoryPlan(lay.arena_bytes, lay.total - lay.arena_bytes, lay.channels, len(lay.model.subgraphs[0].operators))


def blob_memory(blob: Blob, budget: int = DSP_SCRATCH_BUDGET, ram_limit: int = 0) -> dict:
    """What the firmware's static buffers must hold to run every subnet of `blob` (DSP scratch
    for a build with scratch budget `budget`) with every plan prepared under Plan::ram_limit
    `ram_limit`: 0, every subnet with the budget's tiles; 1, the least arena + scratch any subnet
    needs (`export-c --least-ram`); N, every subnet within N bytes where it can run in them, else
    in its least (the firmware passes its arena as each plan's ram_limit, so the subnets that fit
    with the budget's tiles keep them)."""
    plans = [memory_plan(blob, s, budget, ram_limit) for s in blob.subnets]
    arena = max(p.arena_bytes for p in plans)
    return {"arena_bytes": arena,
            # what the firmware's one arena holds beyond the largest activations (main.cpp adds
            # it in DSP builds): enough for every subnet's activations + scratch
            "scratch_bytes": max(p.arena_bytes + p.scratch_bytes for p in plans) - arena,
            "channels": max(p.channels for p in plans),
            "channels_total": sum(p.channels for p in plans),
            "ops": max(p.ops for p in plans),
            "plans": plans}
