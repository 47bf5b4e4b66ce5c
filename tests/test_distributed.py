"""Two processes on this machine (torchrun, gloo) against one process with the same global
batch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from slimhar.train.config import load_config

PROBE = Path(__file__).parent / "helpers" / "ddp_grad_probe.py"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]


def test_two_process_gradients_equal_one_process(tmp_path):
    """SyncBatchNorm-style global statistics + DDP averaging: the accumulated gradients of a
    9-pass step equal the single-process ones within float tolerance."""
    subprocess.run([sys.executable, str(PROBE), str(tmp_path / "one.pt")], check=True, capture_output=True)
    p = subprocess.run(TORCHRUN + [str(PROBE), str(tmp_path / "two.pt")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    a, b = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-6, msg=k)


def test_nproc_2_training_matches_one_process(tmp_path):
    """A few steps end to end through `slimhar train --nproc 2`. Losses and accuracies agree to
    float noise. Weights agree within Adam's bound: Adam divides each gradient by its own
    running RMS, so float-noise differences in near-zero gradients can move such an element by
    up to ~lr per step -- hence atol = 2 * lr * steps and a tight check on the median."""
    cfg = load_config("basicmotions_cnn")
    # multi-process training runs the cl layout (global-batch BatchNorm); the single process
    # is pinned to it too, so the comparison is of the distribution alone (fused vs cl is
    # tests/test_fused.py's job)
    base = [sys.executable, "-m", "slimhar", "train", "--config", "basicmotions_cnn", "--epochs", "2", "--layout", "cl"]
    subprocess.run(base + ["--out", str(tmp_path / "one")], check=True, capture_output=True)
    p = subprocess.run(base + ["--out", str(tmp_path / "two"), "--nproc", "2"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    for ha, hb in zip(a["history"], b["history"]):
        assert abs(ha["loss"] - hb["loss"]) < 1e-5 and ha["train_acc"] == hb["train_acc"]
    steps = 2 * 2                          # 32 training windows / batch 16, 2 epochs
    bound = 2 * float(cfg["optimizer"]["lr"]) * steps
    diffs = []
    for k, v in a["model"].items():
        if ".stat_" in k:
            continue                       # calibrated from the weights, compared through them
        d = (v - b["model"][k]).abs()
        assert d.max() <= bound, (k, d.max())
        diffs.append(d.flatten())
    assert torch.cat(diffs).median() < 1e-6
    assert (tmp_path / "two" / "train_log.jsonl").is_file()
