"""A user with their own dataset and config, both outside the package: an .npz of real windows
(BasicMotions' smartwatch recordings, re-saved in slimhar's generic format) and a YAML file in
a folder of their own. train, eval, quantize, blob verify and blob check-engine all work on it
-- the blob carries the training config, so nothing looks the data up among bundled configs."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "slimhar", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=900)


@pytest.mark.skipif(shutil.which("g++") is None or not (REPO / ".pio-venv" / "bin" / "pio").exists(),
                    reason="check-engine needs `make setup` (PlatformIO, g++)")
def test_every_command_on_a_users_own_npz_and_config(tmp_path):
    from slimhar.train.data.basicmotions import read_arff
    from slimhar.train.data.carrier import BASICMOTIONS_TEST, BASICMOTIONS_TRAIN, carried_file
    (Xtr, ytr), (Xte, yte) = (read_arff(carried_file(f)) for f in (BASICMOTIONS_TRAIN, BASICMOTIONS_TEST))
    names = sorted(set(ytr))
    X = np.concatenate([Xtr, Xte]).transpose(0, 2, 1).astype(np.float32)       # [N, T, C]
    y = np.array([names.index(v) for v in ytr + yte], np.int64)
    mine = tmp_path / "mine"
    mine.mkdir()
    np.savez(mine / "watch.npz", X=X, y=y, class_names=np.array(names), sample_rate_hz=np.float64(10.0),
             channel_names=np.array(["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]))
    (mine / "my_cnn.yaml").write_text(
        f"name: my_cnn\ndataset: {{name: npz, path: {mine / 'watch.npz'}}}\nmodel: cnn\n"
        "widths: [0.25, 1.0]\nwidth_range: [0.25, 1.0]\nresolutions: [100, 80]\nbatch_size: 16\nepochs: 3\n"
        "optimizer: {name: adam, lr: 2.0e-3}\nbn_calibration: {windows: 16}\nseed: 0\n")
    work = tmp_path / "elsewhere"            # not the repo: nothing found by accident
    work.mkdir()
    r = _cli("train", "--config", mine / "my_cnn.yaml", "--out", work / "run", cwd=work)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _cli("eval", work / "run" / "checkpoint.pt", cwd=work)
    assert r.returncode == 0 and "Pareto front" in r.stdout, r.stderr[-2000:]
    r = _cli("quantize", work / "run" / "checkpoint.pt", "--out", work / "q", "--no-baseline", "--verify", 2, cwd=work)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _cli("blob", "verify", work / "q" / "model.blob", cwd=work)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _cli("blob", "check-engine", work / "q" / "model.blob", "--kinds", "host", cwd=work)
    assert r.returncode == 0 and "all bit-identical" in r.stdout, r.stdout[-1500:] + r.stderr[-2000:]
    # the data moved away: one line that says what to pass
    (mine / "watch.npz").rename(mine / "moved.npz")
    r = _cli("blob", "check-engine", work / "q" / "model.blob", "--kinds", "host", cwd=work)
    assert r.returncode == 1 and "cannot load the data it was trained on" in r.stderr and "--config FILE" in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
