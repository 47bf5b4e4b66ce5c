"""``slimhar quantize`` and ``slimhar blob``: from a checkpoint to the blob the firmware embeds."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .common import UserError, main, user_errors


# -- quantize ---------------------------------------------------------------------------------
@main.command()
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder: subnets/*.tflite, model.blob, report.json/.md, plots.")
@click.option("--widths", default="all", show_default=True, help="Comma-separated grid widths, or all.")
@click.option("--resolutions", default="all", show_default=True, help="Comma-separated grid T' values, or all.")
@click.option("--calib-batches", type=int, default=None,
              help="Calibration windows = N x batch size (default: the checkpoint's BN calibration set).")
@click.option("--ranges", type=click.Choice(["percentile", "mse", "minmax", "nncf"]), default="percentile",
              show_default=True,
              help="Activation ranges: percentile (clips the input and logits at 0.01/99.99 %, min-max elsewhere; "
                   "chosen on validation, docs/results.md §3), mse (least-squares clipping of the input and first "
                   "block output), minmax, or nncf (NNCF's post-training quantization ranges; slimhar[nncf]).")
@click.option("--split", type=click.Choice(["val", "test"]), default="val", show_default=True,
              help="The split the report's accuracy columns are on. Choices (range method, subnet set, the blob's "
                   "accuracy table) are made on validation; report test once, with --split test.")
@click.option("--verify", type=int, default=16, show_default=True,
              help="Windows per subnet run in TFLM and LiteRT's reference kernels for the parity check.")
@click.option("--qat-epochs", type=int, default=0, show_default=True,
              help="Quantization-aware fine-tune of the supernet (shared weight quantizer in the loop) before export.")
@click.option("--baseline/--no-baseline", default=False, show_default=True,
              help="Also quantize every subnet on its own with the TF converter, for comparison (needs slimhar[baseline]).")
@click.option("--subnets", "which", default="all", show_default=True,
              help="What model.blob holds: all, pareto (validation int8 accuracy vs estimated M4 cost), or a list "
                   "(w010_t96,...); the whole grid stays in model.full.blob. See `slimhar blob select`.")
@click.option("--data-dir", type=click.Path(), default=None, envvar="SLIMHAR_DATA_DIR")
@user_errors
def quantize(checkpoint, out, widths, resolutions, calib_batches, ranges, split, verify, qat_epochs, baseline, which,
             data_dir):
    """Every subnet to an int8 TFLite-Micro flatbuffer sharing ONE int8 weight pool, packed in one blob."""
    from slimhar import api
    from slimhar.quantize.export import GridError
    from slimhar.train import checkpoint as ckpt
    if calib_batches is not None and calib_batches < 1:
        raise UserError("--calib-batches must be at least 1")
    if verify < 1:
        raise UserError("--verify must be at least 1")
    try:
        calib = None
        if calib_batches:
            calib = calib_batches * int(ckpt.load(checkpoint)["config"]["batch_size"])
        rep = api.quantize(checkpoint, out, widths=widths, resolutions=resolutions, ranges=ranges, split=split,
                           calib_windows=calib, verify=verify, baseline=baseline, qat_epochs=qat_epochs,
                           subnets=which, data_dir=data_dir, progress=sys.stderr.isatty())
    except GridError as e:      # only the grid selection; any other ValueError is a bug, shown as one
        raise UserError(str(e)) from None
    b, L = rep["bytes"], rep["int8_loss_pp"]
    click.echo(f"{rep['subnets']} subnets quantized in {rep['seconds']:.1f} s")
    click.echo(f"{'subnet':<12} {'MACs':>11} {'float %':>8} {'int8 %':>8} {'indep %':>8} {'tflite B':>9}")
    for r in rep["rows"]:
        bl = f"{100 * r['baseline_acc']:>8.2f}" if "baseline_acc" in r else f"{'-':>8}"
        click.echo(f"{r['name']:<12} {r['macs']:>11,d} {100 * r['float_acc']:>8.2f} {100 * r['int8_acc']:>8.2f} "
                   f"{bl} {r['tflite_bytes']:>9,d}")
    click.echo(f"int8 loss vs float: max {L['max']:.2f} pp, mean {L['mean']:.2f} pp")
    click.echo(f"blob {b['blob']:,} B (pool {b['pool']:,} B) vs standalone .tflite sum {b['sum_standalone_tflite']:,} B: "
               f"{b['blob_vs_sum']:.1f}x smaller")
    if "baseline" in rep:
        bb = rep["baseline"]
        click.echo(f"independent TF-converter int8 vs float: max {bb['loss_pp']['max']:.2f} pp, mean "
                   f"{bb['loss_pp']['mean']:.2f} pp; blob vs their sum {bb['sum_tflite_bytes']:,} B: "
                   f"{bb['blob_vs_sum']:.1f}x smaller")
    click.echo(f"TFLM vs LiteRT reference: {rep['parity']['tflm_vs_litert_ref_mismatches']} mismatches")
    if "selected" in rep:
        info = rep["selected"]
        click.echo(f"model.blob: {len(info['subnets'])} of {rep['subnets']} subnets ({which}: "
                   f"{', '.join(r['name'] for r in info['subnets'])}), {info['blob_bytes']:,} B; the whole grid in "
                   f"{Path(out) / 'model.full.blob'}")
    click.echo(f"wrote {out}/model.blob, {out}/subnets/, {out}/report.json, {out}/report.md")


# -- blob -------------------------------------------------------------------------------------
@main.group()
def blob():
    """Inspect, verify and unpack a model.blob."""


@blob.command("info")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@user_errors
def blob_info(file, as_json):
    """Header, pool and subnet table of a blob."""
    from slimhar.quantize.blob import Blob
    info = Blob.open(file).info()
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(f"{file}: {info['file_bytes']:,} bytes, {info['arch']} {info['window']}x{info['axes']} -> "
               f"{info['classes']} classes, {info['subnets']} subnets, pool {info['pool_bytes']:,} bytes")
    sp = info["input_spec"]
    click.echo(f"  input: {sp['sample_rate_hz']:g} Hz, window {sp['window']}, hop {sp['hop']}; feed {', '.join(sp['raw'])}")
    click.echo(f"  chain: {sp['chain']}")
    click.echo(f"  model channels: {', '.join(sp['channels'])}; classes: {', '.join(sp['classes'])}")
    for p in info["pool"]:
        click.echo(f"  pool {p['name']:<16} {str(p['shape']):<20} {p['bytes']:>9,d} B")
    click.echo(f"{'subnet':<12} {'channels':<16} {'MACs':>11} {'arena B':>8} {'float %':>8} {'int8 %':>8} "
               f"{'private B':>9}")
    for s in info["table"]:
        click.echo(f"{s['name']:<12} {str(s['channels']):<16} {s['macs']:>11,d} {s['arena_bytes']:>8,d} "
                   f"{100 * s['float_acc']:>8.2f} {100 * s['int8_acc']:>8.2f} {s['private_bytes']:>9,d}")
    priv = sum(s["private_bytes"] for s in info["table"])
    click.echo(f"private bytes (model region from a subnet's start to the next one's, references, multipliers, "
               f"stored plan, table entry): {priv:,} in all, {priv / max(1, info['subnets']):,.0f} a subnet on average")
    plans = [s["plan"] for s in info["table"]]
    least = [s["name"] for s in info["table"] if s["plan"] == "stored+least_ram"]
    click.echo(f"stored engine plans: {len(plans) - plans.count('none')} of {len(plans)} subnets; a second one for the "
               f"least-RAM firmware (export-c --least-ram) where its tiles differ: {', '.join(least) or 'none'}")


@blob.command("select")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--subnets", "which", default="pareto", show_default=True,
              help="all, pareto (validation int8 accuracy vs cost on the M4), or a list: w010_t96,w100_t128 / indices.")
@click.option("--flash-budget", type=int, default=None,
              help="Bytes of flash for blob + firmware: keep the best subset of the chosen ones that fits.")
@click.option("--firmware-bytes", type=int, default=None, help="The firmware without its blob (default: 80,896: 80,344 measured on the emulated board, rounded up).")
@click.option("--latency", "latency_json", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Measured latencies (slimhar bench engine --json, slimhar device bench --json); default: 1 instruction per MAC.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="The selected blob.")
@user_errors
def blob_select(file, which, flash_budget, firmware_bytes, latency_json, out_path):
    """A blob of some of FILE's subnets over the same (trimmed) pool: what a board's flash holds."""
    from slimhar import api
    b = api.load_blob(file)
    info = api.pack(b, out_path, subnets=which, flash_budget=flash_budget, firmware_bytes=firmware_bytes,
                    latency=latency_json)
    budget = f", flash budget {flash_budget:,} B with {info['firmware_bytes']:,} B of firmware" if flash_budget else ""
    click.echo(f"{file}: {len(b.subnets)} subnets, {len(b.data):,} B -> {out_path}: {len(info['subnets'])} subnets "
               f"({which}{budget}), {info['blob_bytes']:,} B; cost {info['cost']}")
    click.echo(f"{'subnet':<10} {'MACs':>11} {'cost':>12} {'val int8 %':>10} {'pareto':>6}")
    for r in info["subnets"]:
        click.echo(f"{r['name']:<10} {r['macs']:>11,} {r['cost']:>12,.0f} {100 * r['val_int8_acc']:>10.2f} "
                   f"{'*' if r['pareto'] else '':>6}")


@blob.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@user_errors
def blob_verify(file):
    """Structure and CRC, then every subnet unpacked and run in TFLM (shape and type of the output)."""
    import numpy as np
    from slimhar.quantize.blob import Blob
    from slimhar.quantize.oracle import Tflm
    b = Blob.open(file)
    rng = np.random.default_rng(0)
    for s in b.subnets:
        t = Tflm(b.unpack(s))
        out = t.run(rng.integers(-128, 128, (1, s.resolution, b.axes, 1), dtype=np.int8))
        if out.shape != (1, b.classes) or out.dtype != np.int8:
            raise click.ClickException(f"{s.name}: TFLM output {out.dtype} {out.shape}, expected int8 (1, {b.classes})")
    click.echo(f"{file}: OK ({len(b.subnets)} subnets unpacked and run in TFLM, CRC and structure valid)")


@blob.command("unpack")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--subnet", required=True, help="Subnet name, e.g. w100_t128 (see blob info).")
@click.option("-o", "output", required=True, type=click.Path(dir_okay=False))
@user_errors
def blob_unpack(file, subnet, output):
    """One subnet as a standalone .tflite (TFLM / LiteRT / Netron)."""
    from slimhar.quantize.blob import Blob
    b = Blob.open(file)
    data = b.unpack(b.find(subnet))
    with open(output, "wb") as f:
        f.write(data)
    click.echo(f"wrote {output} ({len(data):,} bytes)")


@blob.command("export-c")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for NAME.h / NAME.c.")
@click.option("--symbol", default="slimhar_blob", show_default=True, help="C array name (and file stem).")
@click.option("--dsp-scratch-budget", type=click.IntRange(min=1), default=None,
              help="The firmware's SLIMHAR_DSP_SCRATCH_BUDGET, if not the default (sizes the arena).")
@click.option("--least-ram", is_flag=True,
              help="Size the arena for the least RAM any subnet can run in (smaller DSP tiles where needed, "
                   "slower on the subnets that need them; docs/results.md §4) instead of every subnet's fastest.")
@click.option("--ram-limit", type=click.IntRange(min=1), default=None, metavar="BYTES",
              help="Size the arena for every subnet's fastest tiles within BYTES of arena + scratch (those that "
                   "cannot fit take their least): between the default and --least-ram (bench-tflm-arena measures "
                   "the cost). Subnets whose tiles then differ from both stored plans switch cold from the flatbuffer.")
@user_errors
def blob_export_c(file, out_dir, symbol, dsp_scratch_budget, least_ram, ram_limit):
    """The blob as C source + header the firmware links (16-byte aligned const data, in flash)."""
    from slimhar.quantize.c_export import export_c
    with open(file, "rb") as f:
        h, c = export_c(f.read(), out_dir, symbol, file, least_ram=least_ram, ram_limit=ram_limit or 0,
                        **({"dsp_scratch_budget": dsp_scratch_budget} if dsp_scratch_budget else {}))
    click.echo(f"wrote {h} and {c}")


@blob.command("check-engine")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--kinds", default="host,dsp", show_default=True,
              help="Where to run the C++ engine: host (gcc), dsp / portable (QEMU Cortex-M4F, kernel flavour).")
@click.option("--host-windows", type=int, default=None, help="Test windows per subnet on the host (default: all).")
@click.option("--qemu-windows", type=int, default=16, show_default=True, help="Test windows per subnet in QEMU.")
@click.option("--config", default=None, help="The training config (file or bundled name) whose test windows to use "
                                             "(default: the config the blob carries).")
@click.option("--data-dir", type=click.Path(), default=None, envvar="SLIMHAR_DATA_DIR")
@user_errors
def blob_check_engine(file, kinds, host_windows, qemu_windows, config, data_dir):
    """Run every subnet of FILE through the firmware's C++ engine and compare its int8 logits
    with TFLM's (the oracle) on the test windows of the blob's dataset, bit for bit; and check
    that every stored plan is what the engine's Prepare computes (it then runs from it)."""
    from slimhar.tools.engine_check import EngineCheckError, check_blob
    ks = [k.strip() for k in kinds.split(",") if k.strip()]
    if any(k not in ("host", "dsp", "portable") for k in ks):
        raise UserError(f"--kinds: choose from host, dsp, portable (got {kinds!r})")
    try:
        r = check_blob(file, ks, {"host": host_windows, "dsp": qemu_windows, "portable": qemu_windows}, click.echo,
                       config, data_dir)
    except EngineCheckError as e:
        raise UserError(str(e)) from None
    if any(v["mismatching_subnets"] or v["stored_plans_differing"] for v in r["kinds"].values()):
        raise SystemExit(1)
