"""The engine's RAM for a subnet against TFLM's, on the same .tflite, for every subnet of a blob
(docs/results.md §4).

    python -m slimhar.benchmarks.tflm_arena runs/hil/model.blob [--json FILE]

TFLM is the `tflite-micro` package's interpreter (its reference kernels, on this 64-bit host):
`print_allocations` splits its arena into the head -- the activation plan, the same bytes on
any target (int8 tensors, 16-byte aligned) -- and the tail -- persistent op data, tensor and
node structs, whose size follows the pointer width (smaller on the M4) and which CMSIS-NN's
kernels extend by their im2col buffers. Ours is the engine's activation arena plus what the DSP
kernels' scratch adds above it (quantize/arena.py, tested equal to the engine's own plan; the
engine's op records are static RAM apart from the arena, `slimhar bench engine` prints them).

What it can show: where ours is at most TFLM's head, ours is at most TFLM's arena on every
target and with any kernels (the head is part of it). Where ours is above the head, the
comparison needs TFLM's tail on the M4 with CMSIS-NN, which only a build of TFLM for the board
gives (one anchor: w100_t128 of hapt-uci, 54,756 bytes in QEMU, host 55,920).

--measure: what each subnet costs when its plan is held to TFLM's RAM -- prepared with
Plan::ram_limit = TFLM's whole host arena, and = its activation plan alone (which gives the
subnet's least arena + scratch) -- in DSP instructions against its fastest plan (the engine in
QEMU, engine_check, the same windows; the outputs compared with the fastest plan's).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path


_PRINT = """
import sys
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read(), arena_size=int(sys.argv[2]))
it.print_allocations()
"""


def tflm_arena(model: bytes) -> tuple[int, int]:
    """(head, tail) bytes of TFLM's arena for a standalone .tflite, as its allocator records
    them. TFLM prints them through its own buffered C stdout, which only a process's exit
    flushes: a child interpreter prints them."""
    import subprocess
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "m.tflite"
        path.write_bytes(model)
        r = subprocess.run([sys.executable, "-c", _PRINT, str(path), str(max(256 * 1024, 8 * len(model)))],
                           capture_output=True, text=True, timeout=120)
    got = dict(re.findall(r"Arena allocation (head|tail) (\d+) bytes", r.stdout + r.stderr))
    if r.returncode != 0 or set(got) != {"head", "tail"}:
        raise RuntimeError(f"TFLM printed no arena allocation figures (exit {r.returncode}):\n{(r.stdout + r.stderr)[-500:]}")
    return int(got["head"]), int(got["tail"])


def _measure(blob_path: Path, blob, rows: list[dict], windows: int = 2) -> None:
    """Adds to each row its DSP instructions (per window) and arena + scratch with no limit, with
    TFLM's host arena as the limit, and with TFLM's activation plan as the limit."""
    import numpy as np
    from slimhar.benchmarks.engine import _windows
    from slimhar.tools import engine_check as ec
    X, _ = _windows(blob, windows)
    limits = {"fastest": [0] * len(rows), "at_tflm_host": [r["tflm_total_host"] for r in rows],
              "at_tflm_head": [r["tflm_head"] for r in rows]}
    inputs = [ec.subnet_inputs(blob, s, X) for s in blob.subnets]
    program = ec.build("dsp")
    records = [(i, inputs[i], limit) for lim in limits.values() for i, limit in enumerate(lim)]
    res = ec.run("dsp", program, blob_path, records).records
    n = len(rows)
    for k, name in enumerate(limits):
        for i, r in enumerate(rows):
            rec = res[k * n + i]
            if rec.status:
                raise ec.EngineCheckError(f"{r['name']} ({name}): {ec.STATUS[rec.status]}")
            if not np.array_equal(rec.outputs, res[i].outputs):
                raise ec.EngineCheckError(f"{r['name']} ({name}): outputs differ from its fastest plan's")
            r[f"{name}_bytes"] = rec.arena_bytes + rec.scratch_bytes
            r[f"{name}_instructions"] = rec.invoke_instructions / windows


def compare(blob_path: Path, measure: bool = False) -> dict:
    from slimhar.quantize.arena import memory_plan
    from slimhar.quantize.blob import Blob
    blob = Blob.open(blob_path)
    rows = []
    for s in blob.subnets:
        head, tail = tflm_arena(blob.unpack(s))
        mp = memory_plan(blob, s)
        ours = mp.arena_bytes + mp.scratch_bytes
        lp = memory_plan(blob, s, ram_limit=1)   # the least the engine can run it in (smaller DSP tiles)
        rows.append({"name": s.name, "tflm_head": head, "tflm_tail_host": tail, "tflm_total_host": head + tail,
                     "arena": mp.arena_bytes, "scratch": mp.scratch_bytes, "ours": ours,
                     "ours_minus_head": ours - head, "ours_least": lp.arena_bytes + lp.scratch_bytes})
    if measure:
        _measure(blob_path, blob, rows)
    return {"blob": str(blob_path), "subnets": len(rows),
            "at_most_head": sum(r["ours"] <= r["tflm_head"] for r in rows),
            "at_most_host_total": sum(r["ours"] <= r["tflm_total_host"] for r in rows),
            "least_at_most_head": sum(r["ours_least"] <= r["tflm_head"] for r in rows),
            "least_at_most_host_total": sum(r["ours_least"] <= r["tflm_total_host"] for r in rows),
            "max_ours_minus_head": max(r["ours_minus_head"] for r in rows), "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("blob", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--measure", action="store_true", help="also run every subnet in QEMU held to TFLM's RAM "
                    "(Plan::ram_limit = TFLM's host arena, its activation plan): instructions against the fastest plan")
    a = ap.parse_args(argv)
    res = compare(a.blob, a.measure)
    print(f"{'subnet':<11} {'TFLM head':>9} {'tail(host)':>10} {'TFLM host':>9} {'our arena':>9} {'scratch':>8} "
          f"{'ours':>7} {'ours-head':>9} {'least':>7}")
    for r in res["rows"]:
        print(f"{r['name']:<11} {r['tflm_head']:>9,} {r['tflm_tail_host']:>10,} {r['tflm_total_host']:>9,} "
              f"{r['arena']:>9,} {r['scratch']:>8,} {r['ours']:>7,} {r['ours_minus_head']:>+9,} {r['ours_least']:>7,}")
    print(f"{res['blob']}: ours <= TFLM's activation plan alone for {res['at_most_head']} of {res['subnets']} "
          f"subnets, <= TFLM's whole host arena for {res['at_most_host_total']}; the most ours is above the "
          f"activation plan: {res['max_ours_minus_head']:+,} bytes")
    print(f"least: each subnet at the least arena + scratch the engine runs it in (Plan::ram_limit 1, smaller DSP "
          f"tiles; `slimhar bench engine --least-ram` measures their cost): <= TFLM's activation plan for "
          f"{res['least_at_most_head']}, <= its whole host arena for {res['least_at_most_host_total']} of {res['subnets']}")
    if a.measure:
        print(f"\n{'subnet':<11} {'fastest':>7} {'DSP instr':>11} {'<= TFLM host':>12} {'instr':>7} "
              f"{'<= TFLM head':>12} {'instr':>7}")
        for r in res["rows"]:
            pc = lambda v: f"{100 * (v / r['fastest_instructions'] - 1):+.1f}%"
            print(f"{r['name']:<11} {r['fastest_bytes']:>7,} {r['fastest_instructions']:>11,.0f} "
                  f"{r['at_tflm_host_bytes']:>12,} {pc(r['at_tflm_host_instructions']):>7} "
                  f"{r['at_tflm_head_bytes']:>12,} {pc(r['at_tflm_head_instructions']):>7}")
        worst = max(res["rows"], key=lambda r: r["at_tflm_host_instructions"] / r["fastest_instructions"])
        res["at_tflm_host_fits"] = sum(r["at_tflm_host_bytes"] <= r["tflm_total_host"] for r in res["rows"])
        res["at_tflm_host_worst"] = {"name": worst["name"],
                                     "extra": worst["at_tflm_host_instructions"] / worst["fastest_instructions"] - 1}
        print(f"held to TFLM's host arena (Plan::ram_limit): {res['at_tflm_host_fits']} of {res['subnets']} fit it; "
              f"the most it costs: {worst['name']} {100 * res['at_tflm_host_worst']['extra']:+.1f}% DSP instructions "
              "(same outputs as the fastest plan)")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
