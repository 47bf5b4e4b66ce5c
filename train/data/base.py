"""The in-memory dataset every loader returns, and the splitting rules they share.

A dataset is windows ``X[N, T, C]`` (float32, T time steps, C sensor axes), integer labels
``y[N]`` in ``[0, classes)``, optionally the subject of each window, split three ways:
train / val / test. Validation always comes from training subjects (never from the test set,
which is what the paper's code does).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class DatasetError(ValueError):
    """A dataset file is missing, malformed or inconsistent. The message names the file
    (and the line or variable) so a user can find the fault."""


@dataclass
class Split:
    X: np.ndarray            # [N, T, C] float32
    y: np.ndarray            # [N] int64
    subject: np.ndarray | None = None   # [N] int64 or None

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def counts(self, classes: int) -> list[int]:
        return np.bincount(self.y, minlength=classes).tolist()


@dataclass
class HarData:
    name: str
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    channel_names: list[str]
    sample_rate_hz: float
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def window(self) -> int:
        return int(self.train.X.shape[1])

    @property
    def channels(self) -> int:
        return int(self.train.X.shape[2])

    @property
    def classes(self) -> int:
        return len(self.class_names)

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def validate(self) -> "HarData":
        """Check shapes, dtypes, label range and finiteness of every split."""
        T, C = None, None
        for sname, s in self.splits().items():
            if s.X.ndim != 3:
                raise DatasetError(f"{self.name}: {sname} X must be [N, T, C], got shape {s.X.shape}")
            if T is None:
                T, C = s.X.shape[1:]
            if s.X.shape[1:] != (T, C):
                raise DatasetError(f"{self.name}: {sname} windows are {s.X.shape[1:]}, train are {(T, C)}")
            if s.y.shape != (s.X.shape[0],):
                raise DatasetError(f"{self.name}: {sname} has {s.X.shape[0]} windows but y has shape {s.y.shape}")
            if s.subject is not None and s.subject.shape != s.y.shape:
                raise DatasetError(f"{self.name}: {sname} subject has shape {s.subject.shape}, expected {s.y.shape}")
            if len(s) and (s.y.min() < 0 or s.y.max() >= self.classes):
                raise DatasetError(f"{self.name}: {sname} labels outside [0, {self.classes})")
            if not np.isfinite(s.X).all():
                raise DatasetError(f"{self.name}: {sname} windows contain NaN or inf")
            if len(s) == 0:
                raise DatasetError(f"{self.name}: {sname} split is empty")
        if len(self.channel_names) != C:
            raise DatasetError(f"{self.name}: {len(self.channel_names)} channel names for {C} channels")
        return self

    def info(self) -> dict:
        return {
            "name": self.name,
            "window": self.window,
            "channels": self.channels,
            "channel_names": self.channel_names,
            "sample_rate_hz": self.sample_rate_hz,
            "classes": self.class_names,
            "splits": {k: {"windows": len(s), "per_class": s.counts(self.classes),
                           "subjects": (sorted(set(s.subject.tolist())) if s.subject is not None else None)}
                       for k, s in self.splits().items()},
            "notes": self.notes,
        }


def make_split(X, y, subject=None) -> Split:
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    subject = None if subject is None else np.asarray(subject, dtype=np.int64)
    return Split(X, y, subject)


def take(s: Split, mask: np.ndarray) -> Split:
    return Split(s.X[mask], s.y[mask], None if s.subject is None else s.subject[mask])


def subject_holdout(subjects: np.ndarray, frac: float, seed: int, exclude=()) -> list[int]:
    """A seeded choice of round(frac * n) subjects (at least one) among those present."""
    pool = sorted(set(subjects.tolist()) - set(exclude))
    if len(pool) < 2:
        raise DatasetError(f"need at least 2 subjects to hold some out, have {pool}")
    n = min(len(pool) - 1, max(1, int(round(frac * len(pool)))))
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(pool, size=n, replace=False).tolist())


def stratified_holdout(y: np.ndarray, frac: float, seed: int) -> np.ndarray:
    """Boolean mask choosing about frac of each class (at least one per class that has two)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < 2:
            continue
        n = max(1, int(round(frac * len(idx))))
        mask[rng.choice(idx, size=n, replace=False)] = True
    return mask


def split_train_val(train: Split, val_frac: float, seed: int) -> tuple[Split, Split]:
    """Validation from the training split: whole subjects when subjects are known, else a
    stratified sample of windows."""
    if train.subject is not None and len(set(train.subject.tolist())) >= 3:
        held = subject_holdout(train.subject, val_frac, seed)
        m = np.isin(train.subject, held)
    else:
        m = stratified_holdout(train.y, val_frac, seed)
    return take(train, ~m), take(train, m)


def split_by_subject(all_: Split, test_frac: float, val_frac: float, seed: int,
                     test_subjects=None) -> tuple[Split, Split, Split]:
    """Train / val / test by subject, for datasets with no official split."""
    if all_.subject is None:
        raise DatasetError("split_by_subject needs subjects")
    if test_subjects is None:
        test_subjects = subject_holdout(all_.subject, test_frac, seed)
    tm = np.isin(all_.subject, list(test_subjects))
    train, val = split_train_val(take(all_, ~tm), val_frac, seed + 1)
    return train, val, take(all_, tm)


def sliding_windows(n: int, length: int, step: int) -> np.ndarray:
    """Start indices of every full window of `length` samples, step `step`, in n samples."""
    if n < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n - length + 1, step, dtype=np.int64)
