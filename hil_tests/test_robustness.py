"""(6) Bad input: random and malformed lines, feed lines with a bad CRC, a sequence gap or the
wrong count, over-long lines -- each gets error lines only and changes nothing else; the device
keeps serving and counts them. A damaged blob in the image is refused at boot with one line.
Plus the fault handler: a fault is reported over the console and the device restarts."""
from __future__ import annotations

import random
import zlib

import pytest

from slimhar.tools import device as dv


def test_garbage_lines_get_errors_and_the_device_keeps_serving(device):
    rng = random.Random(11)
    # no "reset" (stats reset would clear the count) and no "%" (a line terminator)
    words = ["feed", "db", "infer", "subnet", "set", "battery", "budget", "load", "stream", "stats", "*",
             "-1", "99999999999", "0x10", "nan", "1e99", "ms", "on", "off", "print", "list", "\x00", "\xff"]
    if not device.emulated:
        words.remove("load")        # `load set` is the emulated board's load generator
    errors = 0
    for k in range(5000):
        kind = 3 if k % 50 == 49 else k % 3   # 100 over-long lines: each byte costs QEMU's UART ~0.1 ms
        if kind == 0:     # random bytes, no line breaks
            line = "".join(chr(rng.randint(1, 255)) for _ in range(rng.randint(1, 120)))
            line = line.replace("\n", " ").replace("\r", " ").replace("%", " ")
        elif kind == 1:   # plausible words in random order
            line = " ".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
        elif kind == 2:   # feed lines with a bad CRC, a sequence gap or a wrong count
            line = dv.feed_line(rng.randint(1, 10**6), [rng.uniform(-5, 5) for _ in range(rng.choice([6, 7, 18]))])
            line = line[:-1] + ("0" if line[-1] != "0" else "1") if rng.random() < 0.5 else line
        else:             # over-long lines
            line = "x" * rng.randint(2049, 2400)
        if not line.strip():
            continue
        out = device.command(line, check=False, timeout=20)
        errors += sum(r.startswith("e-[") for r in out)
        assert all(r.startswith(("e-[", "m-", "info ")) for r in out), (line[:80], out)
    assert errors > 4000
    assert int(device.info()["blob"]["subnets"]) > 0
    st = device.stats()
    assert int(st["errors"]) == errors and int(st["lines"]) >= 5000


def test_each_bad_feed_is_refused_and_changes_nothing(device, board, recording):
    blob = board.blob
    R = len(blob.spec.raw)
    X = recording(blob, 0, 500, 64)
    assert device.feed(X[:4]) == []                                  # seq 0 accepted
    good = dv.feed_line(1, X[4:8].reshape(-1))
    cases = {
        "bad CRC": good[:-8] + f"{(int(good[-8:], 16) ^ 1):08x}",
        "sequence gap": dv.feed_line(5, X[4:8].reshape(-1)),
        "wrong count": dv.feed_line(1, X[4:8].reshape(-1)[:-1]),
        "too many samples": dv.feed_line(1, X[4:13].reshape(-1)),
        "not a number": (lambda b: f"{b} *{zlib.crc32(b.encode()):08x}")("feed 1 " + " ".join(["abc"] * R)),
        "infinite value": (lambda b: f"{b} *{zlib.crc32(b.encode()):08x}")("feed 1 " + " ".join(["inf"] * R)),
        "no CRC": "feed 1 " + " ".join(["0.5"] * R),
    }
    for what, line in cases.items():
        out = device.command(line, check=False)
        assert len(out) == 1 and out[0].startswith("e-[feed"), (what, out)
    st = device.stats()
    assert int(st["samples"]) == 4 and int(st["errors"]) == len(cases)
    device.seq = 1
    assert device.feed(X[4:8]) == []                                 # the stream goes on where it was
    assert int(device.stats()["samples"]) == 8


def test_overlong_line_is_one_error(device):
    out = device.command("info " + "y" * 4000, check=False, timeout=30)
    assert len(out) == 1 and out[0].startswith("e-[line"), out
    assert device.command("name") == ["m-name-dut-[slimhar]"]


def test_fault_is_reported_and_the_device_restarts(device, board):
    device.write_line("debug fault")
    line = device.readline()
    while not line.startswith("fault:"):
        line = device.readline()
    assert line.startswith("fault: ")
    boot = []
    while (r := device.readline(timeout=600)) != "m-ready":
        boot.append(r)
    assert boot[0].startswith("slimhar: firmware") and boot[-1] == "m-init-done"
    assert device.command("name") == ["m-name-dut-[slimhar]"]


@pytest.mark.emulator
def test_damaged_blob_in_the_image_is_refused_at_boot(board, tmp_path):
    """A copy of the firmware ELF with one byte of its embedded blob flipped: the firmware says
    which check failed, says it halted, and serves nothing (a board does the same with a
    corrupted flash)."""
    blob = board.blob_path.read_bytes()
    elf = bytearray(board.elf.read_bytes())
    at = elf.find(blob[:64])
    assert at > 0 and elf[at:at + len(blob)] == blob, "the blob is embedded verbatim"
    elf[at + len(blob) // 2] ^= 0x01
    bad = tmp_path / "damaged.elf"
    bad.write_bytes(bytes(elf))
    with dv.Qemu(bad) as q, dv.Device(q.url, timeout=60) as d:
        lines = [d.readline() for _ in range(3)]
    assert lines[0].startswith("slimhar: firmware")
    assert lines[1] == "e-[blob: CRC mismatch]", lines
    assert lines[2] == "slimhar: halted (the embedded blob is unusable)"
