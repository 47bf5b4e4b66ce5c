"""The subnet policy's Python mirror (tools/policy.py): the shared vectors the C++ test replays
are this code's decisions, and `simulate` on the bundled traces reaches the oracle's accuracy
without violating the budget except on the window a step change lands in."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from slimhar.tools import policy as P

REPO = Path(__file__).resolve().parents[1]
TRACES = ("budget_steps", "load_steps", "battery_drain")


def test_committed_vectors_are_this_code(tmp_path):
    """firmware/test/test_policy/vectors.h (replayed by the C++ policy test on the host and in
    QEMU) must be what this module decides: Python and C++ then decide identically."""
    P.write_vectors(tmp_path / "v.h")
    assert (tmp_path / "v.h").read_text() == (REPO / "firmware/test/test_policy/vectors.h").read_text(), \
        "regenerate: python -m slimhar.tools.policy vectors firmware/test/test_policy/vectors.h"


def _hapt_like_table() -> list[P.Candidate]:
    """The 171 hapt-uci grid subnets' real MAC counts (docs/assets, an eval artifact) with a
    synthetic accuracy that rises with log MACs plus seeded noise -- a realistic shape for the
    policy's mechanics; no measured accuracy is used."""
    import random
    rows = json.loads((REPO / "docs/assets/hapt_uci_cnn_test.json").read_text())["rows"]
    rng = random.Random(3)
    macs = [r["macs"] for r in rows]
    lo, hi = math.log(min(macs)), math.log(max(macs))
    return [P.Candidate(i, round(9000 + 700 * (math.log(m) - lo) / (hi - lo) + rng.uniform(-40, 40)), max(1, round(m / 64)))
            for i, m in enumerate(macs)]


@pytest.mark.parametrize("trace", TRACES)
def test_simulate_reaches_oracle_within_budget(trace):
    res = P.simulate(_hapt_like_table(), P.Trace.load(REPO / "tools/traces" / f"{trace}.json"))
    assert len(res["front"]) >= 5
    assert res["accuracy_pct"] >= 0.95 * res["oracle_accuracy_pct"]
    assert res["over_budget_outside_steps"] == 0
    assert res["max_over_per_step"] <= 1
    if trace == "load_steps":      # the load rises twice: the window each rise lands in is the only one over
        assert res["over_budget"] == 2
    if trace == "battery_drain":   # reduced rate below 10 %
        assert res["ran"] < res["windows"]


def test_policy_moves_with_the_budget():
    """budget_steps: each lower budget gives a faster, less accurate subnet."""
    res = P.simulate(_hapt_like_table(), P.Trace.load(REPO / "tools/traces/budget_steps.json"))
    per_seg = {}
    for r in res["rows"]:
        per_seg.setdefault(r["budget_us"], set()).add(r["acc_bp"])
    budgets = sorted(per_seg, reverse=True)
    assert len(budgets) == 4
    assert all(max(per_seg[b]) >= max(per_seg[c]) for b, c in zip(budgets, budgets[1:]))


def test_bad_trace_is_one_clear_error(tmp_path):
    (tmp_path / "t.json").write_text('{"hop_s": 1, "segments": [{"seconds": 5, "battery": 150, "duty": 0.1}]}')
    with pytest.raises(ValueError, match="segment 0 out of range"):
        P.Trace.load(tmp_path / "t.json")
    (tmp_path / "u.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="not a policy trace"):
        P.Trace.load(tmp_path / "u.json")


def test_policy_simulate_cli(tmp_path):
    blob = REPO / "runs" / "firmware" / "model.blob"
    if not blob.exists():
        pytest.skip("run `make firmware-blob` first (make test does)")
    r = subprocess.run([sys.executable, "-m", "slimhar", "policy", "simulate", "--blob", str(blob), "--trace", "load_steps",
                        "--plot", str(tmp_path), "--json", str(tmp_path / "r.json")], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "oracle" in r.stdout and "over budget" in r.stdout
    assert (tmp_path / "policy_load_steps.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "r.json").read_text())[0]["windows"] > 100
    bad = subprocess.run([sys.executable, "-m", "slimhar", "policy", "simulate", "--blob", str(blob), "--trace", "nope"],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "no trace file 'nope'" in bad.stderr
