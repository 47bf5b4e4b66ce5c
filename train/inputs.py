"""What the network is fed: a config's dataset, its normalization, windows as model input
tensors, and the fixed calibration windows. Training, quantization and the benchmarks all take
their data from here (none of them needs the training loop for it)."""
from __future__ import annotations

import numpy as np
import torch

from .data import HarData, load_dataset


def derive_seed(seed: int, *parts: int) -> int:
    s = int(seed)
    for p in parts:
        s = (s * 1_000_003 + int(p) + 7919) % (2 ** 62)
    return s


def load_data(cfg: dict, data_dir=None) -> HarData:
    ds = cfg["dataset"]
    opts = {k: v for k, v in ds.items() if k not in ("name", "path") and v is not None}
    return load_dataset(ds["name"], path=data_dir or ds.get("path"), seed=cfg["seed"], **opts)


def normalization(data: HarData) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean / std of the training split (the device applies the same)."""
    X = data.train.X.astype(np.float64)
    mean, std = X.mean(axis=(0, 1)), X.std(axis=(0, 1))
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def to_input(X: np.ndarray, mean, std) -> torch.Tensor:
    """[N, T, C] windows -> normalized model input [N, 1, T, C]."""
    Xn = (X - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(Xn, dtype=np.float32)).unsqueeze(1)


def calib_set(cfg: dict, X: torch.Tensor) -> torch.Tensor:
    """A fixed, seeded subset of training windows for BN calibration."""
    n = min(len(X), int(cfg["bn_calibration"]["windows"]))
    g = torch.Generator().manual_seed(derive_seed(cfg["seed"], 0xCA11B))
    return X[torch.randperm(len(X), generator=g)[:n]]


def dataset_facts(data: HarData, mean, std) -> dict:
    return {"name": data.name, "class_names": data.class_names, "channel_names": data.channel_names,
            "sample_rate_hz": data.sample_rate_hz, "window": data.window, "channels": data.channels,
            "norm_mean": [float(v) for v in mean], "norm_std": [float(v) for v in std]}
