"""slimhar's Python API: the four steps the command line is made of.

    from slimhar import api
    run = api.train("basicmotions_cnn", "runs/bm", epochs=10)             # -> checkpoint.pt
    rep = api.quantize(run["checkpoint"], "runs/bm/int8")                 # -> model.blob + report
    info = api.pack("runs/bm/int8/model.blob", "runs/bm/pareto.blob", subnets="pareto")
    blob = api.load_blob("runs/bm/pareto.blob")                           # validated reader

Each takes and returns plain values (paths, dicts, bytes), writes only under the paths it is
given, and raises the project's one-line errors (ConfigError, DatasetError, CheckpointError,
BlobError, GridError, MissingExtra) for bad input. The CLI (slimhar.cli) calls exactly these.
"""
from __future__ import annotations

from pathlib import Path


def train(config, out, *, epochs: int | None = None, seed: int | None = None, resume: bool = False,
          data_dir=None, device: str = "cpu", layout: str | None = None, precision: str | None = None,
          progress: bool = False, log_test: bool = False) -> dict:
    """Collaborative training of every subnet, then BN calibration of each.

    config: a YAML path, a bundled config name, or a config dict (checked either way). Returns
    the trainer's result: checkpoint path, epochs, per-subnet validation summary, timings.
    log_test: also log test accuracy at each validation (the paper's protocol; reporting only)."""
    from slimhar.train.config import check, load_config
    from slimhar.train.trainer import train as run
    cfg = dict(config) if isinstance(config, dict) else load_config(config)
    for key, val in (("epochs", epochs), ("seed", seed), ("layout", layout), ("precision", precision)):
        if val is not None:
            cfg[key] = val
    check(cfg)
    return run(cfg, out, resume=resume, data_dir=data_dir, progress=progress, device=device, log_test=log_test)


def quantize(checkpoint, out, *, widths="all", resolutions="all", ranges: str = "percentile", split: str = "val",
             calib_windows: int | None = None, verify: int = 16, baseline: bool = False, qat_epochs: int = 0,
             subnets: str = "all", data_dir=None, progress: bool = False) -> dict:
    """Every chosen subnet to an int8 TFLite-Micro flatbuffer over one shared int8 pool, packed
    into ``out/model.blob``, with ``out/report.json``. subnets other than "all": model.blob holds
    that selection (see pack) and ``out/model.full.blob`` the whole grid; the report then has a
    "selected" entry."""
    from slimhar.quantize.export import quantize_checkpoint
    rep = quantize_checkpoint(checkpoint, out, widths, resolutions, calib_windows, split, ranges, verify,
                              data_dir, progress=progress, baseline=baseline, qat_epochs=qat_epochs)
    if subnets != "all":
        full = Path(out) / "model.full.blob"
        (Path(out) / "model.blob").replace(full)
        rep["selected"] = pack(full, Path(out) / "model.blob", subnets=subnets)
    return rep


def pack(blob, out, *, subnets: str = "pareto", flash_budget: int | None = None, firmware_bytes: int | None = None,
         latency=None) -> dict:
    """The deployable blob: some of ``blob``'s subnets over the same (trimmed) pool, written to
    ``out``. subnets: all, pareto (validation int8 accuracy vs estimated M4 cost) or a list
    (names or indices, comma-separated); flash_budget: bytes for blob + firmware, keeping the best
    subset that fits; latency: a `slimhar bench engine --json` file to cost subnets by. Returns
    what was chosen (and the bytes written)."""
    from slimhar.quantize.select import FIRMWARE_BYTES, select
    b = blob if hasattr(blob, "subnets") else load_blob(blob)
    data, info = select(b, subnets, flash_budget, latency, firmware_bytes or FIRMWARE_BYTES)
    Path(out).write_bytes(data)
    return {**info, "out": str(out)}


def load_blob(path):
    """A validated blob (slimhar.quantize.blob.Blob): header, CRC, pool, subnets, input spec."""
    from slimhar.quantize.blob import Blob
    return Blob.open(path)
