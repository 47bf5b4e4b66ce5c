"""The whole mission with no hardware (`make demo`): train the hapt-uci CNN on the causal recipe,
evaluate every subnet, quantize a grid into one shared-weight blob, build the firmware, boot it
in QEMU, stream a real held-out recording through it -- raw acc + gyro, the device running the
preprocessing chain -- while the battery drains and the budget and the load change, then the
paper's two runtime experiments, and a summary.

    python -m slimhar.tools.mission [--full] [--out runs/demo]

--full: the paper's 150-epoch schedule (~16 min with bf16) instead of a few epochs.
"""
from __future__ import annotations

import argparse
import zlib
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WIDTHS = "0.1,0.25,0.4,0.55,0.7,0.85,1.0"
RESOLUTIONS = "128,112,96"
# the mission's segments: (windows, battery at the start -> end, budget permille, load %)
SEGMENTS = [(12, 100, 100, 1000, 0), (12, 100, 90, 400, 0), (12, 90, 80, 400, 30), (12, 80, 60, 150, 60),
            (12, 60, 35, 150, 0), (12, 35, 12, 1000, 0), (8, 9, 5, 1000, 0)]


class Stages:
    def __init__(self, n: int):
        self.n, self.k, self.t0, self.times = n, 0, time.monotonic(), []

    def __call__(self, what: str, short: str):
        self.k += 1
        self.times.append((short, time.monotonic()))
        print(f"\n== [{self.k}/{self.n}] {what} (at {time.monotonic() - self.t0:.0f} s) ==", flush=True)

    def table(self):
        end = time.monotonic()
        ts = [t for _, t in self.times] + [end]
        return [(w, ts[i + 1] - ts[i]) for i, (w, _) in enumerate(self.times)], end - self.t0


def slimhar(*args) -> None:
    r = subprocess.run([sys.executable, "-m", "slimhar", *map(str, args)], cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(f"demo: `slimhar {' '.join(map(str, args))}` failed (exit {r.returncode})")


def window_labels(lab, window: int, hop: int) -> dict:
    """end sample -> class index of windows whose every label is one activity 1..6 (the
    training rule), as the device's windows end."""
    out = {}
    for end in range(window, len(lab) + 1, hop):
        w = lab[end - window:end]
        if 1 <= w[0] <= 6 and (w == w[0]).all():
            out[end] = int(w[0]) - 1
    return out


def stream_mission(dev, X, info) -> tuple[list[dict], list[dict]]:
    import numpy as np
    hop = int(info["blob"]["hop"])
    dev.command("subnet auto")
    dev.command("stream on")
    dev.feed_reset()
    i, rows, trace = 0, [], []
    per_line = max(1, min(8, hop))
    for n, b0, b1, duty, load in SEGMENTS:
        dev.command(f"budget set {duty}")
        dev.command(f"load set {load}")
        for k in range(n):
            bat = round(b0 + (b1 - b0) * k / max(1, n - 1))
            dev.command(f"battery set {bat}")
            got = []
            while not got:
                if i + per_line > len(X):
                    raise SystemExit("demo: the recording ran out before the mission did")
                got = dev.feed(np.asarray(X[i:i + per_line]))
                i += per_line
            for r in got:
                rows.append(r)
                trace.append({"battery": bat, "duty": duty, "load": load})
    dev.command("load set 0")
    return rows, trace


def plot_mission(rows, trace, subnets, hop_us, path) -> None:
    from slimhar.extras import pyplot
    plt = pyplot()
    t = [k * hop_us / 1e6 for k in range(len(rows))]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    a1.step(t, [int(r["budget_us"]) / 1000 for r in rows], where="mid", color="crimson", label="budget")
    ran = [(tt, r) for tt, r in zip(t, rows) if "skipped" not in r]
    names = sorted({int(r["subnet"]) for _, r in ran}, key=lambda i: subnets[i]["latency_us"])
    cmap = plt.get_cmap("viridis", max(2, len(names)))
    for j, i in enumerate(names):
        pts = [(tt, (int(r["latency_us"]) + int(r["prepare_us"])) / 1000) for tt, r in ran if int(r["subnet"]) == i]
        a1.scatter(*zip(*pts), s=16, color=cmap(j), label=subnets[i]["name"], zorder=3)
    sk = [tt for tt, r in zip(t, rows) if "skipped" in r]
    if sk:
        a1.scatter(sk, [0] * len(sk), marker="x", color="0.5", s=14, label="skipped")
    a1.set_yscale("symlog", linthresh=1)
    a1.set_ylabel("latency / budget (ms)")
    a1.legend(fontsize=6, ncol=4, loc="upper right")
    a2.plot(t, [x["battery"] for x in trace], label="battery %")
    a2.plot(t, [x["load"] for x in trace], label="load %")
    a2.plot(t, [x["duty"] / 10 for x in trace], label="duty budget (% of hop)")
    a2.set_xlabel("time (s of stream)")
    a2.legend(fontsize=7, loc="upper right")
    fig.suptitle("the mission on the emulated board: battery, budget and load over a held-out recording")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _earlier_run(path: Path, epochs: int) -> bool | None:
    """A demo run again: None when `path` holds no run (train it), False when it holds this
    demo's finished run (the same seeded run: reuse it), True when it holds this demo's run
    stopped before its end (resume it). A run of another length is not this demo's: one line
    saying so, and the demo stops."""
    if not path.is_file():
        return None
    from slimhar.train import checkpoint as ckpt
    try:
        ck = ckpt.load(path)
    except ckpt.CheckpointError as e:
        sys.exit(f"demo: {e}: remove {path.parent.parent} or pass another --out")
    if ck["config"]["epochs"] != epochs:
        sys.exit(f"demo: {path} holds a {ck['config']['epochs']}-epoch run, not this demo's {epochs} epochs: "
                 f"remove {path.parent.parent} or pass another --out")
    if int(ck["epoch"]) >= epochs and ck.get("bn_calibrated"):
        print(f"reusing the finished {epochs}-epoch run in {path.parent} (the same seeds give the same weights)")
        return False
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m slimhar.tools.mission")
    ap.add_argument("--full", action="store_true", help="the paper's 150-epoch schedule")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", default="runs/demo")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    st = Stages(8)
    st("the data: hapt-uci, raw UCI HAPT recordings from a registry package", "data")
    slimhar("data", "info", "hapt-uci")
    from slimhar.train.config import load_config
    full_epochs = load_config("hapt_uci_causal_cnn")["epochs"]     # the paper's schedule
    st(f"train the slimmable CNN on the causal recipe ({f'{full_epochs} epochs, the paper' if a.full else f'{a.epochs} epochs'})", "train")
    train_args = ["--config", "hapt_uci_causal_cnn", "--out", out / "run", "--precision", "bf16",
                  *([] if a.full else ["--epochs", a.epochs])]
    resume = _earlier_run(out / "run" / "checkpoint.pt", full_epochs if a.full else a.epochs)
    if resume is None:
        slimhar("train", *train_args)
    elif resume:
        slimhar("train", *train_args, "--resume")        # a demo stopped during training goes on
    st("evaluate every subnet of the grid (test split), Pareto plot", "eval")
    slimhar("eval", out / "run" / "checkpoint.pt", "--json", out / "eval.json", "--plot", out / "pareto.png")
    st(f"quantize widths {WIDTHS} x T' {RESOLUTIONS} into one shared-weight int8 blob", "quantize")
    slimhar("quantize", out / "run" / "checkpoint.pt", "--out", out / "int8", "--widths", WIDTHS,
            "--resolutions", RESOLUTIONS, "--no-baseline", "--verify", 4)
    slimhar("blob", "info", out / "int8" / "model.blob")
    st("build the firmware with the blob embedded (PlatformIO, offline)", "build")
    from slimhar.quantize.blob import Blob
    from slimhar.tools import device as dv
    from slimhar.tools import runtime
    from slimhar.benchmarks.engine import elf_sizes
    blob_path = out / "int8" / "model.blob"
    blob = Blob.open(blob_path)
    elf = dv.build_firmware(blob_path)
    sizes = elf_sizes(elf)
    print(f"firmware {elf}: flash {sizes['flash_bytes']:,} B (blob {len(blob.data):,} B), static RAM {sizes['ram_bytes']:,} B")
    st("boot it in QEMU (mps2-an386, Cortex-M4F) and stream a held-out recording through the mission", "mission")
    subject, X, lab = dv.held_out_recording(0, 0, None)     # raw acc + gyro, float32
    with dv.Qemu(elf) as q, dv.Device(q.url, timeout=120) as dev:
        dev.wait_ready()
        info = dev.info()
        subnets = {int(r["i"]): {"name": r["name"], "acc": int(r["acc_bp"]) / 10000, "latency_us": int(r["latency_us"]),
                                 "macs": int(r["macs"]), "front": r["front"] == "1"} for r in info["subnets"]}
        print(f"booted: {info['device']['board']}, {len(subnets)} subnets, {sum(s['front'] for s in subnets.values())} on "
              f"the policy's front; feed {info['input']['raw']} -> chain {info['input']['chain']}")
        rows, trace = stream_mission(dev, X, info)
        stats = dev.stats()
        st("the paper's runtime experiments on the device (budget steps, load steps)", "runtime")
        Y = dv.held_out_recording(3, 0, None)[1]
        exps = {}
        for key, fn in (("budget", runtime.budget_steps), ("load", runtime.load_steps)):
            ex = fn(dev, Y, windows_per_step=8)
            runtime.plot(ex, out / f"runtime_{key}.png", f"{ex.name} on the emulated board")
            exps[key] = runtime.summary(ex)
    st("summary", "summary")
    truth = window_labels(lab, blob.window, blob.spec.hop)
    ran = [r for r in rows if "skipped" not in r]
    scored = [r for r in ran if int(r["end"]) in truth]
    # the host pipeline on the same windows (the chain's float32 mirror, TFLM on the subnet the
    # device ran): every class and every int8 input must agree
    from slimhar.quantize.oracle import Tflm

    refs, tf, agree = {}, {}, 0
    fed = X[:int(rows[-1]["end"])]
    M = dv.model_channels(blob, fed)
    for r in ran:
        k = int(r["subnet"])
        if k not in refs:
            refs[k] = dict(dv.reference_inputs(blob, k, fed, channels=M))
            tf[k] = Tflm(blob.unpack(blob.subnets[k]))
        xq = refs[k][int(r["end"])]
        agree += (zlib.crc32(xq.tobytes()) == int(r["in_crc"], 16)
                  and int(tf[k].run(xq[None, :, :, None])[0].argmax()) == int(r["class"]))
    correct = sum(int(r["class"]) == truth[int(r["end"])] for r in scored)
    plot_mission(rows, trace, subnets, int(info["blob"]["hop_us"]), out / "mission.png")
    count = {}
    for r in ran:
        count[int(r["subnet"])] = count.get(int(r["subnet"]), 0) + 1
    print(f"{'subnet':<10} {'MACs':>11} {'val acc %':>9} {'latency ms':>10} {'front':>5} {'windows':>7}")
    for i, s in subnets.items():
        print(f"{s['name']:<10} {s['macs']:>11,} {100 * s['acc']:>9.2f} {s['latency_us'] / 1000:>10.2f} "
              f"{'*' if s['front'] else '':>5} {count.get(i, 0):>7}")
    over = sum(r.get("over") == "1" for r in ran)
    summary = {
        "subject": int(subject), "windows": len(rows), "ran": len(ran), "skipped": len(rows) - len(ran),
        "switches": int(stats["switches"]), "over_budget": over, "drops": int(stats["drops"]),
        "stream_accuracy": correct / len(scored) if scored else None, "scored_windows": len(scored),
        "host_agreement": agree,
        "flash_bytes": sizes["flash_bytes"], "ram_bytes": sizes["ram_bytes"], "blob_bytes": len(blob.data),
        "runtime": exps, "per_subnet_windows": {subnets[i]["name"]: n for i, n in count.items()},
    }
    stages, total = st.table()
    summary["stages_s"] = {w: round(t, 1) for w, t in stages}
    (out / "mission.json").write_text(json.dumps(summary, indent=1))
    print(f"\nmission: {len(rows)} windows of held-out subject {subject} ({len(ran)} ran, {len(rows) - len(ran)} skipped "
          f"at critical battery), {summary['switches']} switches, {over} over budget, {summary['drops']} dropped")
    print(f"host pipeline (float32 chain mirror + TFLM) on the same windows: {agree} of {len(ran)} identical "
          "(int8 input and class)")
    if scored:
        print(f"accuracy on the stream: {100 * correct / len(scored):.2f} % of {len(scored)} labelled windows "
              "(windows spanning two activities or unlabelled samples are not scored)")
    for key, s in exps.items():
        print(f"{s['experiment']}: over budget per change {s['over_budget_per_change']}, {s['over_budget_outside_changes']} "
              f"elsewhere; chosen subnets {100 * s['accuracy_chosen']:.2f} % vs best single never-violating "
              f"{s['best_single']} {100 * s['accuracy_best_single']:.2f} %")
    print(f"flash {sizes['flash_bytes']:,} B of 1 MiB (blob {len(blob.data):,} B), static RAM {sizes['ram_bytes']:,} B of 256 KiB")
    print("plots: " + ", ".join(str(out / p) for p in ("pareto.png", "mission.png", "runtime_budget.png", "runtime_load.png")))
    print("stages: " + ", ".join(f"{w} {t:.0f} s" for w, t in stages))
    print(f"total {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
