import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))   # tests/fixtures.py


import pytest  # noqa: E402


@pytest.fixture(scope="session", params=["cnn", "resnet"])
def exported(request, tmp_path_factory):
    """A trained BasicMotions model of each architecture on a 3 x 3 grid, quantized into a blob
    (shared by the quantize and engine tests)."""
    from slimhar.quantize.export import quantize_checkpoint
    from slimhar.train import checkpoint as ckpt
    from slimhar.train.config import load_config
    from slimhar.train.trainer import train
    cfg = load_config("basicmotions_cnn")
    cfg["model"] = request.param
    cfg["epochs"] = 12
    cfg["widths"] = [0.1, 0.35, 1.0]
    cfg["resolutions"] = [100, 80, 70]
    d = tmp_path_factory.mktemp(request.param)
    res = train(cfg, d / "run", progress=False, log=lambda *_: None)
    rep = quantize_checkpoint(res["checkpoint"], d / "q", split="test", progress=False)
    return {"dir": d / "q", "report": rep, "ckpt": ckpt.load(res["checkpoint"]), "cfg": cfg}


@pytest.fixture(scope="session")
def hapt_blob(tmp_path_factory):
    """A 1-epoch hapt-uci CNN on a 3 x 3 grid with the causal recipe: the UCI-HAR geometry
    (128 x 9, 6 classes) and the preprocessing chain the device runs from raw acc + gyro;
    shared by the engine, input-spec and device tests."""
    from slimhar.quantize.export import quantize_checkpoint
    from slimhar.train.config import load_config
    from slimhar.train.trainer import train
    cfg = load_config("hapt_uci_causal_cnn")
    cfg["epochs"] = 1
    cfg["widths"] = [0.1, 0.55, 1.0]
    cfg["resolutions"] = [128, 112, 96]
    d = tmp_path_factory.mktemp("hapt")
    res = train(cfg, d / "run", progress=False, log=lambda *_: None)
    quantize_checkpoint(res["checkpoint"], d / "q", progress=False)
    return d / "q" / "model.blob", cfg
