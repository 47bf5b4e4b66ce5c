"""Reading whitespace-separated numeric text files (UCI-HAR style) with errors that name
the file and the line.

The fast path is ``np.loadtxt``; when it fails (or the shape is wrong) the file is scanned
line by line once more, only to say exactly where it is broken.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetError


def _locate_fault(path: Path, cols: int | None) -> str:
    with open(path, "r", encoding="ascii", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                return f"{path}:{lineno}: empty line"
            if cols is not None and len(fields) != cols:
                return f"{path}:{lineno}: expected {cols} values, found {len(fields)}"
            for i, tok in enumerate(fields, 1):
                try:
                    v = float(tok)
                except ValueError:
                    return f"{path}:{lineno}: value {i} is not a number: {tok[:40]!r}"
                if not np.isfinite(v):
                    return f"{path}:{lineno}: value {i} is not finite: {tok!r}"
    return f"{path}: unreadable numeric table"


def read_table(path: Path, cols: int | None = None, dtype=np.float32) -> np.ndarray:
    """Rows of `cols` whitespace-separated numbers (any exponent width). Returns [rows, cols]."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        a = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError:
        raise DatasetError(_locate_fault(path, cols)) from None
    if a.size == 0:
        raise DatasetError(f"{path}: file is empty")
    if (cols is not None and a.shape[1] != cols) or not np.isfinite(a).all():
        raise DatasetError(_locate_fault(path, cols))
    # np.loadtxt skips blank lines silently; a blank line inside a table means a lost row.
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and lines[-1].strip() == b"":
        lines = lines[:-1]
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            raise DatasetError(f"{path}:{lineno}: empty line")
    return a.astype(dtype)


def read_ints(path: Path, lo: int, hi: int) -> np.ndarray:
    """One integer per line, each in [lo, hi]."""
    a = read_table(path, cols=1, dtype=np.float64)[:, 0]
    bad = np.flatnonzero((a != np.round(a)) | (a < lo) | (a > hi))
    if len(bad):
        raise DatasetError(f"{path}:{bad[0] + 1}: expected an integer in [{lo}, {hi}], found {a[bad[0]]:g}")
    return a.astype(np.int64)
