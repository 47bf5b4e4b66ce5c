"""Two processes on this machine (torchrun, gloo) against one process with the same global
batch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from slimhar.train import checkpoint as ckpt
from slimhar.train import speed, trainer
from slimhar.train.bn_calib import calibrate
from slimhar.train.config import load_config
from slimhar.train.evaluate import accuracy
from slimhar.train.models.slim_ops import SlimBN

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


BASE = [sys.executable, "-m", "slimhar", "train", "--config", "basicmotions_cnn", "--layout", "cl"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two epochs in one process and in two (`--nproc 2`), plus a two-process run that stops
    after epoch 1 and is resumed with `--nproc 2 --resume` to epoch 2. Multi-process training
    runs the cl layout (global-batch BatchNorm); the single process is pinned to it too, so
    the comparisons are of the distribution alone (fused vs cl is tests/test_fused.py's)."""
    d = tmp_path_factory.mktemp("ddp")
    for out, extra in (("one", ["--epochs", "2"]), ("two", ["--epochs", "2", "--nproc", "2"]),
                       ("resumed", ["--epochs", "1", "--nproc", "2"]),
                       ("resumed", ["--epochs", "2", "--nproc", "2", "--resume"])):
        p = subprocess.run(BASE + extra + ["--out", str(d / out)], capture_output=True, text=True)
        assert p.returncode == 0, (out, extra, p.stderr[-3000:])
    return d


def test_nproc_2_training_matches_one_process(runs):
    """A few steps end to end through `slimhar train --nproc 2`. Losses and accuracies agree to
    float noise. Weights agree within Adam's bound: Adam divides each gradient by its own
    running RMS, so float-noise differences in near-zero gradients can move such an element by
    up to ~lr per step -- hence atol = 2 * lr * steps and a tight check on the median."""
    cfg = load_config("basicmotions_cnn")
    a, b = ckpt.load(runs / "one" / "checkpoint.pt"), ckpt.load(runs / "two" / "checkpoint.pt")
    for ha, hb in zip(a["history"], b["history"]):
        assert abs(ha["loss"] - hb["loss"]) < 1e-5 and ha["train_acc"] == hb["train_acc"]
    steps = 2 * 2                          # 32 training windows / batch 16, 2 epochs
    bound = 2 * float(cfg["optimizer"]["lr"]) * steps
    diffs = []
    for k, v in a["model"].items():
        if ".stat_" in k:
            continue                       # calibrated from the weights: the next test
        d = (v - b["model"][k]).abs()
        assert d.max() <= bound, (k, d.max())
        diffs.append(d.flatten())
    assert torch.cat(diffs).median() < 1e-6
    assert (runs / "two" / "train_log.jsonl").is_file()


def test_nproc_2_calibration_and_evaluation_equal_one_process(runs):
    """BN calibration and evaluation of a two-process run give the numbers one process gets
    from the same weights: every subnet's statistics in the checkpoint rank 0 wrote, and the
    last epoch's validation accuracies in its history."""
    ck = ckpt.load(runs / "two" / "checkpoint.pt")
    assert ck["bn_calibrated"]
    cfg = ck["config"]
    model = ckpt.build_model(ck)
    speed.configure(model, "cl", "fp32")
    data = trainer.load_data(cfg)
    mean, std = ck["dataset"]["norm_mean"], ck["dataset"]["norm_std"]
    Xtr = trainer.to_input(data.train.X, mean, std)
    for b in model.modules():          # forget the stored statistics: recomputed below
        if isinstance(b, SlimBN):
            b.stat_mean.zero_()
            b.stat_var.fill_(1.0)
    calibrate(model, trainer.calib_set(cfg, Xtr), model.spec.subnets, int(cfg["batch_size"]))
    stats = {k: v for k, v in model.state_dict().items() if ".stat_" in k}
    assert stats
    for k, v in stats.items():
        torch.testing.assert_close(v, ck["model"][k], rtol=1e-5, atol=1e-6, msg=k)
    Xval, yval = trainer.to_input(data.val.X, mean, std), torch.from_numpy(data.val.y)
    val = ck["history"][-1]["val"]
    assert len(val) == 2                # the widest at T and the narrowest at the lowest T'
    for key, acc in val.items():
        w, r = key.split("@")
        assert accuracy(model, Xval, yval, float(w), int(r)) == acc, key


def test_nproc_2_resume_equals_uninterrupted_run(runs):
    """A two-process run stopped after epoch 1 and resumed with `--nproc 2 --resume` ends with
    the checkpoint of the uninterrupted two-process run: same weights, statistics, optimizer
    state and history (the same two gloo processes sum in the same order)."""
    a, b = ckpt.load(runs / "resumed" / "checkpoint.pt"), ckpt.load(runs / "two" / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == 2 and a["history"] == b["history"]
    for k, v in b["model"].items():
        assert torch.equal(a["model"][k], v), k
    assert (runs / "resumed" / "checkpoint.pt").read_bytes() == (runs / "two" / "checkpoint.pt").read_bytes()
