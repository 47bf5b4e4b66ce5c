"""``slimhar bench paper-code``: the paper's own training code, timed on this machine in the
same run as slimhar's, so that the speed-up is a ratio of two measurements taken minutes apart
rather than of one measurement against a figure from another day (these shared machines drift
by 10-20 % from one half hour to the next).

The paper's code is NOT part of slimhar: the user points ``--repo`` at a checkout of the
authors' repository (Collaborative_HAR: ``train.py``, ``models/``, ``utils/``, ``apps/``).
What runs is that checkout's own ``train()`` (its 9-pass collaborative step, its model and
slimmable layers, its DataLoader with the per-window resize transform, its end-of-epoch check
of all 19 widths) for whole epochs, with two adaptations and nothing else:

* CUDA calls removed, as in the issue's reference measurement: ``Tensor.cuda`` and
  ``Module.cuda`` return their object unchanged;
* its data: synthetic windows of the dataset's shape and size (seeded), written as the
  ``x_train.npy`` / ``y_train.npy`` its ``HAR`` dataset class reads, instead of its
  hard-coded path. Speed does not depend on the values.

Its ``utils`` import torchvision for names they never use; where torchvision is not installed
(it cannot be here: PyPI's wheels are CUDA builds for another torch), empty stand-in modules
satisfy those imports, and the result says so.

Each measurement runs in a fresh process (``python -m slimhar.benchmarks.paper_code``): the
checkout's top-level packages are named ``utils``, ``models`` and ``train``, and its imports
read ``sys.argv`` and the working directory.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# the checkout's app (apps/<name>.yml) for a slimhar config's dataset and model
PAPER_APPS = {("uci-har", "cnn"): "uci", ("uci-har", "resnet"): "resnet_uci"}
REQUIRED = ("train.py", "ComputePostBN.py", "models/slimmable_ops.py", "utils/config.py", "utils/config_parser.py",
            "utils/datasets.py", "utils/transforms.py", "utils/setlogger.py", "utils/model_profiling.py")


class PaperCodeError(ValueError):
    """The checkout or the config cannot be benchmarked; the message says why."""


def paper_app(cfg: dict) -> str:
    key = (cfg["dataset"]["name"], cfg["model"])
    if key not in PAPER_APPS:
        raise PaperCodeError(f"no paper-code app for dataset {key[0]!r} / model {key[1]!r} "
                             f"(known: {', '.join(f'{d}/{m}' for d, m in sorted(PAPER_APPS))})")
    return PAPER_APPS[key]


def check_checkout(repo: Path, app: str) -> None:
    """Clear error when `repo` is not a checkout of the paper's code with `app`."""
    if not repo.is_dir():
        raise PaperCodeError(f"{repo}: no such directory (a checkout of the paper's Collaborative_HAR repository)")
    missing = [p for p in REQUIRED + (f"apps/{app}.yml",) if not (repo / p).is_file()]
    if missing:
        raise PaperCodeError(f"{repo} is not a checkout of the paper's code: missing {', '.join(missing)}")


def _install_torchvision_standins() -> bool:
    """Empty modules for the torchvision names the checkout's utils import and never use.
    Returns True when they were needed."""
    import importlib.util
    import types
    if importlib.util.find_spec("torchvision") is not None:
        return False
    tv = types.ModuleType("torchvision")
    names = ("torchvision.datasets", "torchvision.transforms", "torchvision.transforms.functional")
    mods = {n: types.ModuleType(n) for n in names}
    tv.datasets, tv.transforms = mods["torchvision.datasets"], mods["torchvision.transforms"]
    tv.transforms.functional = mods["torchvision.transforms.functional"]
    sys.modules.update({"torchvision": tv, **mods})
    return True


def write_synthetic(dest: Path, windows: int, window: int, axes: int, classes: int, seed: int) -> None:
    """x_train.npy [windows, window, axes] float32 and y_train.npy [windows] int64: the files
    the checkout's HAR dataset class loads."""
    import numpy as np
    rng = np.random.default_rng(seed)
    np.save(dest / "x_train.npy", rng.standard_normal((windows, window, axes)).astype(np.float32))
    np.save(dest / "y_train.npy", rng.integers(0, classes, windows).astype(np.int64))


def run_epochs(repo: Path, app: str, window: int, axes: int, classes: int, windows: int, epochs: int,
               calib: bool = False, seed: int = 0) -> dict:
    """In THIS process (a fresh one: see the module docstring): the checkout's train() for
    `epochs` whole epochs, then (`calib`) its post-training BN calibration of every
    (width, resolution) subnet as its test() runs it (ComputePostBN.ComputeBN over the
    training loader), without test()'s evaluation. Returns seconds and what was adapted."""
    import importlib
    import logging
    import random
    import time

    import numpy as np
    import torch

    check_checkout(repo, app)
    standins = _install_torchvision_standins()
    torch.Tensor.cuda = lambda self, *a, **k: self          # CUDA calls removed
    torch.nn.Module.cuda = lambda self, *a, **k: self
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic(Path(tmp), windows, window, axes, classes, seed)
        argv = sys.argv
        os.chdir(repo)                                      # its config reads apps/<app>.yml relative to here
        sys.path.insert(0, str(repo))
        try:
            sys.argv = ["train.py", "--model_name", app]    # read by its utils/config_parser at import
            config = importlib.import_module("utils.config")
            sys.argv = ["train.py"]                         # its train.py parses only --save
            paper = importlib.import_module("train")
            datasets = importlib.import_module("utils.datasets")
            transforms = importlib.import_module("utils.transforms")
        finally:
            sys.argv = argv
        flags = config.FLAGS
        if list(flags.image_size) != [window, axes]:
            raise PaperCodeError(f"apps/{app}.yml is for windows {flags.image_size}, not [{window}, {axes}]")
        log = logging.getLogger("slimhar.paper_code")       # its train() logs 19 lines an epoch through `logger`
        log.addHandler(logging.NullHandler())
        log.propagate = False
        paper.logger = log
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        data = datasets.HAR(tmp, "train", transforms.InputList_3(flags.resolution_list))
        loader = torch.utils.data.DataLoader(dataset=data, batch_size=flags.batch_size, shuffle=True)
        model = torch.nn.DataParallel(paper.get_model())     # as its train_val_test() wraps it
        criterion = torch.nn.CrossEntropyLoss()
        optimizer = paper.get_optimizer(model)
        times = []
        for e in range(epochs):
            paper.adjust_learning_rate(optimizer, e)
            t0 = time.perf_counter()
            paper.train(e, loader, model, criterion, optimizer, None)
            times.append(time.perf_counter() - t0)
        res = {"app": app, "batch": int(flags.batch_size), "windows": windows, "steps_per_epoch": len(loader),
               "s_per_epoch": times, "torch_threads": torch.get_num_threads(), "torchvision_standins": standins}
        if calib:
            post_bn = importlib.import_module("ComputePostBN")
            t0 = time.perf_counter()
            n = 0
            for width in sorted(flags.width_mult_list, reverse=True):
                for resolution in flags.resolution_list:
                    model.apply(lambda m: setattr(m, "width_mult", width))   # noqa: B023 - applied at once
                    model = post_bn.ComputeBN(model, loader, resolution)
                    n += 1
            res["bn_calibration_s"] = time.perf_counter() - t0
            res["bn_calibration_subnets"] = n
    return res


def _subprocess_json(args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        proc = subprocess.run([sys.executable, *args, "--json", str(out)], capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise PaperCodeError(f"`{' '.join(args)}` failed (exit {proc.returncode}):\n{tail}")
        return json.loads(out.read_text())


def compare(repo: Path, config: str, rounds: int = 3, epochs: int = 1, precisions=("bf16", "fp32"), steps: int = 40,
            calib: bool = False, progress=None) -> dict:
    """`rounds` times, alternately: the paper's code for `epochs` epochs, then `slimhar bench
    train` (fused layout) in each precision, every one in a fresh process. Returns each round's
    seconds per epoch and the speed-ups measured within it. `calib`: each round also times
    both sides' BN calibration of every subnet (each with its own calibration set size)."""
    from slimhar.train.config import load_config

    from .train_speed import SHAPES
    cfg = load_config(config)
    app = paper_app(cfg)
    check_checkout(repo, app)
    window, axes, classes, windows = SHAPES[cfg["dataset"]["name"]]
    out = {"config": cfg["name"], "arch": cfg["model"], "paper_app": app, "windows": windows, "rounds": []}
    for i in range(rounds):
        if progress:
            progress(f"round {i + 1}/{rounds}: the paper's code, {epochs} epoch(s)")
        p = _subprocess_json(["-m", "slimhar.benchmarks.paper_code", "--repo", str(repo), "--app", app, "--window",
                              str(window), "--axes", str(axes), "--classes", str(classes), "--windows", str(windows),
                              "--epochs", str(epochs)] + (["--calib"] if calib else []))
        row = {"paper_s_per_epoch": statistics.median(p["s_per_epoch"]), "paper_epochs": p["s_per_epoch"],
               "torchvision_standins": p["torchvision_standins"]}
        if calib:
            if progress:
                progress(f"round {i + 1}/{rounds}: slimhar, BN calibration")
            c = _subprocess_json(["-m", "slimhar", "bench", "train", "--config", config, "--steps", "3", "--calib"])
            row.update(paper_calib_s=p["bn_calibration_s"],
                       paper_calib_windows=9 * p["batch"],          # its ComputeBN runs batches 0-8
                       slimhar_calib_s=c["bn_calibration_s"], slimhar_calib_windows=c["bn_calibration_windows"],
                       calib_subnets=c["bn_calibration_subnets"])
        for prec in precisions:
            if progress:
                progress(f"round {i + 1}/{rounds}: slimhar, fused {prec}, {steps} steps")
            r = _subprocess_json(["-m", "slimhar", "bench", "train", "--config", config, "--layout", "fused",
                                  "--precision", prec, "--steps", str(steps)])
            row[f"slimhar_{prec}_s_per_epoch"] = r["s_per_epoch"]
            row[f"speedup_{prec}"] = row["paper_s_per_epoch"] / r["s_per_epoch"]
        out["rounds"].append(row)
    for prec in precisions:
        s = [r[f"speedup_{prec}"] for r in out["rounds"]]
        out[f"speedup_{prec}"] = {"median": statistics.median(s), "min": min(s), "max": max(s)}
    return out


def main(argv=None) -> None:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m slimhar.benchmarks.paper_code",
                                 description="Time whole epochs of the paper's own train() (one process per call).")
    ap.add_argument("--repo", required=True, type=Path)
    ap.add_argument("--app", required=True)
    ap.add_argument("--window", type=int, required=True)
    ap.add_argument("--axes", type=int, required=True)
    ap.add_argument("--classes", type=int, required=True)
    ap.add_argument("--windows", type=int, required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--calib", action="store_true")
    ap.add_argument("--json", type=Path, required=True)
    a = ap.parse_args(argv)
    r = run_epochs(a.repo.resolve(), a.app, a.window, a.axes, a.classes, a.windows, a.epochs, calib=a.calib)
    a.json.write_text(json.dumps(r))


if __name__ == "__main__":
    main()
