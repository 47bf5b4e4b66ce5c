"""``slimhar bench train``: seconds per collaborative step / epoch for a config's model.

Runs the real training step (``collab.collab_step``: 9 forward/backward passes at the paper's
settings) on the config's batch size, on real data or on synthetic windows of the dataset's
shape, after warm-up steps, and reports the median step time, the epoch time it implies,
windows per second, peak memory, and (optionally) the time to BN-calibrate every subnet.
Speed is printed, never asserted.
"""
from __future__ import annotations

import platform
import resource
import statistics
import time

import torch

from slimhar.train import speed
from slimhar.train.bn_calib import calibrate
from slimhar.train.collab import collab_step, draw_subnets
from slimhar.train.models import build_model, channels_at, resize

# (window, axes, classes, training windows) of datasets whose official size is known. A speed-up
# against the paper's code is only ever a ratio of two measurements of one run: `bench paper-code`.
SHAPES = {"uci-har": (128, 9, 6, 7352), "hapt-uci": (128, 9, 6, 5992), "basicmotions": (100, 6, 4, 32)}


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def shape_warmup(model, X, y, width_range, kd_weight: float = 0.5) -> tuple[int, float]:
    """One untimed forward/backward pass for every distinct channel tuple that widths drawn
    from `width_range` can give, at every grid resolution. oneDNN compiles a kernel per GEMM
    shape on first use (bfloat16 GEMMs); a training run pays that once, spread over its first
    epochs, and a short benchmark would otherwise time mostly compilation. Returns (passes,
    seconds). Parameters are not updated; gradients are cleared."""
    lo, hi = width_range
    seen = {}
    for i in range(2001):
        w = lo + (hi - lo) * i / 2000
        seen.setdefault(tuple(channels_at(c, w) for c in model.spec.channels), w)
    t0 = time.perf_counter()
    model.train()
    n = 0
    for w in seen.values():
        model.set_width(w)
        for r in model.spec.resolutions:
            torch.nn.functional.cross_entropy(model(resize(X, r)), y).backward()
            n += 1
    model.zero_grad(set_to_none=True)
    return n, time.perf_counter() - t0


def bench_train(cfg: dict, steps: int = 20, warmup: int = 3, synthetic: bool = True, windows: int | None = None,
                layout: str | None = None, precision: str | None = None, warm_shapes: bool | None = None,
                calib: bool = False, seed: int = 0) -> dict:
    """`layout` / `precision` default to the config's (train/speed.py); `warm_shapes` (see
    shape_warmup) defaults to on for bfloat16, whose GEMM kernels are compiled per shape."""
    ds = cfg["dataset"]["name"]
    if synthetic:
        if ds not in SHAPES:
            raise ValueError(f"synthetic data needs the shape of {ds!r}; known: {', '.join(SHAPES)} (or use real data)")
        T, C, K, n = SHAPES[ds]
        n = windows or n
        g = torch.Generator().manual_seed(seed)
        X = torch.randn(max(n, cfg["batch_size"]), 1, T, C, generator=g)
        y = torch.randint(K, (len(X),), generator=g)
    else:
        from slimhar.train.inputs import load_data, normalization, to_input
        data = load_data(cfg)
        mean, std = normalization(data)
        X, y = to_input(data.train.X, mean, std), torch.from_numpy(data.train.y)
        T, C, K, n = data.window, data.channels, data.classes, len(X)
    torch.manual_seed(seed)
    model = build_model(cfg["model"], T, C, K, cfg["widths"], cfg["resolutions"])
    precision = precision or cfg["precision"]
    layout = speed.configure(model, layout or cfg["layout"], precision)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg["optimizer"]["lr"]))
    bs = int(cfg["batch_size"])
    gd = torch.Generator().manual_seed(seed + 1)
    lo, hi = cfg["width_range"]
    if warm_shapes is None:
        warm_shapes = precision == "bf16"
    warm_passes, warm_s = shape_warmup(model, X[:bs], y[:bs], (lo, hi)) if warm_shapes else (0, 0.0)
    times = []
    for i in range(warmup + steps):
        idx = torch.randint(len(X), (bs,), generator=gd)
        draws = draw_subnets(gd, (lo, hi), model.spec.resolutions, int(cfg["collab"]["random_widths"]))
        t0 = time.perf_counter()
        collab_step(model, opt, X[idx], y[idx], hi, draws, float(cfg["collab"]["kd_weight"]))
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    steps_per_epoch = -(-n // bs)
    res = {"config": cfg["name"], "arch": cfg["model"], "layout": layout, "precision": precision, "batch": bs,
           "shape_warmup_passes": warm_passes, "shape_warmup_s": warm_s,
           "passes_per_step": 2 + int(cfg["collab"]["random_widths"]) + 1, "steps_timed": steps,
           "s_per_step": step, "s_per_step_mean": statistics.fmean(times), "train_windows": n,
           "steps_per_epoch": steps_per_epoch, "s_per_epoch": step * steps_per_epoch,
           "windows_per_s": bs / step, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "machine": machine(), "data": "synthetic" if synthetic else "real"}
    if calib:
        Xc = X[:int(cfg["bn_calibration"]["windows"])]
        t0 = time.perf_counter()
        calibrate(model, Xc, model.spec.subnets, bs)
        res["bn_calibration_s"] = time.perf_counter() - t0
        res["bn_calibration_subnets"] = len(model.spec.subnets)
        res["bn_calibration_windows"] = len(Xc)
    return res
