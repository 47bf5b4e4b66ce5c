"""The DSP kernels' RAM / speed trade (docs/results.md §4): `slimhar bench engine` on one blob
with the engine built for several scratch budgets (SLIMHAR_DSP_SCRATCH_BUDGET, scratch.h), in
QEMU with -icount (instruction counts are deterministic).

    python -m slimhar.benchmarks.scratch_sweep runs/hil/model.blob --budgets 8192,16384,32768,16777216

For each budget, per subnet: DSP instructions, arena, scratch; and for the widest subnet the
instructions relative to the largest budget (the kernels' old whole-input widening)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def sweep(blob: Path, budgets: list[int]) -> dict:
    from slimhar.benchmarks.engine import bench_engine, build_flags
    out = {"blob": str(blob), "budgets": {}}
    for b in budgets:
        # each budget builds in its own folder: PlatformIO would wipe the project's builds
        with build_flags(f"-DSLIMHAR_DSP_SCRATCH_BUDGET={b}"):
            print(f"scratch_sweep: budget {b:,} B: building and running the engine in QEMU ...", file=sys.stderr)
            r = bench_engine(blob, 1, 1, False)
        out["budgets"][str(b)] = [{k: x[k] for k in ("name", "macs", "dsp_instructions", "arena_bytes",
                                                      "scratch_bytes")} for x in r["rows"]]
    return out


def table(res: dict) -> str:
    budgets = list(res["budgets"])
    ref = {x["name"]: x for x in res["budgets"][max(budgets, key=int)]}
    widest = max(ref.values(), key=lambda x: x["macs"])["name"]
    lines = [f"{res['blob']}: widest subnet {widest}",
             f"{'budget B':>10} {'widest instr':>13} {'vs largest':>10} {'its scratch':>11} {'arena+scratch':>13} "
             f"{'max scratch':>11} {'all subnets instr':>17}"]
    for b in budgets:
        rows = {x["name"]: x for x in res["budgets"][b]}
        w = rows[widest]
        tot = sum(x["dsp_instructions"] for x in rows.values())
        lines.append(f"{int(b):>10,} {w['dsp_instructions']:>13,.0f} {w['dsp_instructions'] / ref[widest]['dsp_instructions']:>10.3f} "
                     f"{w['scratch_bytes']:>11,} {w['arena_bytes'] + w['scratch_bytes']:>13,} "
                     f"{max(x['scratch_bytes'] for x in rows.values()):>11,} {tot:>17,.0f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m slimhar.benchmarks.scratch_sweep", description=__doc__.split("\n")[0])
    ap.add_argument("blob", type=Path)
    ap.add_argument("--budgets", default="8192,16384,24576,32768,49152,16777216")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    try:
        res = sweep(a.blob, [int(v) for v in a.budgets.split(",")])
    except Exception as e:          # noqa: BLE001 - EngineCheckError, OSError, ...: one line
        print(f"scratch_sweep: {e}", file=sys.stderr)
        return 1
    print(table(res))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
