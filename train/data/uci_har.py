"""UCI-HAR ("UCI HAR Dataset"): the official raw inertial-signal files.

Layout read::

    UCI HAR Dataset/activity_labels.txt                 (optional: "1 WALKING" ...)
    UCI HAR Dataset/{train,test}/y_{split}.txt          one label 1..6 per line
    UCI HAR Dataset/{train,test}/subject_{split}.txt    one subject 1..30 per line
    UCI HAR Dataset/{train,test}/Inertial Signals/{body_acc,body_gyro,total_acc}_{x,y,z}_{split}.txt
                                                        N lines x 128 values each

Channels in the conventional order: body_acc xyz, body_gyro xyz, total_acc xyz.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetError, HarData, make_split, split_train_val
from .textfile import read_ints, read_table

SIGNALS = [f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]
CLASS_NAMES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
WINDOW = 128


def find_root(path: Path) -> Path:
    path = Path(path)
    for cand in (path, path / "UCI HAR Dataset"):
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return cand
    raise DatasetError(f"{path}: not a UCI HAR Dataset folder (no train/ and test/ inside)")


def _read_class_names(root: Path) -> list[str]:
    p = root / "activity_labels.txt"
    if not p.is_file():
        return list(CLASS_NAMES)
    names = {}
    for lineno, line in enumerate(p.read_text(encoding="ascii", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{p}:{lineno}: expected '<id> <NAME>', found {line[:60]!r}")
        names[int(parts[0])] = parts[1]
    if sorted(names) != list(range(1, 7)):
        raise DatasetError(f"{p}: expected activity ids 1..6, found {sorted(names)}")
    return [names[i] for i in range(1, 7)]


def read_split(root: Path, split: str):
    d = root / split
    y = read_ints(d / f"y_{split}.txt", 1, 6) - 1
    subj = read_ints(d / f"subject_{split}.txt", 1, 30)
    if len(subj) != len(y):
        raise DatasetError(f"{d / f'subject_{split}.txt'}: {len(subj)} rows, but y_{split}.txt has {len(y)}")
    chans = []
    for sig in SIGNALS:
        p = d / "Inertial Signals" / f"{sig}_{split}.txt"
        a = read_table(p, cols=WINDOW)
        if a.shape[0] != len(y):
            raise DatasetError(f"{p}: {a.shape[0]} rows, but y_{split}.txt has {len(y)}")
        chans.append(a)
    X = np.stack(chans, axis=-1)   # [N, 128, 9]
    return make_split(X, y, subj)


def load(path, seed: int = 0, val_frac: float = 0.15) -> HarData:
    root = find_root(path)
    names = _read_class_names(root)
    train_all = read_split(root, "train")
    test = read_split(root, "test")
    train, val = split_train_val(train_all, val_frac, seed)
    return HarData(
        name="uci-har", train=train, val=val, test=test, class_names=names,
        channel_names=SIGNALS, sample_rate_hz=50.0,
        notes="UCI-HAR official inertial signals; validation = held-out training subjects.",
    ).validate()
