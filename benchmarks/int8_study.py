"""The int8 comparison of docs/results.md §3, from ``slimhar quantize`` reports (``make bench-int8``).

Reads one report.json per activation-range method (all from the same checkpoint, the same
calibration windows, ``--split test`` so every row carries validation AND test accuracy) and
prints, per method:

- validation: max / mean int8 loss vs float, subnets losing > 0.5 pp -- the method is CHOSEN
  here (lowest max loss, then mean);
- test: the same figures, reported once for every method, the chosen one marked;
- where the report has the TF-converter baseline: the cost of sharing one pool, like with like.
  The converter calibrates activations by min-max over the calibration windows it is fed (the
  same windows ours use) and cannot take our ranges, so the like-with-like pair is our
  ``minmax`` export against it: baseline accuracy minus shared accuracy, per subnet.

    python -m slimhar.benchmarks.int8_study runs/int8/*/report.json --json docs/assets/int8_study.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _loss(rows, fkey, qkey):
    d = [100 * (r[fkey] - r[qkey]) for r in rows]
    return {"max": max(d), "mean": sum(d) / len(d), "over_0.5pp": sum(x > 0.5 for x in d),
            "worst": max(rows, key=lambda r: r[fkey] - r[qkey])["name"]}


def summarize(reports: list[dict]) -> dict:
    if not reports:
        raise ValueError("no reports")
    ck = {r["checkpoint"] for r in reports}
    if len(ck) != 1:
        raise ValueError(f"reports of different checkpoints: {sorted(ck)}")
    methods = {}
    for rep in reports:
        if rep["split"] != "test":
            raise ValueError(f"{rep['ranges']}: a --split {rep['split']} report; the study needs --split test "
                             "(its rows then hold validation and test accuracy)")
        rows = rep["rows"]
        m = {"subnets": len(rows), "test_windows": rep["windows"], "qat_epochs": rep.get("qat_epochs", 0),
             "val": _loss(rows, "val_float_acc", "val_int8_acc"), "test": _loss(rows, "float_acc", "int8_acc")}
        if "baseline_acc" in rows[0]:
            share = [100 * (r["baseline_acc"] - r["int8_acc"]) for r in rows]
            vs_float = [100 * (r["float_acc"] - r["baseline_acc"]) for r in rows]
            m["baseline_test"] = {"loss_max": max(vs_float), "loss_mean": sum(vs_float) / len(vs_float),
                                  "over_0.5pp": sum(x > 0.5 for x in vs_float)}
            m["sharing_cost_test_pp"] = {"max": max(share), "mean": sum(share) / len(share),
                                         "min": min(share), "worst": rows[share.index(max(share))]["name"]}
        m["rows"] = [{k: r[k] for k in ("name", "float_acc", "int8_acc", "val_float_acc", "val_int8_acc")
                      if k in r} | ({"baseline_acc": r["baseline_acc"]} if "baseline_acc" in r else {})
                     for r in rows]
        key = rep["ranges"] + (f"+qat{rep['qat_epochs']}" if rep.get("qat_epochs") else "")
        methods[key] = m
    chosen = min(methods, key=lambda k: (methods[k]["val"]["max"], methods[k]["val"]["mean"]))
    return {"checkpoint": ck.pop(), "chosen_on_validation": chosen, "methods": methods}


def table(s: dict) -> str:
    lines = [f"checkpoint {s['checkpoint']}; method chosen on validation: {s['chosen_on_validation']}",
             f"{'ranges':<14} {'val max':>8} {'val mean':>8} {'val >.5':>7}   {'test max':>8} {'test mean':>9} "
             f"{'test >.5':>8}   {'sharing cost (test, vs TF converter, same windows)':<40}"]
    for k, m in s["methods"].items():
        v, t = m["val"], m["test"]
        share = ""
        if "sharing_cost_test_pp" in m:
            c, b = m["sharing_cost_test_pp"], m["baseline_test"]
            share = (f"mean {c['mean']:+.2f} pp, worst {c['max']:+.2f} pp ({c['worst']}); converter vs float: "
                     f"max {b['loss_max']:.2f} mean {b['loss_mean']:+.2f} pp")
        mark = " *" if k == s["chosen_on_validation"] else ""
        lines.append(f"{k + mark:<14} {v['max']:>8.2f} {v['mean']:>+8.2f} {v['over_0.5pp']:>7d}   {t['max']:>8.2f} "
                     f"{t['mean']:>+9.2f} {t['over_0.5pp']:>8d}   {share}")
    lines.append("losses in pp (float minus int8, all subnets); * = chosen on validation, its test row reported once")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m slimhar.benchmarks.int8_study", description=__doc__.split("\n")[0])
    ap.add_argument("reports", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, default=None, help="Write the summary (with every subnet's figures).")
    a = ap.parse_args(argv)
    try:
        reps = [json.loads(p.read_text()) for p in a.reports]
        s = summarize(reps)
    except (OSError, ValueError, KeyError) as e:
        print(f"int8_study: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(table(s))
    if a.json:
        a.json.write_text(json.dumps(s, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
