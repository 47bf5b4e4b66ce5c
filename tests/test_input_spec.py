"""The blob's input spec (docs/blob-format.md "Input spec"): the chain the device runs is the
training recipe's, its float32 host mirror is what the firmware computes (the QEMU streaming
test in test_device.py proves the bit-for-bit part), and both readers -- quantize/blob.py and
the C++ slimhar_blob -- refuse every malformed spec with their own clear status."""
from __future__ import annotations

import math
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from slimhar.quantize import input_spec as isp
from slimhar.quantize.blob import CRC_OFFSET, Blob, BlobError, crc32_of
from slimhar.train.data import device_spec, hapt

REPO = Path(__file__).resolve().parents[1]
HAVE_PIO = (REPO / ".pio-venv" / "bin" / "pio").exists() and shutil.which("g++") is not None


def _facts(ds="hapt-uci"):
    return {"name": ds, "channel_names": hapt.CHANNELS, "sample_rate_hz": 50.0, "window": 128,
            "class_names": hapt.CLASS_NAMES, "norm_mean": [0.1] * 9, "norm_std": [0.5] * 9}


def test_device_chain_is_the_causal_training_recipe():
    """run_chain (the device's float32 arithmetic) on a raw recording gives the causal recipe's
    float64 features within float32 rounding; the zero-phase recipe is far from it (so the
    comparison can tell the recipes apart)."""
    spec = device_spec({"recipe": "causal"}, _facts())
    _, sig, _ = hapt.read_recordings()[0]
    sig = sig[:4000]
    dev = isp.run_chain(spec, sig)
    ref = hapt.preprocess(sig, "causal")
    assert dev.dtype == np.float32 and dev.shape == (4000, 9)
    assert np.abs(dev - ref).max() < 2e-4
    assert np.abs(dev - hapt.preprocess(sig, "zero-phase")).max() > 1e-2


def test_run_chain_is_causal_and_restarts_from_the_first_sample():
    spec = device_spec({"recipe": "causal"}, _facts())
    _, sig, _ = hapt.read_recordings()[1]
    full = isp.run_chain(spec, sig[:600])
    assert np.array_equal(isp.run_chain(spec, sig[:300]), full[:300])        # the future does not matter
    const = isp.run_chain(spec, np.repeat(sig[:1], 50, axis=0))              # steady state from sample 0
    assert np.allclose(const[:, 6:9], sig[0, :3], atol=1e-5) and np.allclose(const[:, :3], 0, atol=1e-5)


def test_spec_round_trips_and_the_zero_phase_recipe_is_offline():
    spec = device_spec({"recipe": "causal"}, _facts())
    b = isp.pack(spec)
    back = isp.unpack(b, 0, len(b))
    assert isp.pack(back) == b and back.describe() == spec.describe()
    assert [n for n, _ in back.raw] == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert back.hop == 64 and back.sample_rate_hz == 50.0 and back.class_names == hapt.CLASS_NAMES
    off = device_spec({}, _facts())
    assert off.offline and not off.stages and off.raw == off.channels
    bm = device_spec({}, {**_facts("basicmotions"), "window": 100})
    assert not bm.offline and not bm.stages and bm.hop == 50


def test_blob_carries_the_checkpoint_spec(hapt_blob):
    b = Blob.open(hapt_blob[0])
    assert b.spec.stages and not b.spec.offline and len(b.spec.raw) == 6
    assert np.array_equal(b.norm_mean, b.spec.mean) and b.info()["input_spec"]["chain"].startswith("median")


# -- malformed specs: one field changed, the CRC made right -------------------------------------
def _spec_fields(data: bytes):
    off = struct.unpack_from("<I", data, 44)[0]
    _m, _v, _f, size, _r, _w, _h, n_raw, n_ch, _s, n_st, n_sos, _x, n_cls, _y = isp.HEAD.unpack_from(data, off)
    names = off + 32
    norm = names + 24 * (n_raw + n_ch)
    omap = norm + 8 * n_ch
    stages = omap + n_ch + (-n_ch) % 4
    sos = stages + 8 * n_st
    return dict(off=off, size=size, n_ch=n_ch, norm=norm, omap=omap, stages=stages, sos=sos)


def _patched(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for at, fmt, value in edits:
        struct.pack_into(fmt, b, at, value)
    struct.pack_into("<I", b, CRC_OFFSET, crc32_of(b))
    return bytes(b)


def _cases(data: bytes):
    f = _spec_fields(data)
    o, st = f["off"], f["stages"]
    too_much_state = [(o + 22, "<B", 64)] + [e for k in range(3) for e in
                                             ((st + 8 * k + 1, "<B", 58), (st + 8 * k + 2, "<B", 0), (st + 8 * k + 4, "<B", 6))]
    return {
        "magic": [(o, "<4s", b"XSPC")],
        "spec_version": [(o + 4, "<H", 2)],
        "unknown_flag": [(o + 6, "<H", 2)],
        "offline_with_a_chain": [(o + 6, "<H", 1)],
        "size": [(o + 8, "<I", f["size"] + 4)],
        "rate_zero": [(o + 12, "<f", 0.0)],
        "rate_nan": [(o + 12, "<f", math.nan)],
        "hop_zero": [(o + 18, "<H", 0)],
        "hop_above_window": [(o + 18, "<H", 129)],
        "window_differs_from_header": [(o + 16, "<H", 64)],
        "no_raw_channels": [(o + 20, "<B", 0)],
        "fewer_slots_than_raw": [(o + 22, "<B", 5)],
        "std_zero": [(f["norm"] + 4 * f["n_ch"], "<f", 0.0)],
        "mean_inf": [(f["norm"], "<f", math.inf)],
        "map_outside_slots": [(f["omap"], "<B", 24)],
        "unknown_op": [(st, "<B", 7)],
        "median_not_3": [(st + 5, "<B", 5)],
        "stage_writes_raw_slot": [(st + 4, "<B", 2)],
        "stage_reads_past_slots": [(st + 2, "<B", 20)],
        "sos_sections_past_table": [(st + 8 + 6, "<B", 9)],
        "sub_second_operand_past_slots": [(st + 24 + 3, "<B", 22)],
        "coefficient_nan": [(f["sos"] + 4, "<f", math.nan)],
        "state_too_large": too_much_state,
    }


NAMES = ["magic", "spec_version", "unknown_flag", "offline_with_a_chain", "size", "rate_zero", "rate_nan", "hop_zero",
         "hop_above_window", "window_differs_from_header", "no_raw_channels", "fewer_slots_than_raw", "std_zero",
         "mean_inf", "map_outside_slots", "unknown_op", "median_not_3", "stage_writes_raw_slot",
         "stage_reads_past_slots", "sos_sections_past_table", "sub_second_operand_past_slots", "coefficient_nan",
         "state_too_large"]


def test_python_reader_refuses_each_malformed_spec(hapt_blob):
    data = Path(hapt_blob[0]).read_bytes()
    cases = _cases(data)
    assert sorted(cases) == sorted(NAMES)
    for name, edits in cases.items():
        with pytest.raises(BlobError, match=r"model\.blob: input spec") as e:
            Blob(_patched(data, edits), str(hapt_blob[0]))
        assert "\n" not in str(e.value), name
    Blob(_patched(data, []), "same bytes")           # the control opens


def test_older_blob_version_is_refused_by_name(hapt_blob):
    data = Path(hapt_blob[0]).read_bytes()
    with pytest.raises(BlobError, match="blob version 2, this reader reads version 3"):
        Blob(_patched(data, [(8, "<H", 2)]), "old.blob")


@pytest.mark.skipif(not HAVE_PIO, reason="needs `make setup` (PlatformIO, g++)")
def test_cpp_reader_refuses_each_malformed_spec(hapt_blob, tmp_path):
    """The same damaged blobs through the firmware's reader (host build of engine_check): each is
    refused as a bad input spec; the undamaged blob opens and runs."""
    from slimhar.tools import engine_check as ec
    prog = ec.build("host")
    data = Path(hapt_blob[0]).read_bytes()
    good = tmp_path / "good.blob"
    good.write_bytes(data)
    assert ec.run("host", prog, good, [(0, np.zeros((1, 128 * 9), np.int8))]).records[0].status == 0
    for name, edits in _cases(data).items():
        p = tmp_path / f"{name}.blob"
        p.write_bytes(_patched(data, edits))
        with pytest.raises(ec.EngineCheckError, match="bad input spec"):
            ec.run("host", prog, p, [])
