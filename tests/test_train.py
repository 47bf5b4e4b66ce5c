"""Training end to end on real data (BasicMotions), determinism, and resume after a kill."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from slimhar.train import checkpoint as ckpt
from slimhar.train.config import load_config
from slimhar.train.trainer import train

SLIMHAR = [sys.executable, "-m", "slimhar"]


def run_cli(*args, check=True, timeout=300):
    p = subprocess.run(SLIMHAR + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"slimhar {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def test_basicmotions_cnn_trains_and_every_subnet_is_evaluated(tmp_path):
    out = run_cli("train", "--config", "basicmotions_cnn", "--out", tmp_path / "run")
    assert "validation accuracy" in out.stdout   # speed is measured by `slimhar bench train`, never asserted
    js, png = tmp_path / "eval.json", tmp_path / "pareto.png"
    ev = run_cli("eval", tmp_path / "run" / "checkpoint.pt", "--split", "test", "--json", js, "--plot", png)
    assert "Pareto front" in ev.stdout
    rows = json.loads(js.read_text())["rows"]
    cfg = load_config("basicmotions_cnn")
    assert {(r["width"], r["resolution"]) for r in rows} == {(w, r) for w in cfg["widths"] for r in cfg["resolutions"]}
    full = next(r for r in rows if r["width"] == 1.0 and r["resolution"] == 100)
    assert full["accuracy"] >= 0.85, full
    assert full["macs"] > max(r["macs"] for r in rows if r["width"] < 1.0)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _quick_cfg(epochs):
    cfg = load_config("basicmotions_cnn")
    cfg["epochs"] = epochs
    return cfg


def test_same_config_and_seed_give_the_same_checkpoint_bytes(tmp_path):
    a = train(_quick_cfg(3), tmp_path / "a", progress=False, log=lambda *_: None)
    b = train(_quick_cfg(3), tmp_path / "b", progress=False, log=lambda *_: None)
    assert Path(a["checkpoint"]).read_bytes() == Path(b["checkpoint"]).read_bytes()
    cfg = _quick_cfg(3)
    cfg["seed"] = 1
    c = train(cfg, tmp_path / "c", progress=False, log=lambda *_: None)
    assert Path(c["checkpoint"]).read_bytes() != Path(a["checkpoint"]).read_bytes()


def _epoch_of(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception:
        return 0


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    epochs = 40
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(SLIMHAR + ["train", "--config", "basicmotions_cnn", "--out", str(run_dir),
                                       "--epochs", str(epochs)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = run_dir / "checkpoint.pt"
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if ck.is_file() and _epoch_of(ck) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "training ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    k = _epoch_of(ck)
    assert 2 <= k < epochs
    assert not ckpt.load(ck)["bn_calibrated"]
    run_cli("train", "--config", "basicmotions_cnn", "--out", run_dir, "--epochs", epochs, "--resume")
    run_cli("train", "--config", "basicmotions_cnn", "--out", tmp_path / "straight", "--epochs", epochs)
    a, b = ckpt.load(ck), ckpt.load(tmp_path / "straight" / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == epochs and a["bn_calibrated"]
    for name, t in b["model"].items():
        assert torch.equal(a["model"][name], t), name
    assert a["history"] == b["history"]
    assert (run_dir / "checkpoint.pt").read_bytes() == (tmp_path / "straight" / "checkpoint.pt").read_bytes()


def test_existing_run_is_not_overwritten_and_bad_inputs_are_clear(tmp_path):
    train(_quick_cfg(1), tmp_path / "r", progress=False, log=lambda *_: None)
    p = run_cli("train", "--config", "basicmotions_cnn", "--out", tmp_path / "r", check=False)
    assert p.returncode == 1 and "exists: pass --resume" in p.stderr and "Traceback" not in p.stderr
    p = run_cli("train", "--config", "no_such_config", "--out", tmp_path / "x", check=False)
    assert p.returncode == 1 and "bundled:" in p.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    p = run_cli("eval", bad, check=False)
    assert p.returncode == 1 and "not a readable checkpoint" in p.stderr and "Traceback" not in p.stderr
    cfgf = tmp_path / "c.yaml"
    cfgf.write_text("dataset: {name: basicmotions}\nwidths: [1.0]\nresolutions: [100]\nbatchsize: 3\n")
    p = run_cli("train", "--config", cfgf, "--out", tmp_path / "y", check=False)
    assert p.returncode == 1 and "unknown config key 'batchsize'" in p.stderr
    # a grid that does not fit the data's windows or the network's strides: one line, nothing written
    for grid, says in (("resolutions: [120, 100]", "must be descending and start at the window 100"),
                       ("resolutions: [100, 3]", "resolution 3 is too short for 3 stride-3 blocks")):
        cfgf.write_text(f"dataset: {{name: basicmotions}}\nwidths: [0.5, 1.0]\n{grid}\nepochs: 1\n")
        p = run_cli("train", "--config", cfgf, "--out", tmp_path / "z", check=False)
        assert p.returncode == 1 and p.stderr.count("\n") == 1 and says in p.stderr, p.stderr
        assert "does not fit basicmotions's 100-sample windows x 6 channels" in p.stderr
        assert not (tmp_path / "z" / "checkpoint.pt").exists()
    # a checkpoint whose weights belong to another model: one line naming what does not fit
    import torch
    ck = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    ck["spec"] = {**ck["spec"], "channels": [32, 64, 128]}
    other = tmp_path / "other.pt"
    torch.save(ck, other)
    for cmd in (["eval", other], ["quantize", other, "--out", tmp_path / "q", "--no-baseline"]):
        p = run_cli(*cmd, check=False)
        assert p.returncode == 1 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1, (cmd, p.stderr)
        assert "weights do not fit the cnn model its spec describes" in p.stderr and "of another shape" in p.stderr
    # a checkpoint written by another format version: one line naming both versions
    ck = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    ck["version"] = 99
    torch.save(ck, other)
    p = run_cli("eval", other, check=False)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "checkpoint version 99 (this slimhar reads 1)" in p.stderr


def test_data_info_cli():
    p = run_cli("data", "info", "basicmotions")
    assert "4 classes" in p.stdout and "Badminton" in p.stdout
    js = json.loads(run_cli("data", "info", "basicmotions", "--json").stdout)
    assert js["splits"]["test"]["windows"] == 40


def test_importing_slimhar_leaves_the_process_alone():
    """A library must not change its host process on import: no environment variable set by
    importing the package and the modules the CLI uses (the fused layout's process settings are
    made when that layout is chosen, train/speed.configure)."""
    import subprocess
    import sys
    code = ("import os; before = dict(os.environ); import slimhar, slimhar.cli, slimhar.train.trainer, "
            "slimhar.quantize.export, slimhar.tools.device; "
            "changed = {k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}; "
            "print(sorted(changed)); raise SystemExit(1 if changed else 0)")
    env = {k: v for k, v in __import__("os").environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]


def test_logging_test_accuracy_leaves_training_unchanged(tmp_path):
    """--log-test (the paper's protocol, reported beside our figures) only evaluates: the weights
    and BN tables are bit-identical to a run without it, and every validated epoch has the record."""
    a = train(_quick_cfg(2), tmp_path / "a", progress=False, log=lambda *_: None)
    b = train(_quick_cfg(2), tmp_path / "b", progress=False, log=lambda *_: None, log_test=True)
    sa, sb = ckpt.load(a["checkpoint"])["model"], ckpt.load(b["checkpoint"])["model"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    recs = [json.loads(line) for line in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()][:2]
    assert all(set(r["test_paper_protocol"]) == set(r["val"]) for r in recs)
    assert all(0 <= v <= 1 for r in recs for v in r["test_paper_protocol"].values())
    assert "test_paper_protocol" not in (tmp_path / "a" / "train_log.jsonl").read_text()
