"""(3) The firmware's own policy on the device under a battery x budget sweep: no window over its
budget unless even the smallest subnet cannot fit (then it runs at a reduced rate and says so),
and less budget or less battery never buys a more accurate subnet."""
from __future__ import annotations

BATTERY = (100, 60, 35, 20, 8)            # %, the last at or below the critical level (10 %)
BUDGET = (1000, 300, 120, 40, 10)         # permille of the hop


def test_battery_by_budget_sweep(device, board, recording, hil_report):
    blob = board.blob
    info = device.info()
    acc = {int(r["i"]): int(r["acc_bp"]) for r in info["subnets"]}
    X = recording(blob, 2, 0, None)
    hop = blob.spec.hop
    device.command("stream on")
    i = 0
    grid = {}
    for bat in BATTERY:
        for bud in BUDGET:
            device.command(f"battery set {bat}")
            device.command(f"budget set {bud}")
            rows = []
            while len(rows) < 8:                       # enough windows to settle (moving up waits 4)
                if i + 8 > len(X):
                    device.feed_reset()
                    i = 0
                rows += device.feed(X[i:i + 8])
                i += 8
            grid[bat, bud] = rows
    table = []
    for (bat, bud), rows in grid.items():
        for r in rows:
            if "skipped" in r:
                assert "skip" in r["flags"], r
                continue
            reduced = any(f in r["flags"] for f in ("nothing-fits", "critical"))
            if not reduced:
                assert r["over"] == "0", f"battery {bat} %, budget {bud}: over budget without saying so: {r}"
        ran = [r for r in rows if "skipped" not in r]
        settled = acc[int(ran[-1]["subnet"])] if ran else 0     # where the policy settled
        table.append({"battery": bat, "budget_permille": bud, "budget_us": int(rows[-1]["budget_us"]),
                      "settled_acc_bp": settled, "subnets": sorted({r["name"] for r in ran}),
                      "over": sum(r.get("over") == "1" for r in rows),
                      "flags": sorted({f for r in rows for f in r["flags"].split(",") if f != "-"})})
    # monotone: a smaller budget (same battery) or a lower battery (same budget) never settles on
    # a more accurate subnet (each battery row starts at the whole hop coming from its smallest
    # budget, so the policy moves up there with its 10 % margin; every other cell is reached from
    # a larger budget)
    best = {(t["battery"], t["budget_permille"]): t["settled_acc_bp"] for t in table}
    for bat in BATTERY:
        for a, b in zip(BUDGET, BUDGET[1:]):
            assert best[bat, b] <= best[bat, a], (bat, a, b, best[bat, a], best[bat, b])
    for bud in BUDGET:
        for a, b in zip(BATTERY, BATTERY[1:]):
            assert best[b, bud] <= best[a, bud], (bud, a, b, best[a, bud], best[b, bud])
    assert len({t["settled_acc_bp"] for t in table}) >= 2, "the sweep should move the choice"
    hil_report.add("policy_sweep", table)
