"""`slimhar bench engine`: the firmware engine measured in QEMU (-icount shift=0: one
instruction per virtual ns, so counts are deterministic): instructions per inference and per
MAC for every subnet, DSP vs portable kernels, arena vs ideal, the cost of preparing a subnet
and of switching between prepared ones, and flash / RAM of the firmware ELF."""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from slimhar.quantize.blob import Blob

from slimhar.tools import engine_check as ec


def _windows(blob: Blob, n: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """Normalized test windows of the blob's own dataset when it loads here, else seeded noise
    (instruction counts hardly depend on the values)."""
    try:
        X = ec.blob_test_windows(blob)[:n]
        return ((X - blob.norm_mean) / blob.norm_std).astype(np.float32), f"{blob.meta['config']} test windows"
    except ec.EngineCheckError:   # the data does not load here: use noise
        rng = np.random.default_rng(seed)
        return rng.normal(size=(n, blob.window, blob.axes)).astype(np.float32), "seeded noise windows"


def elf_sizes(elf: Path) -> dict:
    """Flash and RAM of a firmware ELF (arm-none-eabi-size -A)."""
    out = subprocess.run(["arm-none-eabi-size", "-A", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    sec = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)", out, re.M)}
    flash = sum(sec.get(k, 0) for k in (".isr_vector", ".text", ".ARM.exidx", ".preinit_array", ".init_array",
                                        ".fini_array", ".data"))
    ram = sec.get(".data", 0) + sec.get(".bss", 0)
    return {"flash_bytes": flash, "ram_bytes": ram, "sections": sec, "ram_parts": ram_parts(elf, ram)}


# the firmware's static buffers (firmware/src/main.cpp) by the part of the system they serve
RAM_PARTS = {"arena + DSP scratch": ("g_arena",), "prepared plans": ("g_slots", "g_ops", "g_slot_ptrs"),
             "multiplier store": ("g_mult", "g_shift"), "sample ring": ("g_samples",), "db input buffer": ("g_db",),
             "application (windows, policy, protocol)": ("g_app", "g_reader"), "replay sensor FIFO": ("g_replay",)}


def ram_parts(elf: Path, ram_total: int) -> dict:
    """Static RAM of a firmware ELF by part, from its symbol sizes (nm -S); 'other' is the rest of
    .data + .bss (board drivers, libc). The stack is not static: it grows down from the top of
    RAM into what is left."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", "-C", str(elf)], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for m in re.finditer(r"^[0-9a-f]+ ([0-9a-f]+) [bBdD] (?:\(anonymous namespace\)::)?(\w+)$", out, re.M):
        sizes[m.group(2)] = sizes.get(m.group(2), 0) + int(m.group(1), 16)
    parts = {k: sum(sizes.get(n, 0) for n in names) for k, names in RAM_PARTS.items()}
    parts["other (drivers, libc)"] = ram_total - sum(parts.values())
    return parts


@contextmanager
def build_flags(flags: str):
    """PlatformIO builds (and the blob embedding, firmware/scripts/embed_blob.py) with these extra
    build flags, in a build folder of their own: PlatformIO wipes a folder whose flags changed."""
    old = {k: os.environ.get(k) for k in ("PLATFORMIO_BUILD_FLAGS", "PLATFORMIO_BUILD_DIR")}
    with tempfile.TemporaryDirectory(prefix="slimhar-bench-") as tmp:
        os.environ["PLATFORMIO_BUILD_FLAGS"] = flags
        os.environ["PLATFORMIO_BUILD_DIR"] = tmp
        try:
            yield Path(tmp)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def firmware_sizes(blob_path: Path, project: Path = ec.REPO, build_dir: Path | None = None) -> dict:
    """Build the firmware with this blob embedded and measure it."""
    cmd, env = ec.pio(project)
    env["SLIMHAR_BLOB"] = str(Path(blob_path).resolve())
    r = subprocess.run(cmd + ["run", "-e", "mps2_an386"], cwd=project, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise ec.EngineCheckError(f"firmware build failed:\n{r.stdout[-3000:]}")
    s = elf_sizes((build_dir or project / ".pio" / "build") / "mps2_an386" / "firmware.elf")
    s["blob_bytes"] = Path(blob_path).stat().st_size
    s["flash_without_blob"] = s["flash_bytes"] - s["blob_bytes"]
    return s


def bench_engine(blob_path, windows: int = 2, portable_windows: int = 1, with_firmware: bool = True,
                 least_ram: bool = False) -> dict:
    """least_ram: also what a firmware sized for the least RAM (-DSLIMHAR_LEAST_RAM=1, `export-c
    --least-ram`) runs: every subnet prepared with that firmware's arena as its Plan::ram_limit
    (engine_check's records carry it), its instructions and arena + scratch there, each subnet at
    its own least arena + scratch (Plan::ram_limit 1) and, with the firmware, that firmware's
    static RAM."""
    blob_path = Path(blob_path)
    blob = Blob.open(blob_path)
    X, source = _windows(blob, max(windows, portable_windows))
    recs = [(i, ec.subnet_inputs(blob, s, X)) for i, s in enumerate(blob.subnets)]
    dsp_program = ec.build("dsp")
    dsp = ec.run("dsp", dsp_program, blob_path, [(i, x[:windows]) for i, x in recs])
    port = ec.run("portable", ec.build("portable"), blob_path, [(i, x[:portable_windows]) for i, x in recs])
    least, at_one, limit = None, None, 0
    if least_ram:
        from slimhar.quantize.arena import memory_plan
        from slimhar.quantize.plan import least_ram_limit
        limit = least_ram_limit(blob)   # the least-RAM firmware's arena
        n = len(recs)
        res = ec.run("dsp", dsp_program, blob_path, [(i, x[:windows], lim) for lim in (limit, 1) for i, x in recs]).records
        least, at_one = res[:n], res[n:]
    # accuracy per subnet: the blob's table (validation) and, when `slimhar quantize` left its
    # report beside the blob and that report is on the test split (quantize --split test), the test split's
    report = {}
    rp = blob_path.parent / "report.json"
    if rp.is_file():
        try:
            js = json.loads(rp.read_text())
            report = {r["name"]: r for r in js["rows"]} if js.get("split") == "test" else {}
        except (ValueError, KeyError, TypeError):
            report = {}
    rows = []
    for k, (s, d, p) in enumerate(zip(blob.subnets, dsp.records, port.records)):
        if d.status or p.status:
            raise ec.EngineCheckError(f"{s.name}: {ec.STATUS[d.status or p.status]}")
        same = np.array_equal(d.outputs[:portable_windows], p.outputs)
        extra = {}
        if least is not None:
            q, o = least[k], at_one[k]
            for rec in (q, o):
                if rec.status:
                    raise ec.EngineCheckError(f"{s.name} with a RAM limit: {ec.STATUS[rec.status]}")
                if not np.array_equal(rec.outputs, d.outputs):
                    raise ec.EngineCheckError(f"{s.name} with a RAM limit: outputs differ from its default plan's")
            lp = memory_plan(blob, s, ram_limit=1)
            if o.arena_bytes + o.scratch_bytes != lp.arena_bytes + lp.scratch_bytes:
                raise ec.EngineCheckError(f"{s.name}: its least arena + scratch differs from quantize/arena.py's")
            extra = {"least_ram_bytes": lp.arena_bytes + lp.scratch_bytes,
                     "least_ram_dsp_instructions": o.invoke_instructions / windows,
                     "at_limit_bytes": q.arena_bytes + q.scratch_bytes,
                     "at_limit_dsp_instructions": q.invoke_instructions / windows,
                     # the stored plan proven there (the blob's least-RAM plan where the tiles differ)
                     "at_limit_stored_plan": q.stored_plan,
                     "at_limit_cold_prepare_instructions": q.stored_prepare_instructions}
        di, pi = d.invoke_instructions / windows, p.invoke_instructions / portable_windows
        rows.append({"name": s.name, "width": s.width, "resolution": s.resolution, "macs": s.macs,
                     "dsp_instructions": di, "dsp_per_mac": di / s.macs,
                     "portable_instructions": pi, "portable_per_mac": pi / s.macs, "speedup": pi / di,
                     "arena_bytes": d.arena_bytes, "ideal_bytes": s.arena_bytes, "arena_ratio": d.arena_bytes / s.arena_bytes,
                     "scratch_bytes": d.scratch_bytes, "prepare_instructions": d.prepare_instructions,
                     # a cold prepare once the subnet's stored plan is proven (engine.h PlanProofs): what a
                     # switch to an evicted plan costs; the first prepare above includes the proof
                     "stored_plan": d.stored_plan, "cold_prepare_instructions": d.stored_prepare_instructions,
                     "ops": dict(zip([f"{k}:{n}" for k, n in enumerate(d.op_kinds)], d.op_instructions)),
                     "dsp_equals_portable": bool(same),
                     "val_float_acc": s.float_acc, "val_int8_acc": s.int8_acc,
                     "test_float_acc": report.get(s.name, {}).get("float_acc"),
                     "test_int8_acc": report.get(s.name, {}).get("int8_acc"),
                     # a real Cortex-M4F at 64 MHz (the nRF52840) if it ran one instruction per cycle:
                     # an estimate, not a measurement (flash wait states, memory stalls not modelled)
                     "est_ms_at_64mhz": di / 64e3, **extra})
    widest = max(rows, key=lambda r: (r["macs"], r["width"]))
    out = {"blob": str(blob_path), "config": blob.meta.get("config", "?"), "subnets": len(rows), "windows": source, "machine": platform.node(),
           "plan_bytes": dsp.plan_bytes, "op_record_bytes": dsp.op_bytes,
           "max_ops": max(len(r.op_kinds) for r in dsp.records), "switch_instructions": dsp.switch_instructions, "switch_bytes_copied": 0,
           "widest": widest["name"], "widest_dsp_per_mac": widest["dsp_per_mac"], "widest_speedup": widest["speedup"],
           "widest_first_prepare": widest["prepare_instructions"], "widest_cold_prepare": widest["cold_prepare_instructions"],
           "stored_plans_proven": sum(r["stored_plan"] == "proven" for r in rows),
           "max_arena_ratio": max(r["arena_ratio"] for r in rows), "least_ram_limit": limit, "rows": rows}
    if least_ram:
        out["at_limit_stored_plans_proven"] = sum(r["at_limit_stored_plan"] == "proven" for r in rows)
    if with_firmware:
        out["firmware"] = firmware_sizes(blob_path)
        if least_ram:
            with build_flags("-DSLIMHAR_LEAST_RAM=1") as tmp:
                out["firmware_least_ram"] = firmware_sizes(blob_path, build_dir=tmp)
    return out


def plot(res: dict, path) -> None:
    from slimhar.extras import pyplot
    plt = pyplot()
    rows = res["rows"]
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.2))
    macs = np.array([r["macs"] for r in rows]) / 1e6
    for key, lab, mk in (("portable_instructions", "portable C++", "s"), ("dsp_instructions", "Cortex-M4 DSP (SMLAD)", "o")):
        ax[0].scatter(macs, np.array([r[key] for r in rows]) / 1e6, label=lab, marker=mk, s=18)
    ax[0].plot([0, macs.max()], [0, macs.max()], "k:", lw=1, label="1 instruction / MAC")
    ax[0].set_xlabel("MACs per window (M)")
    ax[0].set_ylabel("instructions per window (M)")
    ax[0].set_title("latency per subnet (QEMU -icount)")
    ax[0].legend()
    ax[1].scatter(macs, [r["dsp_per_mac"] for r in rows], s=18, label="DSP")
    ax[1].scatter(macs, [r["portable_per_mac"] for r in rows], s=18, marker="s", label="portable")
    ax[1].axhline(1.0, color="k", ls=":", lw=1)
    ax[1].set_yscale("log")
    ax[1].set_xlabel("MACs per window (M)")
    ax[1].set_ylabel("instructions per MAC")
    ax[1].legend()
    ms = np.array([r["est_ms_at_64mhz"] for r in rows])
    acc = np.array([100 * r["val_int8_acc"] for r in rows])
    order = np.argsort(ms)
    front, best = [], -1.0
    for k in order:                     # the accuracy-vs-latency Pareto front
        if acc[k] > best:
            front.append(k)
            best = acc[k]
    ax[2].scatter(ms, acc, s=18, color="0.6", label="subnets")
    ax[2].plot(ms[front], acc[front], "o-", color="C3", ms=4, label="Pareto front")
    ax[2].set_xscale("log")
    ax[2].set_xlabel("latency, ms at 64 MHz (DSP instructions / 64,000; an estimate)")
    ax[2].set_ylabel("validation int8 accuracy (%)")
    ax[2].legend()
    fig.suptitle(f"{res.get('config', Path(res['blob']).name)}: {res['subnets']} subnets, Cortex-M4F in QEMU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
