"""The firmware's application in QEMU (mps2-an386, -icount shift=0), driven over its serial
protocol exactly as a host would: boot, `info`, streaming a real held-out hapt-uci recording
through `feed` (one result per hop, the device's int8 inputs bit-identical to the host
reference, classes equal to TFLM's), the MLPerf Tiny command sequence, the policy under load
steps from the firmware's own load generator, garbage on the link, and the fault handler."""
from __future__ import annotations

import random
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from slimhar.quantize.blob import Blob, repack
from slimhar.quantize.oracle import Tflm
from slimhar.tools import device as dv

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (REPO / ".pio-venv" / "bin" / "pio").exists() or shutil.which("qemu-system-arm") is None,
                                reason="needs `make setup` (PlatformIO, QEMU)")


@pytest.fixture(scope="module")
def front_blob(hapt_blob, tmp_path_factory):
    """The hapt-uci test blob with its int8 accuracy table replaced by one that rises with MACs
    (a 1-epoch model's own table is noise), so every subnet is on the policy's front and the
    policy has somewhere to move. Only the table changes: models and pool are the same bytes."""
    path, cfg = hapt_blob
    blob = Blob.open(path)
    order = sorted(range(len(blob.subnets)), key=lambda i: blob.subnets[i].macs)
    acc = {i: 0.90 + 0.005 * r for r, i in enumerate(order)}
    out = tmp_path_factory.mktemp("front") / "model.blob"
    out.write_bytes(repack(blob, None, acc))
    return out, cfg


@pytest.fixture(scope="module")
def elf(front_blob):
    return dv.build_firmware(front_blob[0])


@pytest.fixture()
def dev(elf):
    with dv.Qemu(elf) as q, dv.Device(q.url, timeout=60) as d:
        d.wait_ready()
        yield d


def _recording(n: int = 1000) -> np.ndarray:
    """n raw samples (acc g, gyro rad/s: float32 [n, 6]) of the first held-out (test-subject)
    hapt-uci recording: the device runs the causal chain of the blob's input spec on them."""
    return dv.held_out_recording(0, 500, n)[1]


def test_boots_ready_and_info_is_the_blob(dev, front_blob):
    blob = Blob.open(front_blob[0])
    assert dev.boot[0].startswith("slimhar: firmware") and dev.boot[-1] == "m-init-done"
    info = dev.info()
    assert int(info["blob"]["subnets"]) == len(blob.subnets)
    assert int(info["blob"]["crc"], 16) == int.from_bytes(blob.data[16:20], "little")
    assert (int(info["blob"]["window"]), int(info["blob"]["axes"])) == (blob.window, blob.axes)
    assert int(info["blob"]["rate_mhz"]) == 50000 and int(info["blob"]["hop"]) == 64
    assert info["input"]["raw"] == "acc_x:g,acc_y:g,acc_z:g,gyro_x:rad/s,gyro_y:rad/s,gyro_z:rad/s"
    assert info["input"]["chain"] == "median3x6,sos2x6,sos2x3,subx3"
    assert info["input"]["channels"].split(",") == [n for n, _ in blob.spec.channels]
    assert info["classes"]["names"].split(",") == blob.spec.class_names
    for row, s in zip(info["subnets"], blob.subnets):
        assert row["name"] == s.name and int(row["macs"]) == s.macs
        assert int(row["acc_bp"]) == round(s.int8_acc * 10000)
        assert int(row["instructions"]) > s.macs / 2          # measured at start-up on the core
    assert sum(int(r["front"]) for r in info["subnets"]) == len(blob.subnets)


def test_streamed_recording_matches_host_bit_for_bit(dev, front_blob):
    """A real held-out recording, raw acc + gyro as the sensor gives them, fed at the sensor rate
    (50 Hz, 4 samples a line): the device runs the causal chain, windows, resizes, normalizes
    and quantizes; one result per hop, none lost or duplicated, each window's int8 input equal
    to the host reference's (quantize/input_spec.run_chain + the same windowing; CRC-32 of the
    bytes) and its logits equal to TFLM's on that input."""
    blob = Blob.open(front_blob[0])
    X = _recording(1000)
    sub = len(blob.subnets) - 1
    dev.command(f"subnet set {sub}")
    dev.command("stream on")
    res = dev.stream(X, samples_per_line=4, rate_hz=50.0)
    refs = dv.reference_inputs(blob, sub, X)
    assert [int(r["end"]) for r in res] == [end for end, _ in refs]          # one per hop, in order
    assert [int(r["seq"]) for r in res] == list(range(len(refs)))
    tf = Tflm(blob.unpack(blob.subnets[sub]))
    for r, (end, xq) in zip(res, refs):
        assert int(r["in_crc"], 16) == zlib.crc32(xq.tobytes()), f"window ending at {end}: int8 input differs"
        logits = tf.run(xq[None, :, :, None])[0]
        assert [int(v) for v in r["logits"].split(",")] == logits.tolist()
        assert int(r["class"]) == int(np.argmax(logits))
    st = dev.stats()
    assert (int(st["windows"]), int(st["ran"]), int(st["drops"]), int(st["errors"])) == (len(refs), len(refs), 0, 0)
    assert int(st["samples"]) == len(X)


def test_policy_choice_drives_each_window(dev):
    """In auto mode every window runs the policy's subnet: with the whole hop as budget the most
    accurate (here: the largest); with a budget between the two largest subnets' measured
    latencies, the second largest from the next window on."""
    lat = sorted((int(r["latency_us"]), int(r["i"])) for r in dev.info()["subnets"])
    dev.command("stream on")
    X = _recording(128 + 64 * 6)
    res = dev.stream(X[:128 + 64], samples_per_line=8)
    assert [int(r["subnet"]) for r in res] == [lat[-1][1]] * 2
    dev.command(f"budget set {(lat[-2][0] + lat[-1][0]) // 2000}ms")
    res = dev.stream(X[128 + 64:], samples_per_line=8)
    assert len(res) == 5 and {int(r["subnet"]) for r in res} == {lat[-2][1]}
    assert all(int(r["over"]) == 0 for r in res)


def test_mlperf_tiny_sequence(dev, front_blob):
    """name, db load N, db HEX (31 bytes a line, as the runner sends), infer N W, results: the
    runner's replies, a latency from the two m-lap-us stamps, and the logits of TFLM."""
    blob = Blob.open(front_blob[0])
    sub = 2
    assert dev.command("name%") == ["m-name-dut-[slimhar]"]
    dev.command(f"subnet set {sub}")
    X = _recording(128)
    _, xq = dv.reference_inputs(blob, sub, X)[0]
    data = xq.tobytes()
    assert dev.command(f"db load {len(data)}%") == [f"m-[Expecting {len(data)} bytes]"]
    replies = []
    for i in range(0, len(data), 31):
        replies += dev.command(f"db {data[i:i + 31].hex()}%")
    assert replies == ["m-load-done"]
    out = dev.command("infer 5 2%")
    assert out[:3] == ["m-warmup-start-2", "m-warmup-done", "m-infer-start-5"]
    laps = [int(r.split("-")[-1]) for r in out if r.startswith("m-lap-us-")]
    assert len(laps) == 2 and laps[1] > laps[0]
    assert "m-infer-done" in out
    ref = Tflm(blob.unpack(blob.subnets[sub])).run(xq[None, :, :, None])[0]
    int8 = next(r for r in out if r.startswith("m-results-int8-["))
    assert [int(v) for v in int8[len("m-results-int8-["):-1].split(",")] == ref.tolist()
    assert dev.command("results%")[1] == int8
    per_run = int(next(r for r in out if r.startswith("m-infer-instructions-per-run-")).split("-")[-1])
    assert (laps[1] - laps[0]) * 64 >= 5 * per_run * 0.99     # the stamps bracket the 5 timed runs


def test_load_steps_cost_at_most_one_window(dev):
    """The firmware's load generator (a timer interrupt busy for a share of every 100 us) makes
    inference slower; the policy's latency feedback moves it to a subnet that fits on the next
    window. Each rise of the load costs at most one window over budget; none otherwise."""
    info = dev.info()
    lat = sorted((int(r["latency_us"]), int(r["i"])) for r in info["subnets"])
    # a budget the largest subnet meets at no load but not at 30 %
    budget_ms = lat[-1][0] * 1.15 / 1000
    dev.command(f"budget set {max(1, round(budget_ms))}ms")
    dev.command("stream on")
    X = _recording(128 + 64 * 40)
    i, rows = 0, []
    per_step = {}
    for load in (0, 30, 60, 0, 60):
        dev.command(f"load set {load}")
        got = []
        while len(got) < 8:
            got += dev.feed(X[i:i + 8])
            i += 8
        per_step[len(per_step)] = sum(int(r["over"]) for r in got)
        rows += got
    assert all(v <= 1 for v in per_step.values()), per_step
    assert len({int(r["subnet"]) for r in rows}) >= 2          # it did move


def test_garbage_lines_get_errors_and_the_device_keeps_serving(dev):
    """5,000 random and malformed lines: each answered by error lines only (or a valid reply for
    the few that happen to be valid commands), never a hang; `info` still answers and `stats`
    counts the errors."""
    rng = random.Random(11)
    # no "reset" (stats reset would clear the count) and no "%" (a line terminator)
    words = ["feed", "db", "infer", "subnet", "set", "battery", "budget", "load", "stream", "stats", "load", "*",
             "-1", "99999999999", "0x10", "nan", "1e99", "ms", "on", "off", "print", "list", "\x00", "\xff"]
    dev.command("stats reset")
    errors = 0
    for k in range(5000):
        kind = 3 if k % 50 == 49 else k % 3   # 100 over-long lines: each byte costs QEMU's UART ~0.1 ms
        if kind == 0:     # random bytes, no line breaks
            line = "".join(chr(rng.randint(1, 255)) for _ in range(rng.randint(1, 120))).replace("\n", " ").replace("\r", " ").replace("%", " ")
        elif kind == 1:   # plausible words in random order
            line = " ".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
        elif kind == 2:   # feed lines with a bad CRC, a sequence gap or too few values
            line = dv.feed_line(rng.randint(1, 10**6), [rng.uniform(-5, 5) for _ in range(rng.choice([6, 7, 18]))])
            line = line[:-1] + ("0" if line[-1] != "0" else "1") if rng.random() < 0.5 else line
        else:             # over-long lines
            line = "x" * rng.randint(2049, 2400)
        if not line.strip():
            continue
        out = dev.command(line, check=False, timeout=20)
        errors += sum(r.startswith("e-[") for r in out)
        assert all(r.startswith(("e-[", "m-", "info ")) for r in out), (line[:80], out)
    assert errors > 4000
    info = dev.info()
    assert int(info["blob"]["subnets"]) > 0
    st = dev.stats()
    assert int(st["errors"]) == errors and int(st["lines"]) >= 5000


def test_fault_is_reported_and_the_device_restarts(dev):
    dev.write_line("debug fault")
    line = dev.readline()
    while not line.startswith("fault:"):
        line = dev.readline()
    assert line.startswith("fault: hardfault pc=0x")
    boot = []
    while (r := dev.readline()) != "m-ready":
        boot.append(r)
    assert boot[0].startswith("slimhar: firmware") and boot[-1] == "m-init-done"
    assert dev.command("name") == ["m-name-dut-[slimhar]"]


def test_device_cli(front_blob, tmp_path):
    """`slimhar device info / stream / bench --qemu` end to end, and one-line errors for a bad target."""
    import json
    import subprocess
    import sys
    run = lambda *a: subprocess.run([sys.executable, "-m", "slimhar", "device", *a], capture_output=True, text=True, cwd=REPO)
    r = run("info", "--qemu", "--blob", str(front_blob[0]))
    assert r.returncode == 0, r.stderr
    assert "protocol 2" in r.stdout and "w100_t128" in r.stdout and "policy: auto" in r.stdout
    r = run("stream", "--qemu", "--blob", str(front_blob[0]), "--samples", "320", "--json", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "s.json").read_text())
    assert len(res["results"]) == 4 and res["stats"]["drops"] == "0"
    assert "320 samples -> 4 windows: 4 ran" in r.stdout
    r = run("bench", "--qemu", "--blob", str(front_blob[0]), "--runs", "1", "--warmup", "0", "--json", str(tmp_path / "b.json"))
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "b.json").read_text())
    assert len(rows) == len(Blob.open(front_blob[0]).subnets) and all(x["per_run"] > x["macs"] / 2 for x in rows)
    for args, msg in ((["info"], "give exactly one of --port PORT and --qemu"),
                      (["info", "--port", "/dev/nonexistent-tty"], "cannot open /dev/nonexistent-tty"),
                      (["stream", "--qemu", "--recording", "hapt-uci:x"], "hapt-uci:K with K a number")):
        r = run(*args)
        assert r.returncode == 1 and msg in r.stderr and r.stderr.count("\n") <= 2, (args, r.stderr)
