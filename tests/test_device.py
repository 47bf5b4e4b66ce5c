"""`slimhar device info / stream / bench --qemu`: the host CLI against the firmware in QEMU.
The device itself -- boot, info, streaming bit for bit, MLPerf Tiny, the policy, the runtime
experiments, bad input, faults -- is tested by the HIL suite (hil_tests/, `make hil`), which
runs against the emulated board or a real one."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slimhar.quantize.blob import Blob

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (REPO / ".pio-venv" / "bin" / "pio").exists() or shutil.which("qemu-system-arm") is None,
                                reason="needs `make setup` (PlatformIO, QEMU)")


def test_device_cli(hapt_blob, tmp_path):
    """`slimhar device info / stream / bench --qemu` end to end, and one-line errors for a bad target."""
    import json
    import subprocess
    import sys
    run = lambda *a: subprocess.run([sys.executable, "-m", "slimhar", "device", *a], capture_output=True, text=True, cwd=REPO)
    r = run("info", "--qemu", "--blob", str(hapt_blob[0]))
    assert r.returncode == 0, r.stderr
    assert "protocol 2" in r.stdout and "w100_t128" in r.stdout and "policy: auto" in r.stdout
    r = run("stream", "--qemu", "--blob", str(hapt_blob[0]), "--samples", "320", "--json", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "s.json").read_text())
    assert len(res["results"]) == 4 and res["stats"]["drops"] == "0"
    assert "320 samples -> 4 windows: 4 ran" in r.stdout
    r = run("bench", "--qemu", "--blob", str(hapt_blob[0]), "--runs", "1", "--warmup", "0", "--json", str(tmp_path / "b.json"))
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "b.json").read_text())
    assert len(rows) == len(Blob.open(hapt_blob[0]).subnets) and all(x["per_run"] > x["macs"] / 2 for x in rows)
    for args, msg in ((["info"], "give exactly one of --port PORT and --qemu"),
                      (["info", "--port", "/dev/nonexistent-tty"], "cannot open /dev/nonexistent-tty"),
                      (["stream", "--qemu", "--recording", "hapt-uci:x"], "hapt-uci:K with K a number")):
        r = run(*args)
        assert r.returncode == 1 and msg in r.stderr and r.stderr.count("\n") <= 2, (args, r.stderr)
