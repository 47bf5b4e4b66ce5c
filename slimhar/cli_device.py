"""The ``slimhar policy`` command group: the on-device subnet policy, run on the host."""
from __future__ import annotations

import json
from pathlib import Path

import click

from slimhar.cli import _UserError, _user_errors, main



@main.group()
def policy():
    """The firmware's subnet policy (bit-exact Python mirror), on traces."""


def _trace_path(name: str) -> Path:
    p = Path(name)
    if p.exists():
        return p
    bundled = Path(__import__("slimhar.tools", fromlist=["x"]).__file__).parent / "traces" / f"{name}.json"
    if bundled.exists():
        return bundled
    have = ", ".join(sorted(f.stem for f in bundled.parent.glob("*.json")))
    raise _UserError(f"no trace file {name!r} (bundled: {have})")


@policy.command("simulate")
@click.option("--blob", "blob_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--trace", "traces", required=True, multiple=True,
              help="Trace JSON file, or a bundled name: budget_steps, load_steps, battery_drain (repeatable).")
@click.option("--latency", "latency_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="`slimhar bench engine --json` output: measured per-subnet latency instead of the MAC estimate.")
@click.option("--clock-mhz", type=float, default=64.0, show_default=True, help="Core clock for instructions -> time.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), default=None, help="Folder for one timeline PNG per trace.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@_user_errors
def policy_simulate(blob_path, traces, latency_path, clock_mhz, plot_dir, json_path):
    """Battery, budget and load over time -> the policy's decisions, the accuracy they achieve,
    windows over budget, against an oracle that knows the whole trace."""
    from slimhar.quantize.blob import Blob
    from slimhar.tools import policy as P
    blob = Blob.open(blob_path)
    lat = None
    if latency_path:
        try:
            rows = json.loads(Path(latency_path).read_text())["rows"]
            lat = {int(r["subnet"]): max(1, round(r["dsp_instructions"] / clock_mhz)) for r in rows}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise _UserError(f"{latency_path}: not a `slimhar bench engine --json` result ({type(e).__name__}: {e})") from None
    cands = P.candidates_from_blob(blob, lat, us_per_mac=1.0 / clock_mhz)
    front = P.pareto_front(cands)
    src = "measured (bench engine)" if lat else f"estimated: 1 instruction per MAC at {clock_mhz:g} MHz"
    click.echo(f"{blob_path}: {len(cands)} subnets, {len(front)} on the accuracy / latency front (latency {src}; "
               "accuracy: the blob's table)")
    for c in front:
        click.echo(f"  {blob.subnets[c.subnet].name:<10} {c.acc_bp / 100:6.2f} %  {c.latency_us / 1000:8.2f} ms")
    results = []
    for name in traces:
        try:
            trace = P.Trace.load(_trace_path(name))
        except ValueError as e:
            raise _UserError(str(e)) from None
        r = P.simulate(cands, trace)
        if plot_dir:
            Path(plot_dir).mkdir(parents=True, exist_ok=True)
            r["plot"] = str(Path(plot_dir) / f"policy_{Path(name).stem}.png")
            P.plot(r, r["plot"])
        results.append(r)
    w = max(len(r["trace"]) for r in results)
    click.echo(f"\n{'trace':<{w}}  windows  ran  switches  accuracy  oracle  ratio  over budget  outside steps  max per step")
    for r in results:
        ratio = r["accuracy_pct"] / r["oracle_accuracy_pct"] if r["oracle_accuracy_pct"] else float("nan")
        click.echo(f"{r['trace']:<{w}}  {r['windows']:>7}  {r['ran']:>3}  {r['switches']:>8}  {r['accuracy_pct']:7.2f}%"
                   f"  {r['oracle_accuracy_pct']:5.2f}%  {ratio:5.3f}  {r['over_budget']:>11}  {r['over_budget_outside_steps']:>13}"
                   f"  {r['max_over_per_step']:>12}")
        if r.get("plot"):
            click.echo(f"  plot: {r['plot']}")
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1))
