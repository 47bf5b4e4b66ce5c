"""`slimhar bench paper-code`: what can be checked without the paper's code, which is not part
of slimhar and cannot be cloned here (no network). The timed path itself -- the checkout's
train() in a fresh process -- was run by hand against a checkout (docs/results.md section 2)."""
import subprocess
import sys

import numpy as np
import pytest

from slimhar.benchmarks.paper_code import PaperCodeError, check_checkout, paper_app, write_synthetic
from slimhar.train.config import load_config


def test_config_maps_to_the_papers_app():
    assert paper_app(load_config("uci_cnn")) == "uci"
    assert paper_app(load_config("uci_resnet")) == "resnet_uci"
    with pytest.raises(PaperCodeError, match="no paper-code app for dataset 'basicmotions'"):
        paper_app(load_config("basicmotions_cnn"))


def test_not_a_checkout_gets_a_clear_error(tmp_path):
    with pytest.raises(PaperCodeError, match="no such directory"):
        check_checkout(tmp_path / "absent", "uci")
    (tmp_path / "train.py").write_text("")
    with pytest.raises(PaperCodeError, match=r"not a checkout of the paper's code: missing ComputePostBN.py, "
                                             r"models/slimmable_ops.py, .*apps/uci.yml"):
        check_checkout(tmp_path, "uci")
    r = subprocess.run([sys.executable, "-m", "slimhar", "bench", "paper-code", "--repo", str(tmp_path),
                        "--config", "uci_cnn", "--rounds", "1"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "not a checkout of the paper's code: missing ComputePostBN.py" in r.stderr
    assert "Traceback" not in r.stderr


def test_synthetic_data_is_what_the_papers_dataset_class_reads(tmp_path):
    """x_train.npy [windows, T, C] float32 and y_train.npy int64 in [0, classes), the same
    bytes for the same seed."""
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        write_synthetic(tmp_path / d, 50, 128, 9, 6, seed=3)
    x, y = np.load(tmp_path / "a" / "x_train.npy"), np.load(tmp_path / "a" / "y_train.npy")
    assert x.shape == (50, 128, 9) and x.dtype == np.float32
    assert y.shape == (50,) and y.dtype == np.int64 and 0 <= y.min() and y.max() < 6
    for f in ("x_train.npy", "y_train.npy"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_torchvision_standins_satisfy_the_papers_imports():
    """The paper's utils import torchvision names they never use; without torchvision the
    stand-ins make exactly those imports work (fresh process: they go into sys.modules)."""
    code = ("from slimhar.benchmarks.paper_code import _install_torchvision_standins as s\n"
            "import importlib.util\n"
            "had = importlib.util.find_spec('torchvision') is not None\n"
            "assert s() is (not had)\n"
            "from torchvision import datasets, transforms\n"
            "import torchvision.transforms.functional as F\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
