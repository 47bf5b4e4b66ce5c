"""The firmware's C++ int8 engine against TFLM -- the oracle -- bit for bit, on real windows:
every subnet of BasicMotions blobs (CNN and ResNet), of a hapt-uci blob (T=128, 9 axes) and of
the default firmware blob; on the host (gcc) and on the emulated Cortex-M4F in QEMU with both
kernel flavours (DSP and portable). `make engine-check-hapt` runs the full 171-subnet grid."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from slimhar.quantize.arena import memory_plan
from slimhar.quantize.blob import Blob
from slimhar.tools import engine_check as ec
from slimhar.train.config import load_config
from slimhar.train.trainer import load_data

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (REPO / ".pio-venv" / "bin" / "pio").exists() or shutil.which("qemu-system-arm") is None,
                                reason="needs `make setup` (PlatformIO, QEMU)")


@pytest.fixture(scope="session")
def programs():
    return {kind: ec.build(kind) for kind in ("host", "dsp", "portable")}


def _windows(blob: Blob, cfg: dict, n: int) -> np.ndarray:
    X = load_data(cfg).test.X[:n]
    return ((X - blob.norm_mean) / blob.norm_std).astype(np.float32)


def _check(kind: str, program: Path, blob_path: Path, cfg: dict, n: int, budget: int | None = None,
           ram_limit: int = 0) -> ec.Result:
    blob = Blob.open(blob_path)
    X = _windows(blob, cfg, n)
    records, refs = [], []
    for i, s in enumerate(blob.subnets):
        xq = ec.subnet_inputs(blob, s, X)
        records.append((i, xq, ram_limit))
        refs.append(ec.tflm_outputs(blob, s, xq))
    res = ec.run(kind, program, blob_path, records)
    assert len(res.records) == len(blob.subnets)
    for r, ref, s in zip(res.records, refs, blob.subnets):
        assert r.status == 0, f"{kind} {s.name}: {ec.STATUS[r.status]}"
        diff = r.outputs.astype(int) - ref
        assert not diff.any(), f"{kind} {s.name}: {np.count_nonzero(diff)} of {diff.size} logits differ from TFLM"
        assert r.macs == s.macs
        mp = memory_plan(blob, s, ram_limit=ram_limit) if budget is None else memory_plan(blob, s, budget, ram_limit)
        assert r.arena_bytes == mp.arena_bytes <= 1.10 * s.arena_bytes, s.name   # planner == its mirror, near ideal
        if res.flavour == "dsp":
            assert r.scratch_bytes == mp.scratch_bytes, s.name
        if budget is None and not ram_limit:   # quantize/plan.py's stored plan is what Prepare computes, field by field
            assert r.stored_plan == "proven", f"{kind} {s.name}: stored plan {r.stored_plan}"
            if kind != "host":   # and a cold prepare from it is cheaper (QEMU's -icount clock)
                assert 0 < r.stored_prepare_instructions < r.prepare_instructions, s.name
    return res


@pytest.mark.parametrize("kind,windows", [("host", 40), ("dsp", 8), ("portable", 2)])
def test_engine_equals_tflm_on_basicmotions(exported, programs, kind, windows):
    res = _check(kind, programs[kind], exported["dir"] / "model.blob", exported["cfg"], windows)
    assert res.flavour == ("portable" if kind != "dsp" else "dsp")
    if kind != "host":    # instruction counts come from QEMU's -icount clock
        assert all(r.invoke_instructions > r.macs / 4 for r in res.records)


@pytest.mark.parametrize("kind,windows", [("host", 64), ("dsp", 4), ("portable", 1)])
def test_engine_equals_tflm_on_hapt(hapt_blob, programs, kind, windows):
    path, cfg = hapt_blob
    _check(kind, programs[kind], path, cfg, windows)


def test_dsp_engine_at_another_scratch_budget(hapt_blob, programs, tmp_path, monkeypatch):
    """A DSP build with an 8 KiB scratch budget: other tiles, most scratch inside the activations'
    gaps -- still bit-exact with TFLM, and its arena + scratch what quantize/arena.py computes for
    that budget (what `export-c --dsp-scratch-budget` sizes a firmware with)."""
    path, cfg = hapt_blob
    monkeypatch.setenv("PLATFORMIO_BUILD_FLAGS", "-DSLIMHAR_DSP_SCRATCH_BUDGET=8192")
    elf = ec.build("dsp", build_dir=tmp_path / "build")   # apart: the session's builds stay as they are
    monkeypatch.delenv("PLATFORMIO_BUILD_FLAGS")
    res = _check("dsp", elf, path, cfg, 2, budget=8192)
    default = _check("dsp", programs["dsp"], path, cfg, 1)
    assert sum(r.scratch_bytes for r in res.records) < sum(r.scratch_bytes for r in default.records)


def test_dsp_engine_at_least_ram(hapt_blob, programs):
    """Every subnet prepared with Plan::ram_limit 1 (its least arena + scratch: smaller DSP tiles
    where they lower the peak) -- still bit-exact with TFLM, its arena + scratch what
    quantize/arena.py computes for that limit (what `export-c --least-ram` sizes a firmware with),
    and below the default plans' on the subnets whose scratch did not fit the activations' gaps."""
    path, cfg = hapt_blob
    least = _check("dsp", programs["dsp"], path, cfg, 2, ram_limit=1)   # each record carries the limit
    default = _check("dsp", programs["dsp"], path, cfg, 1)
    pairs = [(a.arena_bytes + a.scratch_bytes, b.arena_bytes + b.scratch_bytes) for a, b in zip(least.records, default.records)]
    assert all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def test_default_firmware_blob_every_subnet(programs):
    """The blob `make firmware-blob` embeds (BasicMotions CNN, all 25 subnets)."""
    path = REPO / "runs" / "firmware" / "model.blob"
    if not path.exists():
        pytest.skip("run `make firmware-blob` first (make test does)")
    cfg = load_config("basicmotions_cnn")
    _check("host", programs["host"], path, cfg, 40)
    res = _check("dsp", programs["dsp"], path, cfg, 2)
    assert 0 < res.switch_instructions <= 2000          # a cached switch: a lookup, no copy


def test_blob_multipliers_are_what_prepare_computes(exported, programs, tmp_path):
    """Each subnet's multiplier table (requant.py, at export) is, op by op, what the engine's
    Prepare computes in double as TFLM does from the standalone .tflite -- whose weight scales
    `unpack` gave back from that same table (the blob carries none: tflite_io.drop_weight_scales)
    -- and what PrepareSubnet runs with (engine_check reports a CRC-32 of each op's multipliers
    and shifts as the plan holds them)."""
    import zlib
    from slimhar.quantize.tflite_io import weighted_ops
    blob_path = exported["dir"] / "model.blob"
    blob = Blob.open(blob_path)
    zeros = lambda s: np.zeros((1, s.resolution * blob.axes), np.int8)
    in_blob = ec.run("host", programs["host"], blob_path, [(i, zeros(s)) for i, s in enumerate(blob.subnets)])
    for i, s in enumerate(blob.subnets):
        mult, shift = blob.multipliers(s)
        expected, k = [], 0
        for _x, _w, _y, n in weighted_ops(blob.model(s)):
            expected.append(zlib.crc32(mult[k:k + n].astype("<i4").tobytes() + shift[k:k + n].tobytes()))
            k += n
        assert k == len(mult) > 0
        (tmp_path / "alone.tflite").write_bytes(blob.unpack(s))
        alone = ec.run("host", programs["host"], tmp_path / "alone.tflite", [(0, zeros(s))]).records[0]
        mine = in_blob.records[i]
        assert mine.status == alone.status == 0, s.name
        weighted = lambda r: [c for c, kind in zip(r.op_mult_crcs, r.op_kinds) if kind in ("CONV_2D", "FULLY_CONNECTED")]
        assert weighted(alone) == expected, f"{s.name}: Prepare computes other multipliers than the blob's table"
        assert weighted(mine) == expected, f"{s.name}: the plan does not use the blob's table"
        assert all(c == 0 for c, kind in zip(mine.op_mult_crcs, mine.op_kinds) if kind not in ("CONV_2D", "FULLY_CONNECTED"))


def test_int16_bias_runs_only_inside_a_blob(exported, programs, tmp_path):
    """The blob stores a bias whose values fit as int16 (tflite_io.blob_form) and the engine reads
    it there; the same narrowed bias in a standalone .tflite is refused (bad tensor), since TFLM
    reads such a bias differently (it gives other logits)."""
    from slimhar.quantize.tflite_io import blob_form, pack, read_model
    blob_path = exported["dir"] / "model.blob"
    blob = Blob.open(blob_path)
    s = blob.subnets[0]
    narrowed = pack(blob_form(read_model(blob.unpack(s))))       # weights inside, biases int16
    assert any(t.type == 7 for t in read_model(narrowed).subgraphs[0].tensors)
    (tmp_path / "narrow.tflite").write_bytes(narrowed)
    x = np.zeros((1, s.resolution * blob.axes), np.int8)
    r = ec.run("host", programs["host"], tmp_path / "narrow.tflite", [(0, x)]).records[0]
    assert ec.STATUS[r.prepare_status] == "bad tensor"
    assert ec.run("host", programs["host"], blob_path, [(0, x)]).records[0].status == 0


def test_engine_check_refuses_bad_input(programs, tmp_path, exported):
    """A window of the wrong size is reported per record, not run; a corrupt blob stops it."""
    blob_path = exported["dir"] / "model.blob"
    blob = Blob.open(blob_path)
    s = blob.subnets[0]
    res = ec.run("host", programs["host"], blob_path, [(0, np.zeros((1, s.resolution * blob.axes + 1), np.int8))])
    assert res.records[0].status == 1 and res.records[0].outputs.size == 0
    bad = bytearray(blob_path.read_bytes())
    bad[len(bad) // 2] ^= 1
    (tmp_path / "bad.blob").write_bytes(bytes(bad))
    with pytest.raises(ec.EngineCheckError, match="CRC"):
        ec.run("host", programs["host"], tmp_path / "bad.blob", [])


def test_bench_engine_cli(exported, programs, tmp_path):
    """`slimhar bench engine` prints its table and writes JSON + plot (numbers are reported,
    never asserted: only that both kernel flavours agree and every field is there)."""
    import json
    import subprocess
    import sys
    blob_path = exported["dir"] / "model.blob"
    r = subprocess.run([sys.executable, "-m", "slimhar", "bench", "engine", "--blob", str(blob_path), "--no-firmware",
                        "--windows", "1", "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "b.png")],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "instructions / MAC" in r.stdout and "switch between prepared subnets" in r.stdout
    res = json.loads((tmp_path / "b.json").read_text())
    assert len(res["rows"]) == len(Blob.open(blob_path).subnets)
    assert all(x["dsp_equals_portable"] and x["dsp_instructions"] > 0 for x in res["rows"])
    assert (tmp_path / "b.png").stat().st_size > 0
    # accuracy per subnet: validation from the blob's table, test from quantize's report beside it
    blob = Blob.open(blob_path)
    report = {x["name"]: x for x in exported["report"]["rows"]}
    for x, s in zip(res["rows"], blob.subnets):
        assert x["val_int8_acc"] == s.int8_acc and x["test_int8_acc"] == report[s.name]["int8_acc"]
        assert x["est_ms_at_64mhz"] == x["dsp_instructions"] / 64e3
