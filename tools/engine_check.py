"""Drive firmware/src/check/engine_check.cpp -- the C++ int8 engine -- on the host or in QEMU,
and compare it with TFLM (the oracle) on real windows.

File formats (little-endian) are documented in engine_check.cpp. The program is built with
PlatformIO from the repo's platformio.ini: env ``host_check`` (host gcc), ``mps2_an386_check``
(Cortex-M4 DSP kernels) and ``mps2_an386_check_portable`` (portable kernels), both run in QEMU
with ``-icount shift=0`` so that the instruction counts are deterministic.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slimhar.quantize.blob import Blob, SubnetEntry
from slimhar.quantize.oracle import Tflm, quantize_input
from slimhar.quantize.tflite_io import read_model

REPO = Path(__file__).resolve().parents[1]
ENVS = {"host": "host_check", "dsp": "mps2_an386_check", "portable": "mps2_an386_check_portable"}
STATUS = ["ok", "bad arguments", "malformed model", "unsupported", "bad tensor", "bad weight reference",
          "too large", "arena too small"]


def _op_table() -> list[dict]:
    """The engine's op table (firmware/lib/slimhar_engine/src/ops.def), in OpKind order."""
    import re
    text = (REPO / "firmware" / "lib" / "slimhar_engine" / "src" / "ops.def").read_text()
    rows = re.findall(r"^SLIMHAR_OP\((\w+),\s*(\w+),\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+),\s*\w+\)", text, re.M)
    return [{"kind": k, "name": n, "code": int(c), "options": int(o), "min_in": int(a), "max_in": int(b)}
            for k, n, c, o, a, b in rows]


OP_TABLE = _op_table()
OP_KINDS = [r["name"] for r in OP_TABLE]          # index = OpKind


STORED_PROOF = ["none", "proven", "differs"]      # engine.h Plan::StoredProof


class EngineCheckError(RuntimeError):
    pass


@dataclass
class Record:
    subnet: int
    status: int                    # the record's: Prepare's, or why it was not run (wrong input size, arena)
    outputs: np.ndarray            # int8 [n_windows, output_size]
    arena_bytes: int
    scratch_bytes: int
    macs: int
    prepare_instructions: int
    invoke_instructions: int       # sum over the windows
    prepare_status: int = 0        # what Prepare returned
    op_kinds: list[str] = field(default_factory=list)
    op_instructions: list[int] = field(default_factory=list)   # first window, per op
    op_mult_crcs: list[int] = field(default_factory=list)      # CRC-32 of each op's multipliers + shifts (0: none)
    stored_plan: str = "none"      # the blob's stored plan of the subnet: none | proven | differs
    stored_prepare_instructions: int = 0   # a cold prepare from the proven stored plan (0: none)


@dataclass
class Result:
    flavour: str
    plan_bytes: int                # a Plan without its op records
    switch_instructions: float     # per switch
    op_bytes: int = 0              # one op record (OpPlan): a plan holds the blob's largest op count
    records: list[Record] = field(default_factory=list)


def pio(project: Path = REPO) -> tuple[list[str], dict]:
    exe = project / ".pio-venv" / "bin" / "pio"
    if not exe.exists():
        raise EngineCheckError(f"no PlatformIO at {exe}: run `make setup`")
    env = dict(os.environ, PLATFORMIO_CORE_DIR=str(project / ".pio-core"))
    return [str(exe)], env


def build(kind: str, project: Path = REPO, build_dir: Path | None = None) -> Path:
    """Build the engine check for `kind` (host | dsp | portable); returns the program / ELF.
    `build_dir`: build there instead of the project's .pio/build -- for builds with other flags
    (PlatformIO wipes every build of a folder whose configuration changed)."""
    cmd, env = pio(project)
    if build_dir is not None:
        env["PLATFORMIO_BUILD_DIR"] = str(build_dir)
    elif env.get("PLATFORMIO_BUILD_DIR"):       # the caller's environment chose one
        build_dir = Path(env["PLATFORMIO_BUILD_DIR"])
    name = ENVS[kind]
    r = subprocess.run(cmd + ["run", "-e", name], cwd=project, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise EngineCheckError(f"pio run -e {name} failed:\n{r.stdout[-4000:]}{r.stderr[-2000:]}")
    return (build_dir or project / ".pio" / "build") / name / ("program" if kind == "host" else "firmware.elf")


def subnet_inputs(blob: Blob, s: SubnetEntry, x_norm: np.ndarray) -> np.ndarray:
    """Normalized windows [N, T, C] -> the subnet's int8 input [N, T', C, 1]: nearest-exact resize
    to T' (float32 index arithmetic, as training does) and its input quantization."""
    from slimhar.train.models.har_net import resize_index
    idx = resize_index(x_norm.shape[1], s.resolution).numpy()
    m = read_model(blob.model_bytes(s))
    t = m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]]
    return quantize_input(x_norm[:, idx, :, None], float(t.quantization.scale[0]), int(t.quantization.zeroPoint[0]))


def write_inputs(path: Path, records: list[tuple]) -> None:
    """records: (subnet, int8 windows) or (subnet, int8 windows, Plan::ram_limit; 0: none)."""
    with open(path, "wb") as f:
        f.write(b"SHEI" + struct.pack("<I", len(records)))
        for subnet, xq, *limit in records:
            xq = np.ascontiguousarray(xq, np.int8).reshape(len(xq), -1 if len(xq) else 0)
            f.write(struct.pack("<IIII", subnet, xq.shape[0], xq.shape[1], limit[0] if limit else 0))
            f.write(xq.tobytes())


def read_outputs(path: Path) -> Result:
    b = Path(path).read_bytes()
    if len(b) < 44 or b[:4] != b"SHEO":
        raise EngineCheckError(f"{path}: not an engine_check output")
    version, n = struct.unpack_from("<II", b, 4)
    if version != 3:
        raise EngineCheckError(f"{path}: engine_check output version {version}, expected 3 (rebuild engine_check)")
    flavour = b[12:28].split(b"\0")[0].decode()
    plan_bytes, op_bytes, switch = struct.unpack_from("<IIQ", b, 28)
    res = Result(flavour, plan_bytes, switch / 1000.0, op_bytes)
    at = 44
    for _ in range(n):
        (subnet, status, nw, osz, arena, scratch, macs, pstatus, prep, n_ops, proof,
         stored_prep) = struct.unpack_from("<IIIIIIIIQIIQ", b, at)
        at += 64
        kinds, instr, crcs = [], [], []
        for _k in range(n_ops):
            kind, crc, ins = struct.unpack_from("<IIQ", b, at)
            kinds.append(OP_KINDS[kind])
            instr.append(ins)
            crcs.append(crc)
            at += 16
        out = np.frombuffer(b, np.int8, nw * osz, at).reshape(nw, osz)
        at += nw * osz
        (inv,) = struct.unpack_from("<Q", b, at)
        at += 8
        res.records.append(Record(subnet, status, out.copy(), arena, scratch, macs, prep, inv, pstatus, kinds, instr, crcs,
                                  STORED_PROOF[proof] if proof < len(STORED_PROOF) else f"?{proof}", stored_prep))
    return res


def _command(kind: str, program: Path) -> list[str]:
    """engine_check on model.blob / in.bin -> out.bin in the current folder (short relative
    names: they travel as semihosting arguments); QEMU with -icount for dsp / portable."""
    if kind == "host":
        return [str(program), "model.blob", "in.bin", "out.bin"]
    return ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "null",
            "-semihosting-config", "enable=on,target=native,arg=engine_check,arg=model.blob,arg=in.bin,arg=out.bin",
            "-icount", "shift=0", "-kernel", str(program)]


def run(kind: str, program: Path, blob_path: Path, records: list[tuple],
        timeout: float = 600) -> Result:
    """Run the built program on `records` [(subnet, int8 inputs[, Plan::ram_limit])]; QEMU for dsp / portable.
    `blob_path` may also be a standalone .tflite (run as subnet 0)."""
    with tempfile.TemporaryDirectory(prefix="slimhar-check-") as td:
        td = Path(td)
        shutil.copyfile(blob_path, td / "model.blob")
        write_inputs(td / "in.bin", records)
        try:
            r = subprocess.run(_command(kind, program), cwd=td, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise EngineCheckError(f"engine_check ({kind}) ran past {timeout} s") from e
        if r.returncode != 0:
            raise EngineCheckError(f"engine_check ({kind}) exited {r.returncode}: {r.stderr.strip()[-2000:]}")
        return read_outputs(td / "out.bin")


def tflm_outputs(blob: Blob, s: SubnetEntry, xq: np.ndarray) -> np.ndarray:
    """The oracle: TFLM's interpreter on the standalone .tflite of the same subnet."""
    return Tflm(blob.unpack(s)).run(xq).reshape(len(xq), -1)


def blob_test_windows(blob: Blob, config=None, data_dir=None) -> np.ndarray:
    """The test windows of the data the blob was trained on: from `config` (a file or bundled
    name) when given, else the training config the blob carries (a user's own config and data
    included), else the bundled config of its name (blobs written before it carried one)."""
    from slimhar.train.config import ConfigError, load_config
    from slimhar.train.data import DatasetError
    from slimhar.train.inputs import load_data
    try:
        cfg = load_config(config) if config else blob.meta.get("train_config") or load_config(blob.meta["config"])
        return load_data(cfg, data_dir).test.X
    except (ConfigError, DatasetError, KeyError) as e:
        raise EngineCheckError(f"{blob.source}: cannot load the data it was trained on ({e}); pass --config FILE "
                               "[--data-dir DIR]") from None


def check_blob(blob_path, kinds=("host", "dsp"), windows: dict | None = None, progress=print, config=None,
               data_dir=None) -> dict:
    """Every subnet of a blob on `kinds`, compared with TFLM on the test windows of the blob's
    own dataset (windows[kind] per subnet, default: all on the host, 16 in QEMU). Returns the
    mismatch counts; raises nothing on a mismatch (the caller decides)."""
    blob_path = Path(blob_path)
    blob = Blob.open(blob_path)
    windows = {"host": None, "dsp": 16, "portable": 4, **(windows or {})}
    X = blob_test_windows(blob, config, data_dir)
    X = ((X - blob.norm_mean) / blob.norm_std).astype(np.float32)
    n_max = max(len(X) if windows[k] is None else min(windows[k], len(X)) for k in kinds)
    inputs = [subnet_inputs(blob, s, X[:n_max]) for s in blob.subnets]
    refs = []
    for s, xq in zip(blob.subnets, inputs):
        refs.append(tflm_outputs(blob, s, xq))
    out = {"blob": str(blob_path), "subnets": len(blob.subnets), "kinds": {}}
    for kind in kinds:
        n = len(X) if windows[kind] is None else min(windows[kind], len(X))
        res = run(kind, build(kind), blob_path, [(i, x[:n]) for i, x in enumerate(inputs)], timeout=3600)
        bad = [s.name for s, r, ref in zip(blob.subnets, res.records, refs)
               if r.status != 0 or not np.array_equal(r.outputs, ref[:n])]
        # the outputs of a subnet whose stored plan was proven come from that plan (engine_check
        # prepares it twice); one that differs from Prepare's is an exporter / engine mismatch
        differs = [s.name for s, r in zip(blob.subnets, res.records) if r.stored_plan == "differs"]
        proven = sum(r.stored_plan == "proven" for r in res.records)
        out["kinds"][kind] = {"windows": n, "flavour": res.flavour, "mismatching_subnets": bad,
                              "logits_compared": int(sum(ref[:n].size for ref in refs)),
                              "stored_plans_proven": proven, "stored_plans_differing": differs}
        progress(f"{kind:>8} ({res.flavour} kernels): {len(blob.subnets)} subnets x {n} windows, "
                 f"{out['kinds'][kind]['logits_compared']:,} logits vs TFLM: "
                 + ("all bit-identical" if not bad else f"{len(bad)} subnets differ: {', '.join(bad[:8])}")
                 + f"; stored plans proven {proven} of {len(blob.subnets)}"
                 + (f", differing: {', '.join(differs[:8])}" if differs else ""))
    return out


def replay_corpus(corpus_dir, kind: str = "dsp", limit: int | None = None, timeout: float = 60,
                  progress=print) -> dict:
    """Run the fuzzer's blob inputs through engine_check built for `kind` -- in QEMU, the DSP
    kernels, which the host's sanitizers cannot run. The CRC is fixed first, as the harness
    does, so the inputs reach Prepare and the kernels. A clean exit or a refusal is fine; a
    fault (the board's fault handler spins) shows up as a time-out."""
    from slimhar.quantize.blob import CRC_OFFSET, HEADER, SUBNET_ENTRY, crc32_of
    program = build(kind)
    files = sorted(p for p in Path(corpus_dir).iterdir() if p.is_file() and p.read_bytes()[:7] == b"SLIMHAR")
    files = files[:limit] if limit else files
    ok = refused = 0
    hung: list[str] = []
    for f in files:
        b = bytearray(f.read_bytes())
        if len(b) >= HEADER.size and not (b[63] & 1):
            struct.pack_into("<I", b, CRC_OFFSET, 0)
            struct.pack_into("<I", b, CRC_OFFSET, crc32_of(bytes(b)))
        records = []
        try:   # one zero window per subnet, sized from the (possibly damaged) table
            n, table, axes = struct.unpack_from("<I", b, 20)[0], struct.unpack_from("<I", b, 24)[0], struct.unpack_from("<H", b, 58)[0]
            for i in range(min(n, 64)):
                res = struct.unpack_from("<H", b, table + i * SUBNET_ENTRY.size + 4)[0]
                records.append((i, np.zeros((1, min(res * axes, 1 << 16)), np.int8)))
        except struct.error:
            pass
        with tempfile.TemporaryDirectory(prefix="slimhar-replay-") as td:
            (Path(td) / "model.blob").write_bytes(bytes(b))
            write_inputs(Path(td) / "in.bin", records)
            try:
                r = subprocess.run(_command(kind, program), cwd=td, capture_output=True, text=True, timeout=timeout)
                ok += r.returncode == 0
                refused += r.returncode == 2
                if r.returncode not in (0, 2):
                    hung.append(f"{f.name}: exit {r.returncode}")
            except subprocess.TimeoutExpired:
                hung.append(f"{f.name}: no exit in {timeout:.0f} s")
    progress(f"replayed {len(files)} fuzz inputs on {kind}: {ok} ran, {refused} refused, {len(hung)} faulted or hung")
    return {"inputs": len(files), "ran": ok, "refused": refused, "faulted": hung}


if __name__ == "__main__":   # python -m slimhar.tools.engine_check replay CORPUS_DIR [--kind dsp|portable|host]
    import argparse
    ap = argparse.ArgumentParser(prog="python -m slimhar.tools.engine_check")
    sub = ap.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("replay", help="run the fuzzer's blob inputs through engine_check (QEMU by default)")
    rp.add_argument("corpus")
    rp.add_argument("--kind", choices=sorted(ENVS), default="dsp")
    rp.add_argument("--limit", type=int, default=None)
    a = ap.parse_args()
    raise SystemExit(1 if replay_corpus(a.corpus, a.kind, a.limit)["faulted"] else 0)
