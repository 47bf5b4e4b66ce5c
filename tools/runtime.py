"""The seed paper's two on-device runtime experiments, run on a board (or the emulated one) with
the firmware's own policy and load generator (`slimhar bench runtime`, hil_tests/test_runtime.py):

  budget steps  a static latency budget stepped down (the paper: 70 -> 45 -> 20 -> 10 ms on its
                phone; here the same ratios of the largest front subnet's measured latency),
                the chosen subnet following it;
  load steps    other work on the core 0 -> 30 -> 60 -> 0 % (the firmware's load generator,
                emulation only) under a fixed budget the largest subnet meets only when idle.

Each window's result line is one row: the step, the subnet, its latency and the budget. The
summary per step change: windows over budget, windows until it settled (every later window of
the step within budget), and the accuracy of the chosen subnets against the best single subnet
that never violates the whole run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

PAPER_BUDGET_MS = (70, 45, 20, 10)
PAPER_LOADS = (0, 30, 60, 0)


@dataclass
class Experiment:
    name: str
    steps: list[dict]                       # {"budget_us": B, "load": P} per step
    rows: list[dict] = field(default_factory=list)
    hop_us: int = 0
    subnets: dict = field(default_factory=dict)   # index -> {"name", "acc", "latency_us"} (start-up table)


def _front(info) -> list[dict]:
    return sorted(({"i": int(r["i"]), "name": r["name"], "acc": int(r["acc_bp"]) / 10000,
                    "latency_us": int(r["latency_us"])} for r in info["subnets"] if r["front"] == "1"),
                  key=lambda r: r["latency_us"])


def budget_steps(dev, X, windows_per_step: int = 10, ratios=None) -> Experiment:
    """The paper's figure (a): budgets at its 70 / 45 / 20 / 10 ms ratios of the largest front
    subnet's measured latency (x 1.05, so the first step admits it)."""
    info = dev.info()
    top = _front(info)[-1]["latency_us"]
    ratios = ratios or [b / PAPER_BUDGET_MS[0] for b in PAPER_BUDGET_MS]
    steps = [{"budget_us": max(1000, round(top * 1.05 * r)), "load": 0} for r in ratios]
    return _run(dev, info, "budget steps", steps, X, windows_per_step)


def load_steps(dev, X, windows_per_step: int = 10, loads=PAPER_LOADS) -> Experiment:
    """The paper's figure (b): load 0 -> 30 -> 60 -> 0 % under a budget the largest front subnet
    meets idle but not at 30 % (1.15 x its latency; 30 % load makes it 1.43 x slower)."""
    info = dev.info()
    top = _front(info)[-1]["latency_us"]
    steps = [{"budget_us": round(top * 1.15), "load": p} for p in loads]
    return _run(dev, info, "load steps", steps, X, windows_per_step)


def _run(dev, info, name, steps, X, windows_per_step) -> Experiment:
    import numpy as np
    hop = int(info["blob"]["hop"])
    window = int(info["blob"]["window"])
    need = window + hop * (len(steps) * windows_per_step + 1)
    if len(X) < need:
        raise ValueError(f"{name}: the recording has {len(X)} samples, {need} needed")
    ex = Experiment(name, steps, hop_us=int(info["blob"]["hop_us"]),
                    subnets={int(r["i"]): {"name": r["name"], "acc": int(r["acc_bp"]) / 10000,
                                           "latency_us": int(r["latency_us"]), "front": r["front"] == "1"}
                             for r in info["subnets"]})
    uses_load = any(st["load"] for st in steps)

    def apply(st):   # the budget as permille of the hop (the device's unit; 1 permille = hop / 1000)
        dev.command(f"budget set {min(1000, max(1, round(st['budget_us'] * 1000 / ex.hop_us)))}")
        if uses_load:
            dev.command(f"load set {st['load']}")
    dev.command("subnet auto")
    dev.command("battery set 100")            # the experiments are about budget and load alone
    dev.command("stream on")
    dev.feed_reset()
    i = 0
    per_line = max(1, min(8, hop))            # a feed line completes at most one window
    for k, st in enumerate(steps):
        apply(st)
        rows: list[dict] = []
        while len(rows) < windows_per_step:
            rows += dev.feed(np.asarray(X[i:i + per_line]))
            i += per_line
        for r in rows:
            ex.rows.append({"step": k, "seq": int(r["seq"]), "subnet": int(r.get("subnet", -1)),
                            "latency_us": int(r.get("latency_us", 0)) + int(r.get("prepare_us", 0)),
                            "budget_us": int(r["budget_us"]), "over": int(r.get("over", 0)),
                            "skipped": "skipped" in r, "flags": r["flags"], "load": st["load"]})
    if uses_load:
        dev.command("load set 0")
    dev.command("stream off")
    return ex


def summary(ex: Experiment) -> dict:
    """Per step change: windows over budget, windows to settle; accuracy of the chosen subnets
    against the best single front subnet that never violates (its latency scaled by the slowdown
    measured in each step)."""
    import numpy as np
    steps = []
    slow = []
    for k in range(len(ex.steps)):
        rows = [r for r in ex.rows if r["step"] == k]
        over = [r["over"] for r in rows]
        settle = next((j for j in range(len(rows) + 1) if not any(over[j:])), len(rows))
        ran = [r for r in rows if not r["skipped"] and r["subnet"] >= 0]
        f = [r["latency_us"] / ex.subnets[r["subnet"]]["latency_us"] for r in ran if ex.subnets[r["subnet"]]["latency_us"]]
        slow.append(float(np.median(f)) if f else 1.0)
        steps.append({"step": k, "budget_us": ex.steps[k]["budget_us"], "load": ex.steps[k]["load"],
                      "windows": len(rows), "over_budget": int(sum(over)), "settle_windows": settle,
                      "settle_s": settle * ex.hop_us / 1e6,
                      "subnets": sorted({ex.subnets[r["subnet"]]["name"] for r in ran})})
    chosen = [ex.subnets[r["subnet"]]["acc"] for r in ex.rows if not r["skipped"] and r["subnet"] >= 0]
    never = [s for s in ex.subnets.values() if s["front"] and all(
        s["latency_us"] * slow[k] <= ex.steps[k]["budget_us"] for k in range(len(ex.steps)))]
    best = max(never, key=lambda s: s["acc"]) if never else None
    return {"experiment": ex.name, "steps": steps,
            "over_budget_per_change": [s["over_budget"] for s in steps[1:]],
            # every over-budget window that is not the first after a change
            "over_budget_outside_changes": int(sum(r["over"] for r in ex.rows
                                                   if r["step"] == 0 or r is not _first(ex, r["step"]))),
            "accuracy_chosen": float(np.mean(chosen)) if chosen else 0.0,
            "best_single": best["name"] if best else None, "accuracy_best_single": best["acc"] if best else 0.0,
            "slowdown_per_step": slow}


def _first(ex: Experiment, step: int):
    return next(r for r in ex.rows if r["step"] == step)


def plot(ex: Experiment, path, title: str | None = None) -> None:
    """Latency per window over time, coloured by the chosen subnet, with the budget line (the
    paper's runtime figures)."""
    from slimhar.extras import pyplot
    plt = pyplot()
    t = [k * ex.hop_us / 1e6 for k in range(len(ex.rows))]
    names = sorted({r["subnet"] for r in ex.rows if r["subnet"] >= 0}, key=lambda i: ex.subnets[i]["latency_us"])
    cmap = plt.get_cmap("viridis", max(2, len(names)))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.step(t, [r["budget_us"] / 1000 for r in ex.rows], where="mid", color="crimson", lw=1.5, label="budget")
    for j, i in enumerate(names):
        pts = [(tt, r["latency_us"] / 1000) for tt, r in zip(t, ex.rows) if r["subnet"] == i]
        ax.scatter(*zip(*pts), s=22, color=cmap(j), label=ex.subnets[i]["name"], zorder=3)
    over = [(tt, r["latency_us"] / 1000) for tt, r in zip(t, ex.rows) if r["over"]]
    if over:
        ax.scatter(*zip(*over), s=90, facecolors="none", edgecolors="crimson", label="over budget", zorder=4)
    for k in range(1, len(ex.steps)):
        x0 = t[next(n for n, r in enumerate(ex.rows) if r["step"] == k)]
        ax.axvline(x0 - ex.hop_us / 2e6, color="0.7", lw=0.8, ls="--")
        if any(s["load"] for s in ex.steps):
            ax.text(x0, ax.get_ylim()[1] * 0.95, f"load {ex.steps[k]['load']} %", fontsize=7, color="0.4")
    ax.set_xlabel("time (s of stream)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(title or ex.name)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
