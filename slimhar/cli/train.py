"""``slimhar train``, ``slimhar eval`` and ``slimhar data``: the method's side."""
from __future__ import annotations

import json
import sys

import click

from .common import UserError, main, user_errors


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
@click.option("--log-test", is_flag=True,
              help="Also log the validated subnets' TEST accuracy every validation (the paper's protocol picks its "
                   "best epoch by it; reporting only, never used for a choice; training is unchanged).")
@user_errors
def train(config, out, epochs, seed, resume, data_dir, device, nproc, layout, precision, log_test):
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
    from slimhar import api
    from slimhar.train.evaluate import grid_table
    res = api.train(config, out, epochs=epochs, seed=seed, resume=resume, data_dir=data_dir, device=device,
                    layout=layout, precision=precision, progress=sys.stderr.isatty(), log_test=log_test)
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
@user_errors
def eval_(checkpoint, split, json_path, plot_path, data_dir):
    """Accuracy, MACs and parameters of every (width, resolution) subnet of the grid."""
    from slimhar.train import checkpoint as ckpt
    from slimhar.train.evaluate import evaluate_grid, grid_table, pareto_front, pareto_plot
    if plot_path:
        from slimhar.extras import require
        require("matplotlib")           # before minutes of evaluation, not after
    from slimhar.train.inputs import load_data, to_input
    import torch
    ck = ckpt.load(checkpoint)
    if not ck.get("bn_calibrated"):
        raise UserError(f"{ck['path']}: training did not finish (no BN calibration yet); resume it first")
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


# -- data -------------------------------------------------------------------------------------
@main.group()
def data():
    """Datasets: what the loaders read."""


@data.command("info")
@click.argument("name")
@click.option("--data-dir", type=click.Path(), default=None, envvar="SLIMHAR_DATA_DIR")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the validation / test split.")
@click.option("--json", "as_json", is_flag=True)
@user_errors
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
