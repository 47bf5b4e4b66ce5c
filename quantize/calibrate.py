"""Activation ranges of one subnet, from its float model on calibration windows.

Ranges are per tensor and per subnet (each subnet's BN statistics change its activations).
``minmax`` takes the observed extremes; ``percentile`` clips the input and the logits at the
0.01 / 99.99 percentiles (the raw input is where outliers cost resolution; DESIGN §3) and keeps
min-max elsewhere.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from slimhar.train.models.har_net import pool_rows
from slimhar.train.models.reference import DenseSubnet


@torch.no_grad()
def float_activations(dense: DenseSubnet, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    acts = {"input": x}
    h = x
    for b, blk in enumerate(dense.blocks):
        y = F.relu(blk.bn1(blk.conv1(h)))
        if blk.residual:
            acts[f"b{b}.mid"] = y
            main = blk.bn2(blk.conv2(y))
            short = blk.bn_short(blk.short(h))
            acts[f"b{b}.main"], acts[f"b{b}.short"] = main, short
            y = F.relu(main + short)
        acts[f"b{b}.out"] = y
        h = y
    logits = dense.fc(pool_rows(h, 2).flatten(1))      # = dense.pool(h), without torch's slow CPU kernel
    acts["logits"] = logits
    return acts, logits


@torch.no_grad()
def activation_ranges(dense: DenseSubnet, X: torch.Tensor, method: str = "percentile",
                      batch: int = 256) -> dict[str, tuple[float, float]]:
    dense.eval()
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    samples: dict[str, list[np.ndarray]] = {"input": [], "logits": []}
    for i in range(0, len(X), batch):
        acts, _ = float_activations(dense, X[i:i + batch])
        for k, v in acts.items():
            lo[k] = min(lo.get(k, np.inf), float(v.min()))
            hi[k] = max(hi.get(k, -np.inf), float(v.max()))
            if k in samples:
                samples[k].append(v.flatten().numpy())
    if method == "percentile":
        for k, parts in samples.items():
            a = np.concatenate(parts)
            lo[k], hi[k] = float(np.percentile(a, 0.01)), float(np.percentile(a, 99.99))
    elif method != "minmax":
        raise ValueError(f"unknown range method {method!r} (minmax, percentile)")
    return {k: (lo[k], hi[k]) for k in lo}
