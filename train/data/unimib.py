"""UniMiB-SHAR (``UniMiB-SHAR/data/acc_data.mat`` + ``acc_labels.mat``), MATLAB v5 files.

``acc_data`` is [N, 453]: each row one 151-sample window stored as [x(151) | y(151) | z(151)]
(m/s^2). ``acc_labels`` is [N, 3]: activity 1..17, subject 1..30, trial.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from .base import DatasetError, HarData, make_split, split_by_subject

CLASS_NAMES = ["StandingUpFS", "StandingUpFL", "Walking", "Running", "GoingUpS", "Jumping",
               "GoingDownS", "LyingDownFS", "SittingDown", "FallingForw", "FallingRight",
               "FallingBack", "HittingObstacle", "FallingWithPS", "FallingBackSC", "Syncope",
               "FallingLeft"]
WINDOW = 151


def find_dir(path: Path) -> Path:
    path = Path(path)
    for cand in (path, path / "data", path / "UniMiB-SHAR" / "data"):
        if (cand / "acc_data.mat").is_file():
            return cand
    raise DatasetError(f"{path}: acc_data.mat not found")


def _read_var(p: Path, var: str) -> np.ndarray:
    if not p.is_file():
        raise DatasetError(f"{p}: file not found")
    try:
        m = scipy.io.loadmat(p)
    except Exception as e:   # scipy raises several types for damaged files
        raise DatasetError(f"{p}: not a readable MATLAB v5 file ({type(e).__name__}: {e})") from None
    if var not in m:
        raise DatasetError(f"{p}: variable {var!r} missing (has {sorted(k for k in m if not k.startswith('__'))})")
    a = np.asarray(m[var])
    if a.dtype.kind not in "fiu":
        raise DatasetError(f"{p}: variable {var!r} is not numeric (dtype {a.dtype})")
    return a


def load(path, seed: int = 0, val_frac: float = 0.15, test_frac: float = 0.2) -> HarData:
    d = find_dir(path)
    data = _read_var(d / "acc_data.mat", "acc_data")
    labels = _read_var(d / "acc_labels.mat", "acc_labels")
    if data.ndim != 2 or data.shape[1] != 3 * WINDOW:
        raise DatasetError(f"{d / 'acc_data.mat'}: acc_data must be [N, {3 * WINDOW}], got {data.shape}")
    if labels.ndim != 2 or labels.shape[1] < 2 or labels.shape[0] != data.shape[0]:
        raise DatasetError(f"{d / 'acc_labels.mat'}: acc_labels must be [{data.shape[0]}, 3], got {labels.shape}")
    bad = np.flatnonzero(~np.isfinite(data).all(axis=1))
    if len(bad):
        raise DatasetError(f"{d / 'acc_data.mat'}: row {bad[0] + 1} of acc_data has NaN or inf")
    act, subj = labels[:, 0], labels[:, 1]
    for col, arr, lo, hi in (("activity", act, 1, 17), ("subject", subj, 1, 30)):
        bad = np.flatnonzero((arr < lo) | (arr > hi) | (arr != np.round(arr)))
        if len(bad):
            raise DatasetError(f"{d / 'acc_labels.mat'}: row {bad[0] + 1}: {col} {arr[bad[0]]:g} not in {lo}..{hi}")
    X = data.reshape(-1, 3, WINDOW).transpose(0, 2, 1)   # [N, 151, 3]
    train, val, test = split_by_subject(make_split(X, act.astype(np.int64) - 1, subj), test_frac, val_frac, seed)
    return HarData(
        name="unimib", train=train, val=val, test=test, class_names=list(CLASS_NAMES),
        channel_names=["acc_x", "acc_y", "acc_z"], sample_rate_hz=50.0,
        notes="UniMiB-SHAR 17-class acc windows; split by subject.",
    ).validate()
