"""The firmware's subnet policy (firmware/lib/slimhar_policy) in Python, decision for decision:
the same integer arithmetic, so shared test vectors prove both sides choose identically
(``python -m slimhar.tools.policy vectors`` writes firmware/test/test_policy/vectors.h; the
C++ host test replays it, tests/test_policy.py checks the committed file is this code's).

Also the host side of the policy: ``simulate`` runs it over a trace of battery, duty-cycle
budget and CPU load against a blob's subnet table, next to an oracle that knows the whole trace.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

Q16 = 65536
MAX_CANDIDATES = 64
SWITCHED, NOTHING_FITS, CRITICAL, SKIP = 1, 2, 4, 8
FLAG_NAMES = {SWITCHED: "switched", NOTHING_FITS: "nothing-fits", CRITICAL: "critical", SKIP: "skip"}


@dataclass(frozen=True)
class Candidate:
    subnet: int        # index in the blob
    acc_bp: int        # validation accuracy, basis points
    latency_us: int    # start-up latency on the core, no load


@dataclass(frozen=True)
class Config:
    margin_permille: int = 100
    min_dwell: int = 4
    full_pct: int = 50
    critical_pct: int = 10
    low_scale_permille: int = 250
    critical_stride: int = 2


@dataclass(frozen=True)
class Input:
    hop_us: int
    duty_permille: int
    battery_pct: int


@dataclass
class State:
    current: int = -1
    dwell: int = 0
    slowdown_q16: int = Q16
    window: int = 0


@dataclass(frozen=True)
class Decision:
    candidate: int
    subnet: int
    budget_us: int
    predicted_us: int
    stride: int
    flags: int

    def flag_names(self) -> list[str]:
        return [n for b, n in FLAG_NAMES.items() if self.flags & b]


def _predict(c: Candidate, slowdown_q16: int) -> int:
    return min((c.latency_us * slowdown_q16) >> 16, 0xFFFFFFFF)


def _stride(need: int, budget: int) -> int:
    if budget == 0:
        return 255
    return max(1, min(255, -(-need // budget)))


def pareto_front(cands: list[Candidate]) -> list[Candidate]:
    keep = []
    for i, c in enumerate(cands):
        beaten = any(j != i and o.acc_bp >= c.acc_bp and o.latency_us <= c.latency_us
                     and (o.acc_bp > c.acc_bp or o.latency_us < c.latency_us or o.subnet < c.subnet)
                     for j, o in enumerate(cands))
        if not beaten and len(keep) < MAX_CANDIDATES:
            keep.append(c)
    return sorted(keep, key=lambda c: (c.latency_us, c.subnet))


def battery_scale_permille(cfg: Config, b: int) -> int:
    if b >= cfg.full_pct:
        return 1000
    if b <= cfg.critical_pct:
        return cfg.low_scale_permille
    lo = cfg.critical_pct + 1
    span = cfg.full_pct - lo
    if span == 0:
        return 1000
    return cfg.low_scale_permille + (1000 - cfg.low_scale_permille) * (b - lo) // span


def budget_us(cfg: Config, inp: Input) -> int:
    return min(inp.hop_us * inp.duty_permille // 1000 * battery_scale_permille(cfg, inp.battery_pct) // 1000, 0xFFFFFFFF)


def choose(front: list[Candidate], cfg: Config, inp: Input, st: State) -> Decision:
    budget = budget_us(cfg, inp)
    flags, stride, pick = 0, 1, 0
    if inp.battery_pct <= cfg.critical_pct:
        flags |= CRITICAL
        stride = max(_stride(_predict(front[0], st.slowdown_q16), budget), cfg.critical_stride)
    else:
        best = -1
        for i, c in enumerate(front):
            if _predict(c, st.slowdown_q16) <= budget:
                best = i
        if best < 0:
            flags |= NOTHING_FITS
            stride = _stride(_predict(front[0], st.slowdown_q16), budget)
            best = 0
        pick = best
        cur = st.current
        if 0 <= cur < len(front) and best > cur:
            pick = cur
            if st.dwell >= cfg.min_dwell:
                room = budget * (1000 - cfg.margin_permille) // 1000
                for i in range(best, cur, -1):
                    if _predict(front[i], st.slowdown_q16) <= room:
                        pick = i
                        break
    if stride > 1 and st.window % stride != 0:
        flags |= SKIP
    if pick != st.current:
        if st.current >= 0:
            flags |= SWITCHED
        st.current, st.dwell = pick, 0
    elif st.dwell < 0xFFFF:
        st.dwell += 1
    st.window += 1
    return Decision(pick, front[pick].subnet, budget, _predict(front[pick], st.slowdown_q16), stride, flags)


def observe(ran: Candidate, observed_us: int, st: State) -> None:
    if ran.latency_us == 0:
        return
    s = (observed_us << 16) // ran.latency_us
    st.slowdown_q16 = max(Q16 // 4, min(64 * Q16, s))


# -- simulation -------------------------------------------------------------------------------
@dataclass
class Trace:
    """Piecewise-constant conditions: each segment lasts `seconds` with a battery level (%), a
    duty-cycle budget (share of each hop) and a CPU load (share of the core other work takes)."""
    name: str
    hop_s: float
    segments: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, path) -> "Trace":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            segs = [dict(seconds=float(s["seconds"]), battery=float(s["battery"]), duty=float(s["duty"]),
                         load=float(s.get("load", 0.0))) for s in d["segments"]]
            t = cls(str(d.get("name", path.stem)), float(d["hop_s"]), segs)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a policy trace ({type(e).__name__}: {e}); "
                             "expected {\"hop_s\": S, \"segments\": [{\"seconds\", \"battery\", \"duty\", \"load\"}, ...]}") from None
        bad = [i for i, s in enumerate(segs) if not (s["seconds"] > 0 and 0 <= s["battery"] <= 100
                                                     and 0 < s["duty"] <= 1 and 0 <= s["load"] < 1)]
        if t.hop_s <= 0 or not segs or bad:
            raise ValueError(f"{path}: segment {bad[0] if bad else 0} out of range "
                             "(seconds > 0, 0 <= battery <= 100, 0 < duty <= 1, 0 <= load < 1; hop_s > 0)")
        return t

    def windows(self):
        """(time, battery, duty, load, segment index) of every window; battery drains linearly
        within a segment towards the next segment's level."""
        t = 0.0
        for k, s in enumerate(self.segments):
            nxt = self.segments[k + 1]["battery"] if k + 1 < len(self.segments) else s["battery"]
            n = max(1, round(s["seconds"] / self.hop_s))
            for i in range(n):
                yield t + i * self.hop_s, s["battery"] + (nxt - s["battery"]) * i / n, s["duty"], s["load"], k
            t += n * self.hop_s


def simulate(cands: list[Candidate], trace: Trace, cfg: Config = Config()) -> dict:
    """The policy over a trace: latency actually taken = start-up latency / (1 - load), fed back
    as the device does. The oracle knows every window's true load and picks the most accurate
    subnet that fits, with no hysteresis and no feedback delay."""
    front = pareto_front(cands)
    st = State()
    hop_us = round(trace.hop_s * 1e6)
    rows = []
    prev_seg = None
    for t, bat, duty, load, seg in trace.windows():
        inp = Input(hop_us, round(duty * 1000), round(bat))
        d = choose(front, cfg, inp, st)
        c = front[d.candidate]
        actual = round(c.latency_us / (1.0 - load))
        ran = not d.flags & SKIP
        if ran:
            observe(c, actual, st)
        # the oracle: most accurate subnet whose true latency fits; none: the fastest, skipped
        fits = [o for o in front if round(o.latency_us / (1.0 - load)) <= d.budget_us]
        oracle = fits[-1] if fits else None
        rows.append(dict(t=t, battery=bat, duty=duty, load=load, budget_us=d.budget_us, subnet=d.subnet,
                         acc_bp=c.acc_bp if ran else None, latency_us=actual if ran else None,
                         over=ran and actual > d.budget_us, step=seg != prev_seg,   # the start counts: load unknown
                         flags=d.flag_names(), oracle_subnet=oracle.subnet if oracle else None,
                         oracle_acc_bp=oracle.acc_bp if oracle else None))
        prev_seg = seg
    # windows over budget right after a change of conditions (the step itself and the next one)
    # are the feedback's unavoidable cost; any other is a violation
    after_step = set()
    for i, r in enumerate(rows):
        if r["step"]:
            after_step.update((i, i + 1))
    over = [i for i, r in enumerate(rows) if r["over"]]
    ran_acc = [r["acc_bp"] for r in rows if r["acc_bp"] is not None]
    oracle_acc = [r["oracle_acc_bp"] for r in rows if r["oracle_acc_bp"] is not None]
    steps = sum(r["step"] for r in rows)
    per_step = []
    for i, r in enumerate(rows):
        if r["step"]:
            j = i
            while j < len(rows) and rows[j]["over"]:
                j += 1
            per_step.append(j - i)
    return dict(trace=trace.name, windows=len(rows), ran=len(ran_acc), switches=sum("switched" in r["flags"] for r in rows),
                accuracy_pct=sum(ran_acc) / max(1, len(ran_acc)) / 100, oracle_accuracy_pct=sum(oracle_acc) / max(1, len(oracle_acc)) / 100,
                over_budget=len(over), over_budget_outside_steps=len([i for i in over if i not in after_step]),
                steps=steps, max_over_per_step=max(per_step, default=0), rows=rows,
                front=[dict(subnet=c.subnet, acc_bp=c.acc_bp, latency_us=c.latency_us) for c in front])


def candidates_from_blob(blob, latency_us: dict[int, int] | None = None, us_per_mac: float = 1.0 / 64) -> list[Candidate]:
    """The device's table from a blob: VALIDATION int8 accuracy as stored (the device decides by
    it), latency measured (latency_us[subnet]) or estimated as MACs x instructions per MAC at a
    64 MHz core (~1 instruction per MAC: `slimhar bench engine`), labelled as an estimate."""
    return [Candidate(i, round(s.int8_acc * 10000), (latency_us or {}).get(i) or max(1, round(s.macs * us_per_mac)))
            for i, s in enumerate(blob.subnets)]


def plot(res: dict, path) -> None:
    from slimhar.extras import pyplot
    plt = pyplot()
    rows = res["rows"]
    t = [r["t"] for r in rows]
    fig, ax = plt.subplots(4, 1, figsize=(10, 8), sharex=True)
    ax[0].plot(t, [r["battery"] for r in rows], color="tab:green", label="battery %")
    ax[0].plot(t, [100 * r["load"] for r in rows], color="tab:red", label="CPU load %")
    ax[0].set_ylabel("%")
    ax[0].legend(loc="upper right", fontsize=8)
    ms = [r["budget_us"] / 1000 for r in rows]
    ax[1].step(t, ms, where="post", color="k", lw=1, label="budget")
    lat = [(r["t"], r["latency_us"] / 1000) for r in rows if r["latency_us"] is not None]
    over = [(r["t"], r["latency_us"] / 1000) for r in rows if r["over"]]
    ax[1].scatter([a for a, _ in lat], [b for _, b in lat], s=6, c=[r["subnet"] for r in rows if r["latency_us"] is not None],
                  cmap="viridis", label="latency (colour: subnet)")
    if over:
        ax[1].scatter([a for a, _ in over], [b for _, b in over], s=30, facecolors="none", edgecolors="r", label="over budget")
    ax[1].set_ylabel("ms per window")
    ax[1].legend(loc="upper right", fontsize=8)
    ax[2].step(t, [r["subnet"] for r in rows], where="post", label="policy")
    ax[2].step(t, [r["oracle_subnet"] if r["oracle_subnet"] is not None else float("nan") for r in rows], where="post",
               ls="--", alpha=0.7, label="oracle")
    ax[2].set_ylabel("subnet index")
    ax[2].legend(loc="upper right", fontsize=8)
    ax[3].plot(t, [r["acc_bp"] / 100 if r["acc_bp"] is not None else float("nan") for r in rows], label="policy")
    ax[3].plot(t, [r["oracle_acc_bp"] / 100 if r["oracle_acc_bp"] is not None else float("nan") for r in rows],
               ls="--", alpha=0.7, label="oracle")
    ax[3].set_ylabel("val. accuracy %")
    ax[3].set_xlabel("time (s)")
    ax[3].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"policy on trace '{res['trace']}'\n{res['accuracy_pct']:.2f} % vs oracle {res['oracle_accuracy_pct']:.2f} %, "
                 f"{res['over_budget']} windows over budget ({res['over_budget_outside_steps']} outside load / budget steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- shared test vectors ----------------------------------------------------------------------
def vector_cases(seed: int = 7, n_cases: int = 24, steps: int = 60):
    """Random tables, configurations and input / latency sequences, deterministic per seed."""
    import random
    rng = random.Random(seed)
    for k in range(n_cases):
        n = rng.randint(1, 12)
        cands = [Candidate(i, rng.randint(5000, 9999), rng.randint(200, 80000)) for i in range(n)]
        if k % 5 == 0 and n > 1:   # duplicates and ties
            cands[1] = replace(cands[0], subnet=1)
        cfg = Config(rng.choice([0, 50, 100, 200]), rng.choice([0, 1, 4, 8]), rng.choice([50, 60]),
                     rng.choice([5, 10, 20]), rng.choice([250, 500]), rng.choice([1, 2, 3]))
        seq = []
        for _ in range(steps):
            inp = Input(rng.choice([500000, 1280000, 2560000]), rng.randint(1, 1000), rng.randint(0, 100))
            seq.append((inp, rng.randint(0, 400000)))
        yield cands, cfg, seq


def write_vectors(path) -> None:
    """A C header of cases and the decisions this module makes, replayed by the C++ test."""
    cases, cand_rows, seq_rows = [], [], []
    for cands, cfg, seq in vector_cases():
        front = pareto_front(cands)
        st = State()
        c0, s0 = len(cand_rows), len(seq_rows)
        cand_rows += [(c.subnet, c.acc_bp, c.latency_us) for c in cands]
        for inp, observed in seq:
            d = choose(front, cfg, inp, st)
            if not d.flags & SKIP:
                observe(front[d.candidate], observed, st)
            seq_rows.append((inp.hop_us, inp.duty_permille, inp.battery_pct, observed, d.subnet, d.budget_us,
                             d.predicted_us, d.stride, d.flags, st.slowdown_q16))
        cases.append((c0, len(cands), len(front), s0, len(seq), cfg.margin_permille, cfg.min_dwell, cfg.full_pct,
                      cfg.critical_pct, cfg.low_scale_permille, cfg.critical_stride))

    def rows(name, ctype, data):
        body = ",\n".join("  {" + ", ".join(str(v) for v in r) + "}" for r in data)
        return f"static const {ctype} {name}[][{len(data[0])}] = {{\n{body}\n}};\n"
    text = ("// Generated by `python -m slimhar.tools.policy vectors` (tools/policy.py, the Python mirror of\n"
            "// the policy): cases and the decisions Python makes; test_policy replays them in C++. Do not edit.\n"
            "#pragma once\n#include <cstdint>\n"
            "// case: first candidate, candidates, Pareto front size, first step, steps, config (margin, dwell, full,\n"
            "//       critical, low scale, critical stride)\n"
            + rows("kCases", "uint32_t", cases)
            + "// candidate: subnet, accuracy (bp), latency (us)\n" + rows("kCandidates", "uint32_t", cand_rows)
            + "// step: hop us, duty permille, battery %, observed us | subnet, budget us, predicted us, stride, flags,\n"
              "//       slowdown after the feedback (Q16)\n" + rows("kSteps", "uint32_t", seq_rows))
    Path(path).write_text(text)


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "vectors":
        write_vectors(sys.argv[2])
        print(sys.argv[2])
    else:
        print("usage: python -m slimhar.tools.policy vectors OUT.h", file=sys.stderr)
        raise SystemExit(2)
