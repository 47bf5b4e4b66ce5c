"""``slimhar bench``: the developer benchmarks (slimhar.benchmarks); they print numbers, never assert them."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .common import UserError, main, summary, user_errors
from .device import device_errors, target_options, Connection


# -- bench ------------------------------------------------------------------------------------
@main.group()
def bench():
    """Benchmarks that print numbers (never assert them)."""


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
@user_errors
def bench_train_cmd(config, steps, warmup, synthetic, windows, layout, precision, warm_shapes, calib, json_path):
    """Seconds per collaborative step and per epoch for a config's model."""
    from slimhar.benchmarks.train_speed import bench_train
    from slimhar.train.config import load_config
    try:
        r = bench_train(load_config(config), steps, warmup=warmup, synthetic=synthetic, windows=windows, layout=layout,
                        precision=precision, warm_shapes=warm_shapes, calib=calib)
    except ValueError as e:
        raise UserError(str(e)) from None
    click.echo(f"{r['config']} ({r['arch']}, layout {r['layout']}, {r['precision']}, batch {r['batch']}, "
               f"{r['passes_per_step']} passes/step, {r['data']} data) on {r['machine']}")
    rows = [("shape warm-up (passes, s)", f"{r['shape_warmup_passes']}, {r['shape_warmup_s']:.1f}"),
            ("s/step (median)", f"{r['s_per_step']:.4f}"), ("s/step (mean)", f"{r['s_per_step_mean']:.4f}"),
            ("steps/epoch", str(r["steps_per_epoch"])), ("s/epoch", f"{r['s_per_epoch']:.1f}"),
            ("windows/s", f"{r['windows_per_s']:.0f}"), ("peak RSS (MB)", f"{r['peak_rss_mb']:.0f}")]
    if "bn_calibration_s" in r:
        rows.append((f"BN calibration, {r['bn_calibration_subnets']} subnets x {r['bn_calibration_windows']} windows (s)",
                     f"{r['bn_calibration_s']:.1f}"))
    summary(rows, r, json_path, value_width=10)


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
@user_errors
def bench_paper_code_cmd(repo, config, rounds, epochs, steps, precisions, calib, json_path):
    """The paper's own training code and slimhar, timed alternately in one run: the speed-up
    as a ratio of two measurements minutes apart. Runs the checkout's train() on synthetic
    windows with its CUDA calls removed (benchmarks/paper_code.py says exactly what is adapted)."""
    from slimhar.benchmarks.paper_code import PaperCodeError, compare
    if rounds < 1 or epochs < 1 or steps < 1:
        raise UserError("--rounds, --epochs and --steps must be at least 1")
    precs = precisions or ("bf16", "fp32")
    try:
        r = compare(repo.resolve(), config, rounds=rounds, epochs=epochs, precisions=precs, steps=steps, calib=calib,
                    progress=lambda m: click.echo(m, err=True))
    except PaperCodeError as e:
        raise UserError(str(e)) from None
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
    summary(rows, r, json_path)


@bench.command("train-costs")
@click.option("--config", "config", required=True, help="YAML file or bundled config name.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="bf16", show_default=True,
              help="Of the kernel and weight-gradient probes (the fixed-cost probe runs float32).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@user_errors
def bench_train_costs_cmd(config, precision, json_path):
    """Where a fused step's time goes: fixed cost per step, kernel time per pass by width,
    weight-gradient GEMMs as trained vs with a transposed operand."""
    from slimhar.train.config import load_config
    from slimhar.benchmarks.train_costs import probe_costs
    try:
        r = probe_costs(load_config(config), precision=precision)
    except ValueError as e:
        raise UserError(str(e)) from None
    click.echo(f"{r['config']} ({r['arch']}, batch {r['batch']}, {r['precision']})")
    rows = [("fixed cost: 9-pass step on 1 window, fp32 (ms)", f"{r['fixed_step_ms']:.1f}")]
    rows += [(f"fused kernels, one pass fwd+bwd, width {w:.2f} (ms)", f"{ms:.2f}")
             for w, ms in r["kernel_ms_per_pass"].items()]
    widths = ", ".join(f"{w:.2f}" for w in r["wgrad_widths"])
    rows += [(f"weight-gradient GEMMs, widths {widths}: {k} (ms)", f"{ms:.2f}") for k, ms in r["wgrad_gemm_ms"].items()]
    summary(rows, r, json_path, value_width=8)


@bench.command("engine")
@click.option("--blob", "blob_path", type=click.Path(exists=True, dir_okay=False), default="runs/firmware/model.blob",
              show_default=True, help="The blob to measure (every subnet).")
@click.option("--windows", type=int, default=2, show_default=True, help="Windows per subnet, DSP kernels.")
@click.option("--portable-windows", type=int, default=1, show_default=True, help="Windows per subnet, portable kernels.")
@click.option("--firmware/--no-firmware", default=True, show_default=True, help="Also build the firmware with this blob and size its ELF.")
@click.option("--least-ram", is_flag=True,
              help="Also each subnet at its least arena + scratch (smaller DSP tiles) and the firmware sized for it.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="PNG: instructions vs MACs per subnet.")
@user_errors
def bench_engine_cmd(blob_path, windows, portable_windows, firmware, least_ram, json_path, plot_path):
    """The firmware engine in QEMU (-icount): instructions per inference / per MAC for every
    subnet, DSP vs portable kernels, arena vs ideal, prepare and switch cost, flash and RAM."""
    from slimhar.benchmarks.engine import bench_engine, plot
    from slimhar.tools.engine_check import EngineCheckError
    try:
        r = bench_engine(blob_path, windows, portable_windows, firmware, least_ram)
    except EngineCheckError as e:
        raise UserError(str(e)) from None
    click.echo(f"{r['blob']}: {r['subnets']} subnets, {r['windows']}; QEMU mps2-an386 (Cortex-M4F), -icount shift=0")
    click.echo(f"{'subnet':<11} {'MACs':>10} {'DSP instr':>11} {'/MAC':>5} {'portable':>12} {'/MAC':>5} {'x':>5} "
               f"{'arena':>7} {'ideal':>7} {'scratch':>7} {'prepare':>8} {'cold':>6} {'ms@64MHz':>8} {'val f/i8 %':>11} "
               f"{'test f/i8 %':>11}")
    pct = lambda a, b: f"{100 * a:.1f}/{100 * b:.1f}" if a is not None and b is not None else "-"
    for x in r["rows"]:
        cold = f"{x['cold_prepare_instructions']:,}" if x["cold_prepare_instructions"] else "-"
        click.echo(f"{x['name']:<11} {x['macs']:>10,} {x['dsp_instructions']:>11,.0f} {x['dsp_per_mac']:>5.2f} "
                   f"{x['portable_instructions']:>12,.0f} {x['portable_per_mac']:>5.2f} {x['speedup']:>5.2f} "
                   f"{x['arena_bytes']:>7,} {x['ideal_bytes']:>7,} {x['scratch_bytes']:>7,} {x['prepare_instructions']:>8,} "
                   f"{cold:>6} {x['est_ms_at_64mhz']:>8.2f} {pct(x['val_float_acc'], x['val_int8_acc']):>11} "
                   f"{pct(x['test_float_acc'], x['test_int8_acc']):>11}")
    click.echo("prepare: the first prepare from the flatbuffer, proving the stored plan; cold: a later prepare from the "
               "proven stored plan (a switch to an evicted plan)")
    if least_ram:
        click.echo(f"\nsized for the least RAM (export-c --least-ram): a {r['least_ram_limit']:,}-byte arena, "
                   "each subnet's plan within it (Plan::ram_limit)")
        click.echo(f"{'subnet':<11} {'arena+scratch':>13} {'its least':>10} {'in the arena':>12} {'DSP instr':>11} "
                   f"{'at its least':>13} {'in the arena':>13} {'cold':>6}")
        for x in r["rows"]:
            pc = lambda v: f"{100 * (v / x['dsp_instructions'] - 1):+.1f}%"
            cold = f"{x['at_limit_cold_prepare_instructions']:,}" if x["at_limit_cold_prepare_instructions"] else "-"
            click.echo(f"{x['name']:<11} {x['arena_bytes'] + x['scratch_bytes']:>13,} {x['least_ram_bytes']:>10,} "
                       f"{x['at_limit_bytes']:>12,} {x['dsp_instructions']:>11,.0f} "
                       f"{pc(x['least_ram_dsp_instructions']):>13} {pc(x['at_limit_dsp_instructions']):>13} {cold:>6}")
        click.echo("its least: the least arena + scratch the subnet runs in (Plan::ram_limit 1, quantize/arena.py); the "
                   "largest of them sizes the arena; cold: a prepare in that arena from the proven stored plan (the "
                   f"blob's least-RAM plan where the tiles differ): {r['at_limit_stored_plans_proven']} of "
                   f"{r['subnets']} proven")
    click.echo("ms@64MHz: DSP instructions / 64,000, an estimate for a 64 MHz Cortex-M4F (nRF52840) at one "
               "instruction per cycle; val: the blob's table; test: quantize's report.json beside the blob")
    rows = [("widest subnet", r["widest"]), ("  DSP instructions / MAC", f"{r['widest_dsp_per_mac']:.3f}"),
            ("  DSP speed-up over portable", f"{r['widest_speedup']:.2f}x"),
            ("arena / ideal (worst subnet)", f"{r['max_arena_ratio']:.3f}"),
            ("  first prepare (flatbuffer + proof)", f"{r['widest_first_prepare']:,} instructions"),
            ("  cold prepare (proven stored plan)", f"{r['widest_cold_prepare']:,} instructions"),
            ("stored plans proven", f"{r['stored_plans_proven']} of {r['subnets']}"),
            ("switch between prepared subnets", f"{r['switch_instructions']:.0f} instructions, 0 bytes copied"),
            ("prepared plan", f"{r['plan_bytes']:,} bytes + {r['op_record_bytes']} per op record x {r['max_ops']} "
                              f"(the blob's largest subnet) = {r['plan_bytes'] + r['op_record_bytes'] * r['max_ops']:,} "
                              "bytes (+ 5 per output channel without multiplier tables)")]
    if "firmware" in r:
        fw = r["firmware"]
        rows += [("firmware flash (with blob)", f"{fw['flash_bytes']:,} bytes"), ("  blob", f"{fw['blob_bytes']:,} bytes"),
                 ("  code + tables", f"{fw['flash_without_blob']:,} bytes"), ("firmware RAM (static)", f"{fw['ram_bytes']:,} bytes"),
                 ("  text / data / bss", " / ".join(f"{fw['sections'].get(k, 0):,}" for k in (".text", ".data", ".bss"))),
                 *[(f"    {k}", f"{v:,} bytes") for k, v in fw.get("ram_parts", {}).items()],
                 ("  free for the stack and a BLE stack", f"{262144 - fw['ram_bytes']:,} of 262,144 bytes")]
    if "firmware_least_ram" in r:
        fl = r["firmware_least_ram"]
        rows += [("firmware RAM (static), sized for the least RAM", f"{fl['ram_bytes']:,} bytes"),
                 *[(f"    {k}", f"{v:,} bytes") for k, v in fl.get("ram_parts", {}).items() if "arena" in k]]
    summary(rows, r, json_path)
    if plot_path:
        plot(r, plot_path)


# -- the paper's runtime experiments on the device -----------------------------------------------


@bench.command("runtime")
@target_options
@click.option("--recording", type=int, default=3, show_default=True, help="Which held-out hapt-uci recording to stream.")
@click.option("--windows", type=int, default=12, show_default=True, help="Windows per step.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/bench_runtime", show_default=True,
              help="Plots (runtime_budget.png, runtime_load.png) and runtime.json.")
@user_errors
@device_errors
def bench_runtime_cmd(port, baud, qemu, blob_path, recording, windows, out_dir):
    """The seed paper's two runtime experiments on the device: the latency budget stepped down at
    the paper's 70/45/20/10 ratios, and the core's load stepped 0/30/60/0 % (the firmware's load
    generator: --qemu only). Prints windows over budget per change, settling, and accuracy
    against the best single subnet that never violates."""
    from slimhar.tools import device as dv
    from slimhar.tools import runtime
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    with Connection(port, baud, qemu, blob_path) as dev:
        info = dev.info()
        offline = info["input"]["chain"] == "offline"
        try:
            X = dv.held_out_recording(recording, 0, None, preprocessed=offline)[1]
        except dv.DeviceError as e:
            raise UserError(str(e)) from None
        if X.shape[1] != len(info["input"]["raw"].split(",")):
            raise UserError(f"the device takes {info['input']['raw']}: not a hapt-uci model")
        exps = [("budget", runtime.budget_steps)] + ([("load", runtime.load_steps)] if qemu else [])
        for key, fn in exps:
            ex = fn(dev, X, windows_per_step=windows)
            s = runtime.summary(ex)
            runtime.plot(ex, out / f"runtime_{key}.png", f"{ex.name} on {info['device']['board']}")
            results[key] = {"summary": s, "rows": ex.rows, "steps": ex.steps, "subnets": ex.subnets}
    doc = {"board": info["device"], "blob": info["blob"], "recording": recording, "windows_per_step": windows,
           **results}
    (out / "runtime.json").write_text(json.dumps(doc, indent=1, default=str))
    click.echo(f"{'experiment':<13} {'step':>4} {'budget ms':>9} {'load %':>6} {'over':>4} {'settle s':>8}  subnets")
    for key, r in results.items():
        for st in r["summary"]["steps"]:
            click.echo(f"{r['summary']['experiment']:<13} {st['step']:>4} {st['budget_us'] / 1000:>9.1f} {st['load']:>6} "
                       f"{st['over_budget']:>4} {st['settle_s']:>8.2f}  {', '.join(st['subnets'])}")
    for key, r in results.items():
        s = r["summary"]
        click.echo(f"{s['experiment']}: over budget per change {s['over_budget_per_change']}, "
                   f"{s['over_budget_outside_changes']} elsewhere; accuracy of the chosen subnets "
                   f"{100 * s['accuracy_chosen']:.2f} % vs the best single subnet that never violates "
                   f"({s['best_single']}) {100 * s['accuracy_best_single']:.2f} %")
    click.echo(f"plots and runtime.json in {out}")
