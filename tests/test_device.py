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


def test_least_ram_firmware_runs_every_subnet(hapt_blob, tmp_path, monkeypatch):
    """A firmware built with -DSLIMHAR_LEAST_RAM=1: `export-c --least-ram` sizes its arena for the
    least RAM any subnet runs in (quantize/arena.py), the firmware passes that arena to every plan
    (Plan::ram_limit), and every subnet runs in QEMU through MLPerf Tiny's commands."""
    import json
    import re
    import subprocess
    import sys
    from slimhar.quantize.arena import blob_memory
    def bench(name: str, flags: str) -> list[dict]:
        monkeypatch.setenv("PLATFORMIO_BUILD_FLAGS", flags)
        monkeypatch.setenv("PLATFORMIO_BUILD_DIR", str(tmp_path / name))   # apart: the session's builds stay
        r = subprocess.run([sys.executable, "-m", "slimhar", "device", "bench", "--qemu", "--blob", str(hapt_blob[0]),
                            "--runs", "1", "--warmup", "0", "--json", str(tmp_path / f"{name}.json")],
                           capture_output=True, text=True, cwd=REPO)
        assert r.returncode == 0, r.stderr
        return json.loads((tmp_path / f"{name}.json").read_text())
    rows, default = bench("build", "-DSLIMHAR_LEAST_RAM=1"), bench("default", "")
    # `blob select`'s default firmware size covers the firmware as built (its flash without the blob)
    from slimhar.benchmarks.engine import elf_sizes
    from slimhar.quantize.select import FIRMWARE_BYTES
    flash = elf_sizes(tmp_path / "default" / "mps2_an386" / "firmware.elf")["flash_bytes"]
    assert 0 < flash - Path(hapt_blob[0]).stat().st_size <= FIRMWARE_BYTES, (flash, FIRMWARE_BYTES)
    # every subnet's cold switch decodes a proven stored plan -- the slower ones' least-RAM plan
    monkeypatch.setenv("PLATFORMIO_BUILD_FLAGS", "-DSLIMHAR_LEAST_RAM=1")
    monkeypatch.setenv("PLATFORMIO_BUILD_DIR", str(tmp_path / "build"))
    r = subprocess.run([sys.executable, "-m", "slimhar", "device", "info", "--qemu", "--blob", str(hapt_blob[0])],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    plans = dict(re.findall(r"^\s*\d+\s+(w\d+_t\d+)\s.*\s(stored|model)\s", r.stdout, re.M))
    blob = Blob.open(hapt_blob[0])
    assert [x["name"] for x in rows] == [s.name for s in blob.subnets] and all(x["per_run"] > x["macs"] / 2 for x in rows)
    # the subnets whose fastest plan does not fit the smaller arena take smaller tiles (slower), the rest keep theirs
    # (per_run counts SysTick ticks of 40 instructions: two runs of the same plan may differ by one)
    slower = [x["name"] for x, y in zip(rows, default) if x["per_run"] > y["per_run"] + 100]
    assert slower and all(x["per_run"] >= y["per_run"] - 100 for x, y in zip(rows, default)), (rows, default)
    assert sorted(plans) == sorted(s.name for s in blob.subnets) and set(plans.values()) == {"stored"}, r.stdout
    assert {s.name for s in blob.subnets if s.least_plan_size} == set(slower), (slower, r.stdout)
    header = (tmp_path / "build" / "mps2_an386" / "slimhar_generated" / "slimhar_model.h").read_text()
    sizes = {k: int(v) for k, v in re.findall(r"#define SLIMHAR_MODEL_(ARENA_BYTES|SCRATCH_BYTES|LEAST_RAM) (\d+)u", header)}
    least, fastest = blob_memory(blob, ram_limit=1), blob_memory(blob)
    assert sizes["LEAST_RAM"] == 1 and sizes["ARENA_BYTES"] + sizes["SCRATCH_BYTES"] == least["arena_bytes"] + least["scratch_bytes"]
    assert least["arena_bytes"] + least["scratch_bytes"] < fastest["arena_bytes"] + fastest["scratch_bytes"]
    # -DSLIMHAR_RAM_LIMIT=N between the two (`export-c --ram-limit`): the arena the mirror sizes for
    # every subnet within N, at most N here (every subnet's least is below it); each subnet runs,
    # no slower than at the least RAM and no faster than with its fastest plan
    total = lambda m: m["arena_bytes"] + m["scratch_bytes"]
    mid = (total(least) + total(fastest)) // 2
    mid_rows = bench("limit", f"-DSLIMHAR_RAM_LIMIT={mid}")
    header = (tmp_path / "limit" / "mps2_an386" / "slimhar_generated" / "slimhar_model.h").read_text()
    sizes = {k: int(v) for k, v in re.findall(r"#define SLIMHAR_MODEL_(ARENA_BYTES|SCRATCH_BYTES|RAM_LIMIT) (\d+)u", header)}
    assert sizes["RAM_LIMIT"] == mid and sizes["ARENA_BYTES"] + sizes["SCRATCH_BYTES"] == total(blob_memory(blob, ram_limit=mid))
    assert total(least) <= sizes["ARENA_BYTES"] + sizes["SCRATCH_BYTES"] <= mid
    assert [x["name"] for x in mid_rows] == [s.name for s in blob.subnets]
    assert all(y["per_run"] - 100 <= x["per_run"] <= z["per_run"] + 100 for x, y, z in zip(mid_rows, default, rows)), mid_rows


def test_demo_runs_again(hapt_blob, tmp_path):
    """`make demo` a second time (tools/mission.py): its finished run is reused, a run stopped
    during training resumed, a run of another length refused with one line."""
    import torch
    from slimhar.tools.mission import _earlier_run
    run = Path(hapt_blob[0]).parent.parent / "run" / "checkpoint.pt"
    assert _earlier_run(tmp_path / "none" / "checkpoint.pt", 1) is None
    assert _earlier_run(run, 1) is False
    ck = torch.load(run, map_location="cpu", weights_only=True)
    ck["epoch"], ck["bn_calibrated"] = 0, False
    torch.save(ck, tmp_path / "checkpoint.pt")
    assert _earlier_run(tmp_path / "checkpoint.pt", 1) is True
    with pytest.raises(SystemExit, match="holds a 1-epoch run, not this demo's 5 epochs"):
        _earlier_run(run, 5)
