"""The ``slimhar`` command line: ``train``, ``eval``, ``data``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click


class _UserError(click.ClickException):
    pass


def _user_errors(fn):
    """Turn the project's input errors into one clear line and exit status 1 (no traceback)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        from slimhar.train.checkpoint import CheckpointError
        from slimhar.train.config import ConfigError
        from slimhar.train.data import DatasetError
        from slimhar.quantize.blob import BlobError
        try:
            return fn(*a, **kw)
        except (CheckpointError, ConfigError, DatasetError, BlobError) as e:
            raise _UserError(str(e)) from None
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="slimhar")
def main():
    """slimhar: train every width x resolution subnet of a HAR network together, quantize
    them into one shared-weight blob, and run it on a Cortex-M wearable."""


# -- train ------------------------------------------------------------------------------------
@main.command()
@click.option("--config", "config", required=True, help="YAML file, or a bundled config name (e.g. hapt_uci_cnn).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Run folder (checkpoint.pt, train_log.jsonl).")
@click.option("--epochs", type=int, default=None, help="Override the config's epochs.")
@click.option("--seed", type=int, default=None, help="Override the config's seed.")
@click.option("--resume", is_flag=True, help="Continue the run in --out after its last completed epoch.")
@click.option("--data-dir", type=click.Path(), default=None, envvar="SLIMHAR_DATA_DIR",
              help="Folder of the official dataset files (uci-har, wisdm, unimib, npz).")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--nproc", type=int, default=1, show_default=True,
              help="Processes on this machine (DistributedDataParallel via torchrun; gloo on CPU, NCCL on CUDA).")
@click.option("--layout", type=click.Choice(["auto", "fused", "cl", "nchw", "seq"]), default=None,
              help="Override the config's layout (auto: fused C++ kernels on the CPU).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=None,
              help="Override the config's precision (bf16: bfloat16 GEMMs, fp32 accumulation; fused layout).")
@_user_errors
def train(config, out, epochs, seed, resume, data_dir, device, nproc, layout, precision):
    """Collaborative training of every width x resolution subnet, then BN calibration of each.

    Also runs as one rank of a torchrun job: torchrun --nproc-per-node N -m slimhar train ..."""
    if nproc > 1:
        import subprocess
        args = [a for a in sys.argv[1:]]
        i = args.index("--nproc") if "--nproc" in args else None
        if i is not None:
            del args[i:i + 2]
        else:
            args = [a for a in args if not a.startswith("--nproc=")]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "slimhar", *args]
        raise SystemExit(subprocess.call(cmd))
    from slimhar.train.config import check as check_config, load_config
    from slimhar.train.evaluate import grid_table
    from slimhar.train.trainer import train as run
    cfg = load_config(config)
    if epochs is not None:
        cfg["epochs"] = epochs
    if seed is not None:
        cfg["seed"] = seed
    for key, val in (("layout", layout), ("precision", precision)):
        if val is not None:
            cfg[key] = val
    check_config(cfg)
    res = run(cfg, out, resume=resume, data_dir=data_dir, progress=sys.stderr.isatty(), device=device)
    if res["rank"] != 0:
        return
    click.echo(f"\ncheckpoint: {res['checkpoint']}  ({res['epochs']} epochs, "
               f"BN calibration {res['bn_calibration_seconds']:.1f} s)")
    click.echo("validation accuracy (%) of a few subnets:")
    click.echo(grid_table(res["val_summary"]))


# -- eval -------------------------------------------------------------------------------------
@main.command("eval")
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write every row as JSON.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="Accuracy-vs-MACs Pareto plot (.png).")
@click.option("--data-dir", type=click.Path(), default=None, envvar="SLIMHAR_DATA_DIR")
@_user_errors
def eval_(checkpoint, split, json_path, plot_path, data_dir):
    """Accuracy, MACs and parameters of every (width, resolution) subnet of the grid."""
    from slimhar.train import checkpoint as ckpt
    from slimhar.train.evaluate import evaluate_grid, grid_table, pareto_front, pareto_plot
    from slimhar.train.trainer import load_data, to_input
    import torch
    ck = ckpt.load(checkpoint)
    if not ck.get("bn_calibrated"):
        raise _UserError(f"{ck['path']}: training did not finish (no BN calibration yet); resume it first")
    model = ckpt.build_model(ck)
    data = load_data(ck["config"], data_dir)
    s = data.splits()[split]
    X = to_input(s.X, ck["dataset"]["norm_mean"], ck["dataset"]["norm_std"])
    rows = evaluate_grid(model, X, torch.from_numpy(s.y), progress=sys.stderr.isatty())
    click.echo(f"{ck['config']['name']}: {ck['spec']['arch']} on {data.name} {split} ({len(s)} windows), "
               f"{len(rows)} subnets, accuracy (%):")
    click.echo(grid_table(rows))
    front = pareto_front(rows)
    click.echo("\nPareto front (width, T', MACs, params, accuracy):")
    for r in front:
        click.echo(f"  {r['width']:.2f}  {r['resolution']:4d}  {r['macs']:>10,d}  {r['params']:>8,d}  {100 * r['accuracy']:6.2f} %")
    best = max(rows, key=lambda r: (r["width"], r["resolution"]))
    click.echo(f"\nwidth {best['width']:.2f} @ T'={best['resolution']}: {100 * best['accuracy']:.2f} %, "
               f"{best['macs']:,} MACs, {best['params']:,} params")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"checkpoint": ck["path"], "config": ck["config"]["name"], "split": split,
                       "windows": len(s), "rows": rows}, f, indent=1)
        click.echo(f"wrote {json_path}")
    if plot_path:
        pareto_plot(rows, plot_path, f"{ck['config']['name']} ({split}, {len(s)} windows)")
        click.echo(f"wrote {plot_path}")


# -- quantize ---------------------------------------------------------------------------------
@main.command()
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder: subnets/*.tflite, model.blob, report.json/.md, plots.")
@click.option("--widths", default="all", show_default=True, help="Comma-separated grid widths, or all.")
@click.option("--resolutions", default="all", show_default=True, help="Comma-separated grid T' values, or all.")
@click.option("--calib-batches", type=int, default=None,
              help="Calibration windows = N x batch size (default: the checkpoint's BN calibration set).")
@click.option("--ranges", type=click.Choice(["mse", "percentile", "minmax", "nncf"]), default="mse", show_default=True,
              help="Activation ranges: mse (least-squares clipping of the input and first block output, min-max "
                   "elsewhere), percentile (clips the input and logits at 0.01/99.99 %), minmax, or nncf "
                   "(NNCF's post-training quantization ranges each activation of the subnet's float model).")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True)
@click.option("--verify", type=int, default=16, show_default=True,
              help="Windows per subnet run in TFLM and LiteRT's reference kernels for the parity check.")
@click.option("--qat-epochs", type=int, default=0, show_default=True,
              help="Quantization-aware fine-tune of the supernet (shared weight quantizer in the loop) before export.")
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also quantize every subnet on its own with the TF converter, for comparison.")
@click.option("--subnets", "which", default="all", show_default=True,
              help="What model.blob holds: all, pareto (validation int8 accuracy vs estimated M4 cost), or a list "
                   "(w010_t96,...); the whole grid stays in model.full.blob. See `slimhar blob select`.")
@click.option("--data-dir", type=click.Path(), default=None, envvar="SLIMHAR_DATA_DIR")
@_user_errors
def quantize(checkpoint, out, widths, resolutions, calib_batches, ranges, split, verify, qat_epochs, baseline, which,
             data_dir):
    """Every subnet to an int8 TFLite-Micro flatbuffer sharing ONE int8 weight pool, packed in one blob."""
    from slimhar.quantize.export import quantize_checkpoint
    from slimhar.train import checkpoint as ckpt
    try:
        calib = None
        if calib_batches:
            calib = calib_batches * int(ckpt.load(checkpoint)["config"]["batch_size"])
        rep = quantize_checkpoint(checkpoint, out, widths, resolutions, calib, split, ranges, verify,
                                  data_dir, progress=sys.stderr.isatty(), baseline=baseline, qat_epochs=qat_epochs)
    except ValueError as e:     # bad --widths / --resolutions, bad checkpoint or data
        raise _UserError(str(e)) from None
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
    if which != "all":
        from slimhar.quantize.blob import Blob
        from slimhar.quantize.select import select
        full = Path(out) / "model.full.blob"
        (Path(out) / "model.blob").replace(full)
        data, info = select(Blob.open(full), which)
        (Path(out) / "model.blob").write_bytes(data)
        click.echo(f"model.blob: {len(info['subnets'])} of {rep['subnets']} subnets ({which}: "
                   f"{', '.join(r['name'] for r in info['subnets'])}), {len(data):,} B; the whole grid in {full}")
    click.echo(f"wrote {out}/model.blob, {out}/subnets/, {out}/report.json, {out}/report.md")


# -- blob -------------------------------------------------------------------------------------
@main.group()
def blob():
    """Inspect, verify and unpack a model.blob."""


@blob.command("info")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@_user_errors
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
    click.echo(f"{'subnet':<12} {'channels':<16} {'MACs':>11} {'arena B':>8} {'float %':>8} {'int8 %':>8} {'model B':>8}")
    for s in info["table"]:
        click.echo(f"{s['name']:<12} {str(s['channels']):<16} {s['macs']:>11,d} {s['arena_bytes']:>8,d} "
                   f"{100 * s['float_acc']:>8.2f} {100 * s['int8_acc']:>8.2f} {s['model_bytes']:>8,d}")


@blob.command("select")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--subnets", "which", default="pareto", show_default=True,
              help="all, pareto (validation int8 accuracy vs cost on the M4), or a list: w010_t96,w100_t128 / indices.")
@click.option("--flash-budget", type=int, default=None,
              help="Bytes of flash for blob + firmware: keep the best subset of the chosen ones that fits.")
@click.option("--firmware-bytes", type=int, default=None, help="The firmware without its blob (default: 61,440, measured on the emulated board).")
@click.option("--latency", "latency_json", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Measured latencies (slimhar bench engine --json, slimhar device bench --json); default: 1 instruction per MAC.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="The selected blob.")
@_user_errors
def blob_select(file, which, flash_budget, firmware_bytes, latency_json, out_path):
    """A blob of some of FILE's subnets over the same (trimmed) pool: what a board's flash holds."""
    from slimhar.quantize.blob import Blob
    from slimhar.quantize.select import FIRMWARE_BYTES, select
    b = Blob.open(file)
    data, info = select(b, which, flash_budget, latency_json, firmware_bytes or FIRMWARE_BYTES)
    Path(out_path).write_bytes(data)
    budget = f", flash budget {flash_budget:,} B with {info['firmware_bytes']:,} B of firmware" if flash_budget else ""
    click.echo(f"{file}: {len(b.subnets)} subnets, {len(b.data):,} B -> {out_path}: {len(info['subnets'])} subnets "
               f"({which}{budget}), {info['blob_bytes']:,} B; cost {info['cost']}")
    click.echo(f"{'subnet':<10} {'MACs':>11} {'cost':>12} {'val int8 %':>10} {'pareto':>6}")
    for r in info["subnets"]:
        click.echo(f"{r['name']:<10} {r['macs']:>11,} {r['cost']:>12,.0f} {100 * r['val_int8_acc']:>10.2f} "
                   f"{'*' if r['pareto'] else '':>6}")


@blob.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_user_errors
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
@_user_errors
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
@_user_errors
def blob_export_c(file, out_dir, symbol):
    """The blob as C source + header the firmware links (16-byte aligned const data, in flash)."""
    from slimhar.quantize.blob import export_c
    with open(file, "rb") as f:
        h, c = export_c(f.read(), out_dir, symbol, file)
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
@_user_errors
def blob_check_engine(file, kinds, host_windows, qemu_windows, config, data_dir):
    """Run every subnet of FILE through the firmware's C++ engine and compare its int8 logits
    with TFLM's (the oracle) on the test windows of the blob's dataset, bit for bit."""
    from slimhar.tools.engine_check import EngineCheckError, check_blob
    ks = [k.strip() for k in kinds.split(",") if k.strip()]
    if any(k not in ("host", "dsp", "portable") for k in ks):
        raise _UserError(f"--kinds: choose from host, dsp, portable (got {kinds!r})")
    try:
        r = check_blob(file, ks, {"host": host_windows, "dsp": qemu_windows, "portable": qemu_windows}, click.echo,
                       config, data_dir)
    except EngineCheckError as e:
        raise _UserError(str(e)) from None
    if any(v["mismatching_subnets"] for v in r["kinds"].values()):
        raise SystemExit(1)


# -- bench ------------------------------------------------------------------------------------
@main.group()
def bench():
    """Benchmarks that print numbers (never assert them)."""


def _summary(rows: list[tuple[str, str]], result: dict, json_path, value_width: int = 0) -> None:
    """A benchmark's closing table (name, value), and its whole result as JSON when asked."""
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"  {k:<{w}}  {v:>{value_width}}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=1)


@bench.command("train")
@click.option("--config", "config", required=True, help="YAML file or bundled config name.")
@click.option("--steps", type=int, default=20, show_default=True, help="Timed steps.")
@click.option("--synthetic/--real", default=True, show_default=True, help="Random windows of the dataset's shape, or the real data.")
@click.option("--windows", type=int, default=None, help="Training windows per epoch (default: the dataset's).")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed steps before the timed ones.")
@click.option("--layout", type=click.Choice(["auto", "fused", "cl", "nchw", "seq"]), default=None,
              help="Default: the config's (auto = fused C++ kernels on the CPU in one process, else cl). "
                   "cl: channels-last GEMM convs; nchw: torch Conv2d; seq: Conv1d over [N*C, ch, T].")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=None,
              help="Default: the config's. bf16: bfloat16 GEMM operands, fp32 accumulation (fused layout).")
@click.option("--warm-shapes/--no-warm-shapes", default=None,
              help="First one untimed pass per GEMM shape the random widths can give: oneDNN compiles each "
                   "bfloat16 GEMM shape once per process (default: on for bf16, off for fp32).")
@click.option("--calib/--no-calib", default=False, show_default=True, help="Also time BN calibration of every subnet.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@_user_errors
def bench_train_cmd(config, steps, warmup, synthetic, windows, layout, precision, warm_shapes, calib, json_path):
    """Seconds per collaborative step and per epoch for a config's model."""
    from slimhar.train.bench import bench_train
    from slimhar.train.config import load_config
    try:
        r = bench_train(load_config(config), steps, warmup=warmup, synthetic=synthetic, windows=windows, layout=layout,
                        precision=precision, warm_shapes=warm_shapes, calib=calib)
    except ValueError as e:
        raise _UserError(str(e)) from None
    click.echo(f"{r['config']} ({r['arch']}, layout {r['layout']}, {r['precision']}, batch {r['batch']}, "
               f"{r['passes_per_step']} passes/step, {r['data']} data) on {r['machine']}")
    rows = [("shape warm-up (passes, s)", f"{r['shape_warmup_passes']}, {r['shape_warmup_s']:.1f}"),
            ("s/step (median)", f"{r['s_per_step']:.4f}"), ("s/step (mean)", f"{r['s_per_step_mean']:.4f}"),
            ("steps/epoch", str(r["steps_per_epoch"])), ("s/epoch", f"{r['s_per_epoch']:.1f}"),
            ("windows/s", f"{r['windows_per_s']:.0f}"), ("peak RSS (MB)", f"{r['peak_rss_mb']:.0f}")]
    if "paper_code_s_per_epoch" in r:
        rows.append(("paper code s/epoch (7352 windows; fixed figure)", f"{r['paper_code_s_per_epoch']:.1f}"))
        rows.append(("speed-up vs that figure (same run: bench paper-code)", f"{r['speedup_vs_paper_code']:.2f}x"))
    if "bn_calibration_s" in r:
        rows.append((f"BN calibration, {r['bn_calibration_subnets']} subnets x {r['bn_calibration_windows']} windows (s)",
                     f"{r['bn_calibration_s']:.1f}"))
    _summary(rows, r, json_path, value_width=10)


@bench.command("paper-code")
@click.option("--repo", "repo", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A checkout of the paper's own repository (Collaborative_HAR: train.py, models/, utils/, apps/).")
@click.option("--config", "config", required=True, help="YAML file or bundled config name (uci_cnn, uci_resnet).")
@click.option("--rounds", type=int, default=3, show_default=True,
              help="Alternations of the paper's code and slimhar, each in a fresh process.")
@click.option("--epochs", type=int, default=1, show_default=True, help="Whole epochs of the paper's code per round.")
@click.option("--steps", type=int, default=40, show_default=True, help="Timed slimhar steps per round and precision.")
@click.option("--precision", "precisions", type=click.Choice(["bf16", "fp32"]), multiple=True,
              help="slimhar precisions to time (default: both).")
@click.option("--calib/--no-calib", default=False, show_default=True,
              help="Also time both sides' BN calibration of every subnet, each round.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@_user_errors
def bench_paper_code_cmd(repo, config, rounds, epochs, steps, precisions, calib, json_path):
    """The paper's own training code and slimhar, timed alternately in one run: the speed-up
    as a ratio of two measurements minutes apart. Runs the checkout's train() on synthetic
    windows with its CUDA calls removed (train/paper_code.py says exactly what is adapted)."""
    from slimhar.train.paper_code import PaperCodeError, compare
    if rounds < 1 or epochs < 1 or steps < 1:
        raise _UserError("--rounds, --epochs and --steps must be at least 1")
    precs = precisions or ("bf16", "fp32")
    try:
        r = compare(repo.resolve(), config, rounds=rounds, epochs=epochs, precisions=precs, steps=steps, calib=calib,
                    progress=lambda m: click.echo(m, err=True))
    except PaperCodeError as e:
        raise _UserError(str(e)) from None
    click.echo(f"{r['config']} ({r['arch']}) against the paper's code (app {r['paper_app']}), s/epoch "
               f"({r['windows']} windows):")
    head = "  round  paper code  " + "  ".join(f"slimhar {p}  speed-up" for p in precs)
    click.echo(head)
    for i, row in enumerate(r["rounds"], 1):
        cells = "  ".join(f"{row[f'slimhar_{p}_s_per_epoch']:12.1f}  {row[f'speedup_{p}']:7.2f}x" for p in precs)
        click.echo(f"  {i:5d}  {row['paper_s_per_epoch']:10.1f}  {cells}")
    if calib:
        click.echo(f"BN calibration of {r['rounds'][0]['calib_subnets']} subnets, s (paper: its ComputeBN, "
                   f"{r['rounds'][0]['paper_calib_windows']} windows each; slimhar: "
                   f"{r['rounds'][0]['slimhar_calib_windows']} windows each):")
        for i, row in enumerate(r["rounds"], 1):
            click.echo(f"  {i:5d}  paper {row['paper_calib_s']:6.1f}  slimhar {row['slimhar_calib_s']:6.1f}  "
                       f"{row['paper_calib_s'] / row['slimhar_calib_s']:5.2f}x")
    rows = [(f"speed-up {p} (median, min-max over rounds)",
             f"{r[f'speedup_{p}']['median']:.2f}x ({r[f'speedup_{p}']['min']:.2f}-{r[f'speedup_{p}']['max']:.2f})")
            for p in precs]
    if any(row["torchvision_standins"] for row in r["rounds"]):
        rows.append(("torchvision", "absent: stand-ins for the names the paper's utils import"))
    _summary(rows, r, json_path)


@bench.command("train-costs")
@click.option("--config", "config", required=True, help="YAML file or bundled config name.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="bf16", show_default=True,
              help="Of the kernel and weight-gradient probes (the fixed-cost probe runs float32).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@_user_errors
def bench_train_costs_cmd(config, precision, json_path):
    """Where a fused step's time goes: fixed cost per step, kernel time per pass by width,
    weight-gradient GEMMs as trained vs with a transposed operand."""
    from slimhar.train.config import load_config
    from slimhar.train.cost_probes import probe_costs
    try:
        r = probe_costs(load_config(config), precision=precision)
    except ValueError as e:
        raise _UserError(str(e)) from None
    click.echo(f"{r['config']} ({r['arch']}, batch {r['batch']}, {r['precision']})")
    rows = [("fixed cost: 9-pass step on 1 window, fp32 (ms)", f"{r['fixed_step_ms']:.1f}")]
    rows += [(f"fused kernels, one pass fwd+bwd, width {w:.2f} (ms)", f"{ms:.2f}")
             for w, ms in r["kernel_ms_per_pass"].items()]
    widths = ", ".join(f"{w:.2f}" for w in r["wgrad_widths"])
    rows += [(f"weight-gradient GEMMs, widths {widths}: {k} (ms)", f"{ms:.2f}") for k, ms in r["wgrad_gemm_ms"].items()]
    _summary(rows, r, json_path, value_width=8)


@bench.command("engine")
@click.option("--blob", "blob_path", type=click.Path(exists=True, dir_okay=False), default="runs/firmware/model.blob",
              show_default=True, help="The blob to measure (every subnet).")
@click.option("--windows", type=int, default=2, show_default=True, help="Windows per subnet, DSP kernels.")
@click.option("--portable-windows", type=int, default=1, show_default=True, help="Windows per subnet, portable kernels.")
@click.option("--firmware/--no-firmware", default=True, show_default=True, help="Also build the firmware with this blob and size its ELF.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="PNG: instructions vs MACs per subnet.")
@_user_errors
def bench_engine_cmd(blob_path, windows, portable_windows, firmware, json_path, plot_path):
    """The firmware engine in QEMU (-icount): instructions per inference / per MAC for every
    subnet, DSP vs portable kernels, arena vs ideal, prepare and switch cost, flash and RAM."""
    from slimhar.tools.bench_engine import bench_engine, plot
    from slimhar.tools.engine_check import EngineCheckError
    try:
        r = bench_engine(blob_path, windows, portable_windows, firmware)
    except EngineCheckError as e:
        raise _UserError(str(e)) from None
    click.echo(f"{r['blob']}: {r['subnets']} subnets, {r['windows']}; QEMU mps2-an386 (Cortex-M4F), -icount shift=0")
    click.echo(f"{'subnet':<11} {'MACs':>10} {'DSP instr':>11} {'/MAC':>5} {'portable':>12} {'/MAC':>5} {'x':>5} "
               f"{'arena':>7} {'ideal':>7} {'scratch':>7} {'prepare':>8} {'ms@64MHz':>8} {'val f/i8 %':>11} {'test f/i8 %':>11}")
    pct = lambda a, b: f"{100 * a:.1f}/{100 * b:.1f}" if a is not None and b is not None else "-"
    for x in r["rows"]:
        click.echo(f"{x['name']:<11} {x['macs']:>10,} {x['dsp_instructions']:>11,.0f} {x['dsp_per_mac']:>5.2f} "
                   f"{x['portable_instructions']:>12,.0f} {x['portable_per_mac']:>5.2f} {x['speedup']:>5.2f} "
                   f"{x['arena_bytes']:>7,} {x['ideal_bytes']:>7,} {x['scratch_bytes']:>7,} {x['prepare_instructions']:>8,} "
                   f"{x['est_ms_at_64mhz']:>8.2f} {pct(x['val_float_acc'], x['val_int8_acc']):>11} "
                   f"{pct(x['test_float_acc'], x['test_int8_acc']):>11}")
    click.echo("ms@64MHz: DSP instructions / 64,000, an estimate for a 64 MHz Cortex-M4F (nRF52840) at one "
               "instruction per cycle; val: the blob's table; test: quantize's report.json beside the blob")
    rows = [("widest subnet", r["widest"]), ("  DSP instructions / MAC", f"{r['widest_dsp_per_mac']:.3f}"),
            ("  DSP speed-up over portable", f"{r['widest_speedup']:.2f}x"),
            ("arena / ideal (worst subnet)", f"{r['max_arena_ratio']:.3f}"),
            ("switch between prepared subnets", f"{r['switch_instructions']:.0f} instructions, 0 bytes copied"),
            ("prepared plan", f"{r['plan_bytes']:,} bytes + 5 per output channel")]
    if "firmware" in r:
        fw = r["firmware"]
        rows += [("firmware flash (with blob)", f"{fw['flash_bytes']:,} bytes"), ("  blob", f"{fw['blob_bytes']:,} bytes"),
                 ("  code + tables", f"{fw['flash_without_blob']:,} bytes"), ("firmware RAM (static)", f"{fw['ram_bytes']:,} bytes"),
                 ("  text / data / bss", " / ".join(f"{fw['sections'].get(k, 0):,}" for k in (".text", ".data", ".bss")))]
    _summary(rows, r, json_path)
    if plot_path:
        plot(r, plot_path)


# -- data -------------------------------------------------------------------------------------
@main.group()
def data():
    """Datasets: what the loaders read."""


@data.command("info")
@click.argument("name")
@click.option("--data-dir", type=click.Path(), default=None, envvar="SLIMHAR_DATA_DIR")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the validation / test split.")
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def data_info(name, data_dir, seed, as_json):
    """Shapes, classes and counts per split of dataset NAME."""
    from slimhar.train.data import load_dataset
    d = load_dataset(name, path=data_dir, seed=seed)
    info = d.info()
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(f"{d.name}: windows {d.window} x {d.channels} ({', '.join(d.channel_names)}) at {d.sample_rate_hz:g} Hz")
    click.echo(f"{d.classes} classes: {', '.join(d.class_names)}")
    w = max(len(c) for c in d.class_names)
    click.echo(f"{'class':<{w}}  " + "  ".join(f"{s:>6}" for s in info["splits"]))
    for i, c in enumerate(d.class_names):
        click.echo(f"{c:<{w}}  " + "  ".join(f"{info['splits'][s]['per_class'][i]:>6}" for s in info["splits"]))
    click.echo(f"{'total':<{w}}  " + "  ".join(f"{info['splits'][s]['windows']:>6}" for s in info["splits"]))
    for s, v in info["splits"].items():
        if v["subjects"] is not None:
            click.echo(f"{s} subjects: {v['subjects']}")
    click.echo(d.notes)


from slimhar import cli_device  # noqa: E402,F401  (registers the policy / device groups)

if __name__ == "__main__":
    main()
