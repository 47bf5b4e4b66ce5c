"""Activation ranges of one subnet, from its float model on calibration windows.

Ranges are per tensor and per subnet (each subnet's BN statistics change its activations).
``minmax`` takes the observed extremes; ``percentile`` clips the input and the logits at the
0.01 / 99.99 percentiles (the raw input is where outliers cost resolution; DESIGN §3) and keeps
min-max elsewhere; ``mse`` picks, for the input and the first block's output (where the int8
loss comes from; DESIGN §3), the clipped range whose int8 grid reproduces the calibration values
with the least squared error, min-max elsewhere; ``nncf`` lets NNCF's post-training quantization place and range the
activation quantizers of the subnet's float model (its range estimators, on the same windows)
and reads their int8 parameters out -- NNCF leaves the logits unquantized, so those keep the
percentile range.
"""
from __future__ import annotations

import copy
import logging
import os
import re

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
    samples: dict[str, list[np.ndarray]] = {"input": [], "logits": [], "b0.out": []} if method == "mse" else \
        {"input": [], "logits": []}
    for i in range(0, len(X), batch):
        acts, _ = float_activations(dense, X[i:i + batch])
        for k, v in acts.items():
            lo[k] = min(lo.get(k, np.inf), float(v.min()))
            hi[k] = max(hi.get(k, -np.inf), float(v.max()))
            if k in samples and sum(map(len, samples[k])) < 2_000_000:
                # a strided sample: at most ~1M values per batch and ~2M per tensor
                flat = v.flatten()
                samples[k].append(flat[::max(1, flat.numel() // 1_000_000)].numpy())
    if method in ("percentile", "nncf"):
        for k, parts in samples.items():
            a = np.concatenate(parts)
            lo[k], hi[k] = float(np.percentile(a, 0.01)), float(np.percentile(a, 99.99))
    elif method == "mse":
        for k, parts in samples.items():
            if k != "logits":
                lo[k], hi[k] = mse_range(np.concatenate(parts), lo0=lo[k], hi0=hi[k])
    elif method != "minmax":
        raise ValueError(f"unknown range method {method!r} (minmax, percentile, mse, nncf)")
    out = {k: (lo[k], hi[k]) for k in lo}
    if method == "nncf":
        out.update(nncf_ranges(dense, X, batch))
    return out


def mse_range(a: np.ndarray, steps: int = 32, bins: int = 4096, lo0: float | None = None,
              hi0: float | None = None) -> tuple[float, float]:
    """The [lo, hi] (shrunk from min-max, each end on its own grid of fractions) whose asymmetric
    int8 fake quantization of `a` has the least mean squared error, evaluated on a fine
    histogram of all the values (bin width = 1/16 of the finest int8 step searched)."""
    lo0 = min(float(a.min()) if lo0 is None else lo0, 0.0)
    hi0 = max(float(a.max()) if hi0 is None else hi0, 0.0)
    if hi0 - lo0 < 1e-12:
        return lo0, hi0
    counts, edges = np.histogram(a.astype(np.float64), bins=bins, range=(lo0, hi0))
    centers = (edges[:-1] + edges[1:]) / 2
    keep = counts > 0
    c, n = centers[keep], counts[keep].astype(np.float64)
    fracs = np.linspace(1.0, 0.25, steps)
    fl = fracs if lo0 < 0 else np.ones(1)
    fh = fracs if hi0 > 0 else np.ones(1)
    lo = (lo0 * fl)[:, None, None]                      # every (lo, hi) candidate at once
    hi = (hi0 * fh)[None, :, None]
    scale = (hi - lo) / 255.0
    zp = np.clip(np.round(-128 - lo / scale), -128, 127)
    q = np.clip(np.round(c / scale) + zp, -128, 127)
    err = (((q - zp) * scale - c) ** 2 * n).sum(axis=2)  # [len(fl), len(fh)]
    i, j = np.unravel_index(np.argmin(err), err.shape)
    return float(lo0 * fl[i]), float(hi0 * fh[j])


def _nncf_key(name: str, residual: bool, blocks: int) -> str | None:
    """Our tensor key for an NNCF activation-quantizer insertion point (names as NNCF 3.4
    traces DenseSubnet: 'x', '/relu/K', 'bn2/batch_norm/B', 'bn_short/batch_norm/B',
    'pool/adaptive_max_pool2d/0'). The pool commutes with a per-tensor quantizer, so its
    output range is the last block's output range."""
    m = re.search(r"post_hooks\.(.+)__\d+\.\d+$", name)
    point = m.group(1) if m else ""
    if point == "x":
        return "input"
    if point.startswith("pool/"):
        return f"b{blocks - 1}.out"
    m = re.fullmatch(r"/relu/(\d+)", point)
    if m:
        k = int(m.group(1))
        return (f"b{k // 2}.{'mid' if k % 2 == 0 else 'out'}") if residual else f"b{k}.out"
    m = re.fullmatch(r"(bn2|bn_short)/batch_norm/(\d+)", point)
    if m:
        return f"b{m.group(2)}.{'main' if m.group(1) == 'bn2' else 'short'}"
    return None


def nncf_ranges(dense: DenseSubnet, X: torch.Tensor, batch: int = 64) -> dict[str, tuple[float, float]]:
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "300")   # its one-time C++ build can take ~90 s
    from slimhar.extras import require
    nncf = require("nncf")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    nncf.set_log_level(logging.ERROR)
    model = copy.deepcopy(dense).eval()                 # NNCF edits the model it is given
    ds = nncf.Dataset([X[i:i + batch] for i in range(0, len(X), batch)])
    q = nncf.quantize(model, ds, preset=nncf.QuantizationPreset.MIXED, subset_size=len(X),
                      advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix.DISABLE))
    residual = dense.blocks[0].residual
    out = {}
    for name, mod in q.named_modules():
        if type(mod).__name__ != "AsymmetricQuantizer":
            continue
        key = _nncf_key(name, residual, len(dense.blocks))
        if key is None:
            raise RuntimeError(f"NNCF placed an activation quantizer we do not map: {name}")
        qmin, qmax, scale, zp = mod.get_parameters_for_torch_fq()
        s, z = float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0])   # uint8 form: levels 0..255
        out[key] = (s * (qmin - z), s * (qmax - z))
    return out
