"""Writers of small dataset files in the OFFICIAL formats (docs/datasets.md), so the loaders
are tested on exactly what users will point them at."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from slimhar.train.data import uci_har, unimib


def matlab_num(v: float) -> str:
    """UCI-HAR's number style: '  1.8085150e-004' (3-digit exponent, leading spaces)."""
    s = f"{v: .7e}"
    return " " + re.sub(r"e([+-])(\d\d)$", lambda m: f"e{m.group(1)}0{m.group(2)}", s)


def write_uci_har(root: Path, n_train=30, n_test=12, seed=0) -> Path:
    """A tiny 'UCI HAR Dataset' folder: random signals, subjects and labels in range."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "UCI HAR Dataset"
    base.mkdir(parents=True)
    (base / "activity_labels.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(uci_har.CLASS_NAMES)))
    out = {}
    for split, n, subjects in (("train", n_train, [1, 3, 5, 6, 7]), ("test", n_test, [2, 4])):
        d = base / split
        (d / "Inertial Signals").mkdir(parents=True)
        y = np.arange(n) % 6 + 1
        subj = np.array([subjects[i % len(subjects)] for i in range(n)])
        (d / f"y_{split}.txt").write_text("".join(f"{v}\n" for v in y))
        (d / f"subject_{split}.txt").write_text("".join(f"{v}\n" for v in subj))
        X = rng.normal(size=(n, 128, 9)).astype(np.float32)
        for c, sig in enumerate(uci_har.SIGNALS):
            lines = ["".join(matlab_num(float(v)) for v in X[i, :, c]) for i in range(n)]
            (d / "Inertial Signals" / f"{sig}_{split}.txt").write_text("\n".join(lines) + "\n")
        out[split] = (X, y - 1, subj)
    return base, out


def wisdm_text(records_per_run=260, users=(1, 2, 3, 4, 5), seed=0, defects=True) -> tuple[str, int]:
    """WISDM v1.1 raw text with the official file's known defects. Returns (text, defect count)."""
    rng = np.random.default_rng(seed)
    acts = ["Walking", "Jogging", "Upstairs", "Downstairs", "Sitting", "Standing"]
    recs = []
    for u in users:
        for a in acts:
            for i in range(records_per_run):
                x, y, z = rng.normal(size=3) * 5
                recs.append(f"{u},{a},{49105962326000 + i * 50000000},{x:.8g},{y:.8g},{z:.8g};")
    lines, dropped, i = [], 0, 0
    while i < len(recs):
        if defects and i % 97 == 5:        # several records on one physical line
            lines.append(recs[i] + recs[i + 1] + recs[i + 2])
            i += 3
            continue
        if defects and i % 131 == 7:       # trailing empty field ",;"
            lines.append(recs[i][:-1] + ",;")
        else:
            lines.append(recs[i])
        i += 1
    if defects:
        lines.insert(10, "")                                # blank line
        lines.insert(20, "3,Walking,49106062326000,1.5,;")  # truncated record (no z)
        lines.insert(30, ";")                               # empty record (ignored, not counted)
        dropped = 1
    return "\n".join(lines) + "\n", dropped


def write_unimib(root: Path, n=60, seed=0) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = Path(root) / "UniMiB-SHAR" / "data"
    d.mkdir(parents=True)
    data = rng.normal(size=(n, 3 * unimib.WINDOW)) * 9.81
    labels = np.stack([np.arange(n) % 17 + 1, np.arange(n) % 6 + 1, np.ones(n)], axis=1).astype(np.float64)
    scipy.io.savemat(d / "acc_data.mat", {"acc_data": data})
    scipy.io.savemat(d / "acc_labels.mat", {"acc_labels": labels})
    names = np.empty((2, 17), dtype=object)
    for i, nm in enumerate(unimib.CLASS_NAMES):
        names[0, i], names[1, i] = nm, nm
    scipy.io.savemat(d / "acc_names.mat", {"acc_names": names})
    return d, data, labels
