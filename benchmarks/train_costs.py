"""``slimhar bench train-costs``: where a fused training step's time goes, beyond the total
that ``slimhar bench train`` prints (docs/results.md section 2 quotes these numbers).

Three probes, each printed, none asserted:

* fixed cost per step: the full 9-pass collaborative step on a batch of ONE window, float32
  (no oneDNN kernel compilation), i.e. Python, autograd and operator dispatch;
* fused-kernel time of one pass (forward + backward, full resolution, the config's batch) at a
  few widths: the C++ kernels walk the same rows at every width;
* the weight-gradient GEMMs ``X^T dZ`` of every GEMM conv at full resolution and a few widths,
  timed as training runs them (X stored row-major, read transposed), with ``X^T`` already
  stored contiguously, and with torch making that copy first.
"""
from __future__ import annotations

import statistics
import time

import torch

from slimhar.train import speed
from slimhar.train.collab import collab_step, draw_subnets
from slimhar.train.models import build_model, fused
from slimhar.train.models.fused import chunk_geometry


def _median_s(fn, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def fixed_step_cost(model, cfg: dict, steps: int = 30) -> float:
    """Median seconds of a collaborative step on one window (float32 fused)."""
    speed.configure(model, "auto", "fp32")
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    spec = model.spec
    x, y = torch.randn(1, 1, spec.window, spec.axes), torch.zeros(1, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    kd = cfg["collab"]["kd_weight"]
    draws = [draw_subnets(gen, cfg["width_range"], spec.resolutions, cfg["collab"]["random_widths"])
             for _ in range(steps + 10)]
    it = iter(draws)
    return _median_s(lambda: collab_step(model, opt, x, y, 1.0, next(it), kd), steps, warmup=10)


class _TimedKernels:
    """The fused extension with every call's wall time added up (the Python around the calls
    looks it up through fused.extension())."""

    def __init__(self, ext):
        self.ext, self.seconds = ext, 0.0

    def __getattr__(self, name):
        fn = getattr(self.ext, name)

        def timed(*args):
            t = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.seconds += time.perf_counter() - t
        return timed


def kernel_ms_per_pass(model, batch: int, widths, precision: str, reps: int = 5) -> dict[float, float]:
    """Milliseconds in the fused kernels for one forward + backward pass, per width."""
    speed.configure(model, "fused", precision)
    spec = model.spec
    x = torch.randn(batch, 1, spec.window, spec.axes)
    timed = _TimedKernels(fused.extension())
    original, fused.extension = fused.extension, lambda: timed
    out = {}
    try:
        for w in widths:
            model.set_width(w)

            def one_pass():
                model(x).square().mean().backward()
            for _ in range(2):
                one_pass()
            timed.seconds = 0.0
            for _ in range(reps):
                one_pass()
            out[w] = timed.seconds / reps * 1e3
    finally:
        fused.extension = original
        model.zero_grad(set_to_none=True)
    return out


def wgrad_shapes(model, batch: int, width: float) -> list[tuple[int, int, int]]:
    """(M, K, N) of every weight-gradient GEMM X^T dZ of one pass at full resolution: X [K, M]
    (K = rows of all sequences), dZ [K, N]. The first block's 1-channel convs are not GEMMs."""
    spec = model.spec
    shapes, L, ci = [], spec.window, 1
    rows = batch * spec.axes
    for i, (blk, o) in enumerate(zip(model.blocks, model.block_channels(width))):
        c = blk.conv1
        L, m, n = chunk_geometry(L, c.k, c.stride, c.pad)
        branches = 2 if blk.residual else 1                  # conv1 + shortcut: one GEMM
        if i > 0:
            shapes.append((c.stride * ci, rows * n, m * branches * o))
        if blk.residual:
            shapes.append((o, rows * L, 3 * o))              # conv2 on the unpadded rows
        ci = o
    return shapes


def wgrad_gemm_ms(model, batch: int, widths, dtype: torch.dtype, reps: int = 10) -> dict[str, float]:
    """Total milliseconds of the weight-gradient GEMMs over `widths`, three ways."""
    tot = {"as trained (X read transposed)": 0.0, "X^T stored contiguously": 0.0, "torch copy + contiguous": 0.0}
    for w in widths:
        for M, K, N in wgrad_shapes(model, batch, w):
            X, dZ = torch.randn(K, M).to(dtype), torch.randn(K, N).to(dtype)
            XT = X.t().contiguous()
            tot["as trained (X read transposed)"] += _median_s(lambda: X.t() @ dZ, reps) * 1e3
            tot["X^T stored contiguously"] += _median_s(lambda: XT @ dZ, reps) * 1e3
            tot["torch copy + contiguous"] += _median_s(lambda: X.t().contiguous() @ dZ, reps) * 1e3
    return tot


def probe_costs(cfg: dict, widths=(0.1, 0.5, 1.0), precision: str = "bf16", seed: int = 0) -> dict:
    from .train_speed import SHAPES
    if cfg["dataset"]["name"] not in SHAPES:
        raise ValueError(f"no known shapes for dataset {cfg['dataset']['name']!r} (known: {sorted(SHAPES)})")
    window, axes, classes, _ = SHAPES[cfg["dataset"]["name"]]
    torch.manual_seed(seed)
    model = build_model(cfg["model"], window, axes, classes, cfg["widths"], cfg["resolutions"])
    batch = cfg["batch_size"]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    gemm_widths = (0.25, 0.5, 0.75, 1.0)
    return {"config": cfg["name"], "arch": cfg["model"], "batch": batch, "precision": precision,
            "fixed_step_ms": fixed_step_cost(model, cfg) * 1e3,
            "kernel_ms_per_pass": kernel_ms_per_pass(model, batch, widths, precision),
            "wgrad_widths": list(gemm_widths),
            "wgrad_gemm_ms": wgrad_gemm_ms(model, batch, gemm_widths, dtype)}
