"""Our final-epoch accuracy beside what the paper's protocol would report on the same run.

The paper's code evaluates on the TEST split after every epoch and reports the best epoch.
``slimhar train --log-test`` records exactly that number per epoch (width 1.0 at the full
window, and the narrowest subnet), after the validation's BN calibration, without using it; this
reads the run's ``train_log.jsonl`` and prints, per run:

- ours: the final epoch's test accuracy (what docs/results.md reports as the run's figure);
- paper protocol: the best test accuracy over epochs and its epoch (labelled as test-selected);
- the honest alternative: the test accuracy at the epoch with the best VALIDATION accuracy;
- the curves' shape: mean test accuracy per third of the schedule and the final training
  loss / accuracy (over-fitting shows as test falling while training accuracy saturates);
- how noisy one epoch's figure is: the mean and the standard deviation of the test accuracy
  over the last 10 epochs (a ranking of two runs by single epochs is only as good as that).

    python -m slimhar.benchmarks.paper_protocol runs/pp/hapt_uci_cnn_bf16 runs/pp/hapt_uci_resnet_bf16 \
        --per-subject --json docs/assets/paper_protocol.json --plot docs/assets/paper_protocol.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_run(run: Path) -> dict:
    recs = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines() if line.strip()]
    ep = [r for r in recs if "epoch" in r]
    if not ep or "test_paper_protocol" not in ep[-1]:
        raise ValueError(f"{run}: no per-epoch test records (train it with --log-test)")
    key = next(iter(ep[-1]["test_paper_protocol"]))             # the widest subnet at the full window
    test = [r["test_paper_protocol"][key] for r in ep if "test_paper_protocol" in r]
    val = [r["val"][key] for r in ep if "test_paper_protocol" in r]
    epochs = [r["epoch"] for r in ep if "test_paper_protocol" in r]
    best_t = max(range(len(test)), key=lambda i: (test[i], -i))
    best_v = max(range(len(val)), key=lambda i: (val[i], -i))
    third = max(1, len(test) // 3)
    thirds = [sum(test[i:i + third]) / len(test[i:i + third]) for i in range(0, 3 * third, third)]
    last = test[-10:]
    mean_last = sum(last) / len(last)
    sd_last = (sum((t - mean_last) ** 2 for t in last) / max(1, len(last) - 1)) ** 0.5
    return {"run": str(run), "subnet": key, "epochs": epochs, "test": test, "val": val,
            "final_test": test[-1], "final_epoch": epochs[-1],
            "paper_best_test": test[best_t], "paper_best_epoch": epochs[best_t],
            "val_best_epoch": epochs[best_v], "test_at_val_best": test[best_v],
            "test_mean_by_third": thirds, "test_last10_mean": mean_last, "test_last10_sd": sd_last,
            "final_train_loss": ep[-1]["loss"], "final_train_acc": ep[-1]["train_acc"]}


def per_subject(run: Path, data_dir=None) -> dict:
    """The final checkpoint's widest subnet at the full window, on the validation and the test
    split, subject by subject (which subjects a difference between two runs comes from)."""
    import numpy as np
    import torch

    from slimhar.train import checkpoint as ckpt
    from slimhar.train.evaluate import predict
    from slimhar.train.inputs import load_data, to_input
    ck = ckpt.load(run / "checkpoint.pt")
    model = ckpt.build_model(ck)
    data = load_data(ck["config"], data_dir)
    w, r = max(model.spec.subnets)
    out = {}
    for name in ("val", "test"):
        sp = data.splits()[name]
        if sp.subject is None:
            raise ValueError(f"{run}: the {name} split has no subjects")
        X = to_input(sp.X, ck["dataset"]["norm_mean"], ck["dataset"]["norm_std"])
        hit = (predict(model, X, w, r) == torch.from_numpy(sp.y)).numpy()
        out[name] = {int(k): [int(hit[sp.subject == k].sum()), int((sp.subject == k).sum())]
                     for k in np.unique(sp.subject)}
    return out


def subject_table(names: list[str], subj: list[dict]) -> str:
    lines = [f"{'split':<5} {'subject':>7} {'windows':>7} " + " ".join(f"{n[:24]:>24}" for n in names)]
    for split in ("val", "test"):
        for k in sorted(subj[0][split]):
            n = subj[0][split][k][1]
            lines.append(f"{split:<5} {k:>7} {n:>7} " + " ".join(f"{100 * s[split][k][0] / n:>24.2f}" for s in subj))
    lines.append("accuracy (%) of each run's final checkpoint, widest subnet at the full window, per subject")
    return "\n".join(lines)


def table(runs: list[dict]) -> str:
    lines = [f"{'run':<34} {'subnet':<9} {'ours: final':>11} {'paper: best test (epoch)':>25} "
             f"{'at best val (epoch)':>20} {'test mean per third':>22} {'last 10: mean+-sd':>17} {'train acc':>9}"]
    for r in runs:
        th = "/".join(f"{100 * t:.2f}" for t in r["test_mean_by_third"])
        lines.append(f"{Path(r['run']).name:<34} {r['subnet']:<9} {100 * r['final_test']:>11.2f} "
                     f"{100 * r['paper_best_test']:>17.2f} ({r['paper_best_epoch']:>3d}) "
                     f"{100 * r['test_at_val_best']:>12.2f} ({r['val_best_epoch']:>3d}) {th:>22} "
                     f"{100 * r['test_last10_mean']:>11.2f}+-{100 * r['test_last10_sd']:.2f} "
                     f"{100 * r['final_train_acc']:>9.2f}")
    lines.append("test accuracy (%) of the widest subnet at the full window after each epoch's BN calibration; "
                 "'paper' picks the epoch BY THE TEST SET (the paper's protocol), never used for a choice here")
    return "\n".join(lines)


def plot(runs: list[dict], path: Path) -> None:
    from slimhar.extras import pyplot
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=120)
    for r in runs:
        name = Path(r["run"]).name
        line, = ax.plot(r["epochs"], [100 * t for t in r["test"]], lw=1.2, label=f"{name} test")
        ax.plot(r["epochs"], [100 * v for v in r["val"]], lw=0.8, ls=":", color=line.get_color(), label=f"{name} val")
        ax.scatter([r["paper_best_epoch"]], [100 * r["paper_best_test"]], color=line.get_color(), marker="^", zorder=3)
    ax.set_ylim(90, 100)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%), width 1.0, full window")
    ax.set_title("per-epoch accuracy (triangle: the epoch the paper's protocol would report)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m slimhar.benchmarks.paper_protocol", description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="Run folders trained with --log-test.")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--per-subject", action="store_true",
                    help="Also evaluate each run's final checkpoint subject by subject (val and test).")
    ap.add_argument("--data-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    try:
        runs = [read_run(r) for r in a.runs]
        subj = [per_subject(r, a.data_dir) for r in a.runs] if a.per_subject else None
    except (OSError, ValueError, KeyError) as e:
        print(f"paper_protocol: {e}", file=sys.stderr)
        return 1
    print(table(runs))
    if subj:
        print()
        print(subject_table([Path(r["run"]).name for r in runs], subj))
        for r, su in zip(runs, subj):
            r["per_subject"] = {sp: {str(k): v for k, v in d.items()} for sp, d in su.items()}
    if a.json:
        a.json.write_text(json.dumps(runs, indent=1))
    if a.plot:
        plot(runs, a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
