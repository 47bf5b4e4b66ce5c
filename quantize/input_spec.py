"""The model's input spec: everything a device needs to turn IMU samples into a subnet's input
(docs/blob-format.md, section "Input spec"). It travels in the blob, so the firmware feeds any
model without being rebuilt for it.

    sample rate, window, hop; the sensor's raw channels (name, unit); the preprocessing chain
    (median / second-order-section / subtract stages over a vector of float32 slots); which
    slot becomes each model channel; per-channel normalization; class names.

:func:`run_chain` is the host mirror of the firmware's chain (firmware/lib/slimhar_app/src/
chain.cpp): the same float32 operations in the same order, one sample at a time, no fused
multiply-add (NumPy float32 array arithmetic rounds each operation to float32, and the firmware
is built with -ffp-contract=off), so the two agree bit for bit.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

SPEC_MAGIC = b"ISPC"
SPEC_VERSION = 1
FLAG_OFFLINE = 1          # the stream must carry the model channels already preprocessed
HEAD = struct.Struct("<4sHHIfHHBBBBBBH I")        # 32 bytes
NAME = struct.Struct("<16s8s")                      # channel: name, unit
STAGE = struct.Struct("<BBBBBBBB")                  # op, count, src, src2, dst, arg0, arg1, 0
SOS = struct.Struct("<8f")                          # b0 b1 b2 a1 a2 zi0 zi1 0 (a0 = 1)
CLASS = struct.Struct("<24s")
OPS = {"median": 0, "sos": 1, "sub": 2}
MAX_RAW, MAX_CHANNELS, MAX_SLOTS, MAX_STAGES, MAX_SOS = 16, 16, 64, 16, 32
MAX_STATE = 512           # floats of chain state the firmware reserves (median history + SOS z)
assert HEAD.size == 32 and NAME.size == 24 and STAGE.size == 8 and SOS.size == 32


class SpecError(ValueError):
    pass


@dataclass
class Stage:
    op: str                # median (k = arg0 = 3), sos (sections arg0 .. arg0 + arg1 - 1), sub (src - src2)
    count: int             # channels it processes: slots [src, src + count) -> [dst, dst + count)
    src: int
    dst: int
    src2: int = 0
    arg0: int = 0
    arg1: int = 0


@dataclass
class InputSpec:
    sample_rate_hz: float
    window: int
    hop: int
    raw: list[tuple[str, str]]           # what the sensor supplies, in feed order: (name, unit)
    channels: list[tuple[str, str]]      # the model's channels
    mean: np.ndarray
    std: np.ndarray
    class_names: list[str]
    slots: int = 0                       # raw channels occupy slots [0, len(raw))
    stages: list[Stage] = field(default_factory=list)
    sos: np.ndarray = field(default_factory=lambda: np.zeros((0, 7), np.float32))   # b0 b1 b2 a1 a2 zi0 zi1
    out_map: list[int] = field(default_factory=list)
    flags: int = 0

    @property
    def offline(self) -> bool:
        return bool(self.flags & FLAG_OFFLINE)

    def state_floats(self) -> int:
        n = 0
        for s in self.stages:
            n += 2 * s.count if s.op == "median" else 2 * s.arg1 * s.count if s.op == "sos" else 0
        return n

    def describe(self) -> str:
        if self.offline:
            return "offline (the stream carries the model channels, preprocessed on the host)"
        if not self.stages:
            return "none (raw channels)"
        return " -> ".join(f"{s.op}{'(k=3)' if s.op == 'median' else f'({s.arg1} sections)' if s.op == 'sos' else ''}"
                           f" x{s.count}" for s in self.stages)


# -- building ---------------------------------------------------------------------------------
def identity_spec(ds: dict, hop: int | None = None, units=None, offline: bool = False) -> InputSpec:
    """Raw channels = the model's channels, no chain (BasicMotions, .npz, an offline recipe)."""
    names = list(ds["channel_names"])
    units = list(units or [""] * len(names))
    ch = list(zip(names, units))
    return InputSpec(float(ds["sample_rate_hz"]), int(ds["window"]), int(hop or max(1, ds["window"] // 2)), ch, ch,
                     np.asarray(ds["norm_mean"], np.float32), np.asarray(ds["norm_std"], np.float32),
                     list(ds["class_names"]), slots=len(names), out_map=list(range(len(names))),
                     flags=FLAG_OFFLINE if offline else 0)


def chain_spec(ds: dict, hop: int, raw, stages, sections, out_map, units) -> InputSpec:
    """A spec with a chain. sections: float64 [n, 6] scipy SOS rows (b0 b1 b2 a0 a1 a2, a0 = 1)
    with their steady-state zi [n, 2] appended (sosfilt_zi per stage), stored as float32."""
    sos = np.asarray(sections, np.float64)
    if len(sos) and not np.all(sos[:, 3] == 1.0):
        raise SpecError("second-order sections must be normalized (a0 = 1)")
    packed = np.concatenate([sos[:, :3], sos[:, 4:6], sos[:, 6:8]], axis=1).astype(np.float32) if len(sos) \
        else np.zeros((0, 7), np.float32)
    slots = max([len(raw)] + [s.dst + s.count for s in stages])
    return InputSpec(float(ds["sample_rate_hz"]), int(ds["window"]), int(hop), list(raw),
                     list(zip(ds["channel_names"], units)), np.asarray(ds["norm_mean"], np.float32),
                     np.asarray(ds["norm_std"], np.float32), list(ds["class_names"]), slots=slots,
                     stages=list(stages), sos=packed, out_map=list(out_map))


def for_checkpoint(ck: dict) -> InputSpec:
    """The input spec of a trained model: its dataset's device chain (train/data/*.device_spec)
    when the dataset defines one, else its raw channels."""
    from ..train.data import device_spec
    return device_spec(ck["config"].get("dataset", {}), ck["dataset"])


# -- bytes ------------------------------------------------------------------------------------
def _name(s: str, n: int, what: str) -> bytes:
    b = s.encode("ascii", "replace")
    if len(b) > n:
        raise SpecError(f"{what} {s!r} is longer than {n} bytes")
    return b


def pack(spec: InputSpec) -> bytes:
    validate(spec)
    body = b"".join(NAME.pack(_name(n, 16, "channel name"), _name(u, 8, "unit")) for n, u in spec.raw + spec.channels)
    body += np.asarray(spec.mean, "<f4").tobytes() + np.asarray(spec.std, "<f4").tobytes()
    om = bytes(spec.out_map)
    body += om + b"\0" * ((-len(om)) % 4)
    body += b"".join(STAGE.pack(OPS[s.op], s.count, s.src, s.src2, s.dst, s.arg0, s.arg1, 0) for s in spec.stages)
    body += b"".join(SOS.pack(*[float(v) for v in row], 0.0) for row in spec.sos)
    body += b"".join(CLASS.pack(_name(c, 24, "class name")) for c in spec.class_names)
    size = HEAD.size + len(body)
    head = HEAD.pack(SPEC_MAGIC, SPEC_VERSION, spec.flags, size, spec.sample_rate_hz, spec.window, spec.hop,
                     len(spec.raw), len(spec.channels), spec.slots, len(spec.stages), len(spec.sos), 0,
                     len(spec.class_names), 0)
    return head + body


def section_size(raw: int, channels: int, stages: int, sos: int, classes: int) -> int:
    return (HEAD.size + NAME.size * (raw + channels) + 8 * channels + channels + (-channels) % 4
            + STAGE.size * stages + SOS.size * sos + CLASS.size * classes)


def unpack(d: bytes, off: int, avail: int) -> InputSpec:
    """The spec at d[off:off + avail]; SpecError naming the fault for anything malformed."""
    if avail < HEAD.size:
        raise SpecError(f"input spec: {avail} bytes, its header alone is {HEAD.size}")
    (magic, ver, flags, size, rate, window, hop, n_raw, n_ch, slots, n_st, n_sos, _r, n_cls, _r2) = \
        HEAD.unpack_from(d, off)
    if magic != SPEC_MAGIC:
        raise SpecError(f"input spec: bad magic {magic!r}")
    if ver != SPEC_VERSION:
        raise SpecError(f"input spec version {ver}, this reader reads version {SPEC_VERSION}")
    if not (0 < n_raw <= MAX_RAW and 0 < n_ch <= MAX_CHANNELS and n_st <= MAX_STAGES and n_sos <= MAX_SOS
            and n_raw <= slots <= MAX_SLOTS and 0 < n_cls <= 1024):
        raise SpecError(f"input spec: absurd counts ({n_raw} raw, {n_ch} channels, {slots} slots, {n_st} stages, "
                        f"{n_sos} sections, {n_cls} classes)")
    want = section_size(n_raw, n_ch, n_st, n_sos, n_cls)
    if size != want or size > avail:
        raise SpecError(f"input spec: size {size}, its counts need {want} ({avail} bytes available)")
    p = off + HEAD.size

    def text(b: bytes) -> str:
        return b.rstrip(b"\0").decode("ascii", "replace")
    names = [NAME.unpack_from(d, p + NAME.size * i) for i in range(n_raw + n_ch)]
    p += NAME.size * (n_raw + n_ch)
    mean = np.frombuffer(d, "<f4", n_ch, p).copy()
    std = np.frombuffer(d, "<f4", n_ch, p + 4 * n_ch).copy()
    p += 8 * n_ch
    out_map = list(d[p:p + n_ch])
    p += n_ch + (-n_ch) % 4
    inv = {v: k for k, v in OPS.items()}
    stages = []
    for i in range(n_st):
        op, count, src, src2, dst, a0, a1, _z = STAGE.unpack_from(d, p + STAGE.size * i)
        if op not in inv:
            raise SpecError(f"input spec: stage {i} has unknown op {op}")
        stages.append(Stage(inv[op], count, src, dst, src2, a0, a1))
    p += STAGE.size * n_st
    sos = np.array([SOS.unpack_from(d, p + SOS.size * i)[:7] for i in range(n_sos)], np.float32).reshape(n_sos, 7)
    p += SOS.size * n_sos
    classes = [text(CLASS.unpack_from(d, p + CLASS.size * i)[0]) for i in range(n_cls)]
    spec = InputSpec(rate, window, hop, [(text(a), text(b)) for a, b in names[:n_raw]],
                     [(text(a), text(b)) for a, b in names[n_raw:]], mean, std, classes, slots=slots,
                     stages=stages, sos=sos, out_map=out_map, flags=flags)
    validate(spec)
    return spec


def validate(s: InputSpec) -> None:
    """Everything the firmware checks too (slimhar_blob.cpp: CheckSpec)."""
    nr, nc = len(s.raw), len(s.channels)
    if not (np.isfinite(s.sample_rate_hz) and 0 < s.sample_rate_hz <= 100000):
        raise SpecError(f"input spec: sample rate {s.sample_rate_hz} Hz out of range")
    if not (0 < s.hop <= s.window <= 8192):
        raise SpecError(f"input spec: hop {s.hop} / window {s.window} out of range")
    if s.flags & ~FLAG_OFFLINE:
        raise SpecError(f"input spec: unknown flags {s.flags:#x}")
    if len(s.mean) != nc or len(s.std) != nc or not np.all(np.isfinite(s.mean)) \
            or not np.all(np.isfinite(s.std) & (np.asarray(s.std) > 0)):
        raise SpecError("input spec: normalization must be finite, one mean and one positive std per channel")
    if len(s.out_map) != nc or any(not 0 <= m < s.slots for m in s.out_map):
        raise SpecError(f"input spec: channel map {s.out_map} outside the {s.slots} slots")
    if s.offline and (s.stages or nr != nc):
        raise SpecError("input spec: an offline-preprocessed input has no chain and one raw channel per model channel")
    if not np.all(np.isfinite(s.sos)):
        raise SpecError("input spec: non-finite filter coefficient")
    for i, st in enumerate(s.stages):
        ok = (st.count > 0 and st.src + st.count <= s.slots and st.dst >= nr and st.dst + st.count <= s.slots)
        if st.op == "median":
            ok = ok and st.arg0 == 3 and st.arg1 == 0
        elif st.op == "sos":
            ok = ok and st.arg1 > 0 and st.arg0 + st.arg1 <= len(s.sos)
        else:
            ok = ok and st.src2 + st.count <= s.slots
        if not ok:
            raise SpecError(f"input spec: stage {i} ({st.op}, {st.count} channels, slots {st.src}/{st.src2} -> "
                            f"{st.dst}, args {st.arg0} {st.arg1}) does not fit its {s.slots} slots / {len(s.sos)} sections")
    if s.state_floats() > MAX_STATE:
        raise SpecError(f"input spec: the chain needs {s.state_floats()} floats of state, the firmware has {MAX_STATE}")


# -- the device's arithmetic, mirrored ----------------------------------------------------------
def run_chain(spec: InputSpec, raw) -> np.ndarray:
    """raw [N, len(spec.raw)] sensor samples -> float32 [N, C] model channels, exactly as the
    firmware computes them sample by sample from a reset: each stage's state starts from its
    input at the first sample (median history = that value; SOS state = zi x that value, the
    steady state for a constant input), then per sample, stage by stage, in float32:
      median3(a, b, c) = max(min(a, b), min(max(a, b), c))   (c the newest)
      SOS, direct form II transposed, per section:  y = b0*x + z0;  z0 = (b1*x - a1*y) + z1;  z1 = b2*x - a2*y
      sub: a - b."""
    f32 = np.float32
    X = np.asarray(raw, f32)
    n = len(X)
    if X.ndim != 2 or X.shape[1] != len(spec.raw):
        raise SpecError(f"raw samples of shape {X.shape}, the spec has {len(spec.raw)} raw channels")
    out = np.empty((n, len(spec.channels)), f32)
    if n == 0:
        return out
    slots = np.zeros(spec.slots, f32)
    hist, z = {}, {}
    for t in range(n):
        slots[:len(spec.raw)] = X[t]
        for i, st in enumerate(spec.stages):
            x = slots[st.src:st.src + st.count].copy()
            if st.op == "median":
                if t == 0:
                    hist[i] = [x.copy(), x.copy()]
                a, b = hist[i]
                y = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), x))
                hist[i] = [b, x]
            elif st.op == "sos":
                sec = spec.sos[st.arg0:st.arg0 + st.arg1]
                if t == 0:
                    z[i] = [(sec[k, 5] * x, sec[k, 6] * x) for k in range(st.arg1)]   # zi of section k x its stage input
                y = x
                for k in range(st.arg1):
                    b0, b1, b2, a1, a2 = (f32(v) for v in sec[k, :5])
                    z0, z1 = z[i][k]
                    yk = b0 * y + z0
                    z[i][k] = ((b1 * y - a1 * yk) + z1, b2 * y - a2 * yk)
                    y = yk
            else:
                y = x - slots[st.src2:st.src2 + st.count]
            slots[st.dst:st.dst + st.count] = y
        out[t] = slots[spec.out_map]
    return out
