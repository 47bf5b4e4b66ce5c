"""Post-training BatchNorm calibration: exact running statistics for every (width, resolution)
subnet of the grid, computed over a fixed calibration set of training windows and stored in
the model (and so in the checkpoint), so later stages never recompute them.

Each subnet runs the calibration windows in batches with batch-statistics normalization (as in
training) while every BN layer merges the per-batch mean and variance of its input exactly
(float64); the mean and unbiased variance over all calibration samples are then written to
that subnet's row.
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .models import HarNet, resize
from .models.slim_ops import SlimBN


@torch.no_grad()
def calibrate(model: HarNet, X: torch.Tensor, subnets, batch_size: int, progress: bool = False) -> None:
    bns = [m for m in model.modules() if isinstance(m, SlimBN)]
    was_training = model.training
    model.eval()
    try:
        for w, r in tqdm(list(subnets), desc="BN calibration", unit="subnet", disable=not progress, leave=False):
            idx = model.subnet_index(w, r)
            for b in bns:
                b.collect = {}
            model.set_width(w)
            Xr = resize(X, r)
            for i in range(0, len(Xr), batch_size):
                chunk = Xr[i:i + batch_size]
                if len(chunk) >= 2 or i == 0:
                    model(chunk)
            for b in bns:
                s = b.collect
                c = s["mean"].shape[0]
                b.stat_mean[idx, :c] = s["mean"].float()
                b.stat_var[idx, :c] = (s["m2"] / max(1, s["n"] - 1)).float()   # unbiased, as torch's running_var
    finally:
        for b in bns:
            b.collect = None
        model.train(was_training)
