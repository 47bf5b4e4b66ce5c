"""`slimhar quantize` as a user runs it, and the TF-converter baseline it compares against."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from slimhar.quantize.blob import Blob
from slimhar.quantize.oracle import Tflm, quantize_input
from slimhar.train.inputs import load_data, to_input
from slimhar.train.models import resize
from slimhar.train.models.reference import dense_subnet


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "slimhar", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


# the session's BasicMotions CNN export only (conftest.exported), not its ResNet twin
pytestmark = pytest.mark.parametrize("exported", ["cnn"], indirect=True)


def test_quantize_command_writes_what_it_prints(exported, tmp_path):
    """Two widths x two resolutions, report on test, model.blob = the Pareto subset: the printed
    table, report.json, the full and the selected blob agree with each other and with TFLM."""
    ck = exported["dir"].parent / "run" / "checkpoint.pt"
    out = tmp_path / "q"
    r = _cli("quantize", ck, "--out", out, "--widths", "0.35,1.0", "--resolutions", "100,80", "--verify", 2,
             "--split", "test", "--subnets", "pareto")
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((out / "report.json").read_text())
    assert rep["split"] == "test" and rep["subnets"] == 4 and rep["windows"] == 40
    names = [row["name"] for row in rep["rows"]]
    assert names == ["w035_t100", "w035_t80", "w100_t100", "w100_t80"]
    for row in rep["rows"]:       # every subnet's printed line carries the report's figures
        assert f"{row['name']:<12} {row['macs']:>11,d} {100 * row['float_acc']:>8.2f} {100 * row['int8_acc']:>8.2f}" \
            in r.stdout
    full, sel = Blob.open(out / "model.full.blob"), Blob.open(out / "model.blob")
    assert [s.name for s in full.subnets] == names
    chosen = [s.name for s in sel.subnets]
    assert chosen and set(chosen) <= set(names) and f"model.blob: {len(chosen)} of 4 subnets (pareto: " in r.stdout
    # the blob's table is validation accuracy, and the test figure in the report is TFLM's on test
    data = load_data(exported["ckpt"]["config"])
    mean, std = exported["ckpt"]["dataset"]["norm_mean"], exported["ckpt"]["dataset"]["norm_std"]
    for s in full.subnets:
        row = rep["rows"][names.index(s.name)]
        assert s.int8_acc == pytest.approx(row["val_int8_acc"], abs=1e-6)
        t = Tflm(full.unpack(s))
        x = resize(to_input(data.test.X, mean, std), s.resolution).permute(0, 2, 3, 1).numpy()
        acc = (t.run(quantize_input(x, t.in_scale, t.in_zp)).argmax(1) == data.test.y).mean()
        assert acc == pytest.approx(row["int8_acc"], abs=1e-6), s.name


def test_quantize_bad_grid_is_one_line(exported, tmp_path):
    ck = exported["dir"].parent / "run" / "checkpoint.pt"
    for args, says in ((["--widths", "0.2"], "width 0.2 is not in the checkpoint's grid"),
                       (["--resolutions", "abc"], "resolution 'abc' is not a number"),
                       (["--verify", "0"], "--verify must be at least 1")):
        r = _cli("quantize", ck, "--out", tmp_path / "q", *args)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
        assert not (tmp_path / "q" / "model.blob").exists()


def test_baseline_converter_model_is_the_same_float_subnet(exported):
    """The TF-converter baseline starts from a Keras rebuild of the float subnet (BN folded): it
    must compute what the torch subnet computes, and its int8 .tflite must run in TFLM with the
    converter's own int8 input/output and land close to float accuracy."""
    from slimhar.quantize.baseline import convert, keras_subnet
    ck = exported["ckpt"]
    from slimhar.train.checkpoint import build_model
    model = build_model(ck)
    data = load_data(ck["config"])
    mean, std = ck["dataset"]["norm_mean"], ck["dataset"]["norm_std"]
    for w, r in ((1.0, 100), (0.35, 80)):
        dense = dense_subnet(model, w, r).eval()
        x = resize(to_input(data.test.X, mean, std), r)
        nhwc = x.permute(0, 2, 3, 1).contiguous().numpy()
        with torch.no_grad():
            ref = dense(x).numpy()
        km = keras_subnet(dense, r, ck["spec"]["axes"])
        got = np.asarray(km(nhwc))
        assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max()), (w, r)
        tfl = convert(dense, r, ck["spec"]["axes"], nhwc[:16])
        t = Tflm(tfl)
        assert t.in_scale > 0
        q = t.run(quantize_input(nhwc, t.in_scale, t.in_zp))
        assert q.dtype == np.int8
        acc, facc = (q.argmax(1) == data.test.y).mean(), (ref.argmax(1) == data.test.y).mean()
        assert acc >= facc - 0.1, (w, r, acc, facc)            # 4 of 40 windows
