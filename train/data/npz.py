"""slimhar's generic dataset format for a user's own data: one ``.npz`` file.

Keys (spec in docs/data-format.md):

* ``X``            float  [N, T, C]  windows, T time steps, C sensor axes (required)
* ``y``            int    [N]        labels in [0, K) (required)
* ``subject``      int    [N]        subject of each window (optional; enables split by subject)
* ``split``        str    [N]        "train" / "val" / "test" per window (optional; overrides splitting)
* ``class_names``  str    [K]        (optional; default "class0".."classK-1")
* ``channel_names`` str   [C]        (optional)
* ``sample_rate_hz`` float scalar    (optional; default 50)
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .base import DatasetError, HarData, make_split, split_by_subject, split_train_val, stratified_holdout, take

KNOWN = {"X", "y", "subject", "split", "class_names", "channel_names", "sample_rate_hz"}
MAX_CHANNELS = 16       # what a blob's input spec and the firmware take (docs/blob-format.md)


def load(path, seed: int = 0, val_frac: float = 0.15, test_frac: float = 0.2) -> HarData:
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: file not found")
    try:
        z = np.load(p, allow_pickle=False)
        arrs = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise DatasetError(f"{p}: not a readable .npz file ({e})") from None
    unknown = set(arrs) - KNOWN
    if unknown:
        raise DatasetError(f"{p}: unknown keys {sorted(unknown)} (allowed: {sorted(KNOWN)})")
    for k in ("X", "y"):
        if k not in arrs:
            raise DatasetError(f"{p}: required key {k!r} missing")
    X, y = arrs["X"], arrs["y"]
    if X.ndim != 3 or X.dtype.kind != "f":
        raise DatasetError(f"{p}: X must be a float array [N, T, C], got {X.dtype} {X.shape}")
    if y.shape != (X.shape[0],) or y.dtype.kind not in "iu":
        raise DatasetError(f"{p}: y must be an int array [{X.shape[0]}], got {y.dtype} {y.shape}")
    if X.shape[0] == 0:
        raise DatasetError(f"{p}: X holds no windows (shape {list(X.shape)})")
    if "channel_names" in arrs and len(arrs["channel_names"]) != X.shape[2]:
        hint = (" -- X looks stored [N, C, T]: slimhar wants [N, T, C] (np.transpose(X, (0, 2, 1)))"
                if len(arrs["channel_names"]) == X.shape[1] else "")
        raise DatasetError(f"{p}: {len(arrs['channel_names'])} channel_names for X's {X.shape[2]} channels{hint}")
    if X.shape[2] > MAX_CHANNELS:
        raise DatasetError(f"{p}: X has {X.shape[2]} channels over {X.shape[1]} time steps -- stored [N, C, T]? "
                           f"slimhar wants [N, T, C] (np.transpose(X, (0, 2, 1))), at most {MAX_CHANNELS} channels")
    if not np.isfinite(X).all():
        raise DatasetError(f"{p}: X has {int((~np.isfinite(X)).sum())} NaN or infinite values")
    K = int(y.max()) + 1 if len(y) else 0
    names = [str(s) for s in arrs["class_names"]] if "class_names" in arrs else [f"class{i}" for i in range(K)]
    if y.min() < 0 or y.max() >= len(names):
        raise DatasetError(f"{p}: labels must be in [0, {len(names)})")
    C = X.shape[2]
    chans = [str(s) for s in arrs["channel_names"]] if "channel_names" in arrs else [f"ch{i}" for i in range(C)]
    subject = arrs.get("subject")
    if subject is not None and (subject.shape != y.shape or subject.dtype.kind not in "iu"):
        raise DatasetError(f"{p}: subject must be an int array [{len(y)}]")
    all_ = make_split(X, y, subject)
    if "split" in arrs:
        sp = arrs["split"].astype(str)
        if sp.shape != y.shape or not set(sp.tolist()) <= {"train", "val", "test"}:
            raise DatasetError(f"{p}: split must be [{len(y)}] strings in train/val/test")
        train, test = take(all_, sp == "train"), take(all_, sp == "test")
        val = take(all_, sp == "val") if (sp == "val").any() else None
        if val is None:
            train, val = split_train_val(train, val_frac, seed)
    elif subject is not None and len(set(subject.tolist())) >= 3:
        train, val, test = split_by_subject(all_, test_frac, val_frac, seed)
    else:
        tm = stratified_holdout(all_.y, test_frac, seed)
        train, val = split_train_val(take(all_, ~tm), val_frac, seed + 1)
        test = take(all_, tm)
    rate = float(arrs["sample_rate_hz"]) if "sample_rate_hz" in arrs else 50.0
    return HarData(name=p.stem, train=train, val=val, test=test, class_names=names,
                   channel_names=chans, sample_rate_hz=rate, notes=f"generic npz {p}").validate()
