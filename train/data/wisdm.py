"""WISDM v1.1 raw accelerometer file (``WISDM_ar_v1.1_raw.txt``).

Each record is ``user,activity,timestamp,x,y,z;`` (20 Hz, acceleration with 10 ~ 1 g).
The official file has known defects that this reader tolerates and counts:

* several ``;``-terminated records on one physical line, and blank lines;
* a trailing empty field (``...,z,;``);
* records that are empty or truncated (fewer than six fields, or an empty z).

Anything else is an error naming the file and line: a non-numeric user / x / y / z, an unknown
activity, or a file in which more than 1 % of the records had to be dropped (a sign of a wrong
or damaged file rather than the known defects).

Windows of 200 x 3 are cut inside contiguous runs of the same (user, activity), in file order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetError, HarData, make_split, sliding_windows, split_by_subject

CLASS_NAMES = ["Walking", "Jogging", "Upstairs", "Downstairs", "Sitting", "Standing"]
WINDOW = 200
MAX_DROPPED_FRAC = 0.01


def find_file(path: Path) -> Path:
    path = Path(path)
    for cand in (path, path / "WISDM_ar_v1.1_raw.txt", path / "WISDM_ar_v1.1" / "WISDM_ar_v1.1_raw.txt"):
        if cand.is_file():
            return cand
    raise DatasetError(f"{path}: WISDM_ar_v1.1_raw.txt not found")


def parse_raw(path: Path):
    """Returns (user[n], activity[n], xyz[n,3] float32, dropped_count)."""
    path = Path(path)
    cls = {n.lower(): i for i, n in enumerate(CLASS_NAMES)}
    users, acts, xyz = [], [], []
    dropped = total = 0
    with open(path, "r", encoding="ascii", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            for rec in line.split(";"):
                rec = rec.strip()
                if not rec:
                    continue
                total += 1
                fields = [t.strip() for t in rec.split(",")]
                while fields and fields[-1] == "":   # trailing ",;"
                    fields.pop()
                if len(fields) < 6:                  # empty / truncated record: a known defect
                    dropped += 1
                    continue
                if len(fields) > 6:
                    raise DatasetError(f"{path}:{lineno}: record has {len(fields)} fields, expected 6: {rec[:60]!r}")
                act = cls.get(fields[1].lower())
                if act is None:
                    raise DatasetError(f"{path}:{lineno}: unknown activity {fields[1][:30]!r}")
                try:
                    u = int(fields[0])
                    v = [float(t) for t in fields[3:6]]
                except ValueError:
                    raise DatasetError(f"{path}:{lineno}: non-numeric field in record {rec[:60]!r}") from None
                if not all(np.isfinite(v)):
                    raise DatasetError(f"{path}:{lineno}: non-finite value in record {rec[:60]!r}")
                users.append(u)
                acts.append(act)
                xyz.append(v)
    if not users:
        raise DatasetError(f"{path}: no valid WISDM records")
    if dropped > MAX_DROPPED_FRAC * total:
        raise DatasetError(f"{path}: {dropped} of {total} records are empty or truncated "
                           f"(> {MAX_DROPPED_FRAC:.0%}): not a WISDM v1.1 raw file, or a damaged one")
    return (np.asarray(users, np.int64), np.asarray(acts, np.int64),
            np.asarray(xyz, np.float32), dropped)


def windows_from_runs(user, act, xyz, length=WINDOW, step=WINDOW // 2):
    """Windows inside each contiguous run of equal (user, activity)."""
    change = np.flatnonzero((np.diff(user) != 0) | (np.diff(act) != 0)) + 1
    bounds = np.concatenate([[0], change, [len(user)]])
    Xs, ys, ss = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        for s in sliding_windows(b - a, length, step):
            Xs.append(xyz[a + s:a + s + length])
            ys.append(act[a])
            ss.append(user[a])
    if not Xs:
        raise DatasetError(f"no run of one (user, activity) is {length} samples long")
    return np.stack(Xs), np.asarray(ys), np.asarray(ss)


def load(path, seed: int = 0, val_frac: float = 0.15, test_frac: float = 0.2, step: int = WINDOW // 2) -> HarData:
    p = find_file(path)
    user, act, xyz, dropped = parse_raw(p)
    X, y, s = windows_from_runs(user, act, xyz, WINDOW, step)
    train, val, test = split_by_subject(make_split(X, y, s), test_frac, val_frac, seed)
    return HarData(
        name="wisdm", train=train, val=val, test=test, class_names=list(CLASS_NAMES),
        channel_names=["acc_x", "acc_y", "acc_z"], sample_rate_hz=20.0,
        notes=f"WISDM v1.1 raw; {dropped} empty/truncated records dropped; windows {WINDOW} step {step} "
              f"inside same-user same-activity runs; split by user.",
        extra={"dropped_records": dropped},
    ).validate()
