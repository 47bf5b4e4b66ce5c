"""``slimhar device`` and ``slimhar policy``: the firmware over its serial protocol, and its policy run on the host."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .common import UserError, main, user_errors


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
    raise UserError(f"no trace file {name!r} (bundled: {have})")


@policy.command("simulate")
@click.option("--blob", "blob_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--trace", "traces", required=True, multiple=True,
              help="Trace JSON file, or a bundled name: budget_steps, load_steps, battery_drain (repeatable).")
@click.option("--latency", "latency_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="`slimhar bench engine --json` output: measured per-subnet latency instead of the MAC estimate.")
@click.option("--clock-mhz", type=float, default=64.0, show_default=True, help="Core clock for instructions -> time.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), default=None, help="Folder for one timeline PNG per trace.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@user_errors
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
            raise UserError(f"{latency_path}: not a `slimhar bench engine --json` result ({type(e).__name__}: {e})") from None
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
            raise UserError(str(e)) from None
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


# -- device -----------------------------------------------------------------------------------
@main.group()
def device():
    """Talk to the firmware over its serial protocol: a board (--port) or the emulated one (--qemu)."""


def target_options(fn):
    fn = click.option("--port", default=None, help="Serial port of a flashed board (/dev/ttyACM0) or a socket:// URL.")(fn)
    fn = click.option("--baud", type=int, default=115200, show_default=True)(fn)
    fn = click.option("--qemu", is_flag=True, help="Build the firmware and run it in QEMU (mps2-an386, -icount).")(fn)
    fn = click.option("--blob", "blob_path", type=click.Path(exists=True, dir_okay=False), default=None,
                      help="With --qemu: the blob to embed (default: the firmware's, runs/firmware/model.blob).")(fn)
    return fn


class Connection:
    def __init__(self, port, baud, qemu, blob_path):
        if bool(port) == bool(qemu):
            raise UserError("give exactly one of --port PORT and --qemu")
        self.port, self.baud, self.qemu, self.blob_path = port, baud, qemu, blob_path
        self.q = None

    def __enter__(self):
        from slimhar.tools import device as dv
        try:
            url = self.port
            if self.qemu:
                click.echo("building the firmware (pio run -e mps2_an386) ...", err=True)
                elf = dv.build_firmware(Path(self.blob_path) if self.blob_path else None)
                self.q = dv.Qemu(elf).__enter__()
                url = self.q.url
            self.dev = dv.Device(url, self.baud)
            self.dev.wait_ready()
        except dv.DeviceError as e:
            self.__exit__()
            raise UserError(str(e)) from None
        return self.dev

    def __exit__(self, *exc):
        if getattr(self, "dev", None):
            self.dev.close()
        if self.q:
            self.q.__exit__()


def device_errors(fn):
    import functools

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        from slimhar.tools.device import DeviceError
        try:
            return fn(*a, **kw)
        except DeviceError as e:
            raise UserError(str(e)) from None
    return wrapper


@device.command("info")
@target_options
@user_errors
@device_errors
def device_info(port, baud, qemu, blob_path):
    """Firmware, board, the embedded blob and its subnet table with latencies measured on the core."""
    with Connection(port, baud, qemu, blob_path) as dev:
        info = dev.info()
    d, b, p = info["device"], info["blob"], info["policy"]
    click.echo(f"firmware {d['firmware']} (protocol {d['protocol']}) on {d['board']}, {d['kernels']} kernels; "
               f"latency in {d['clock']} / {d['per_us']} per us")
    click.echo(f"blob: {b['subnets']} subnets, window {b['window']} x {b['axes']} axes, {b['classes']} classes, "
               f"{int(b['rate_mhz']) / 1000:g} Hz, hop {b['hop']} samples ({int(b['hop_us']) / 1000:g} ms)")
    i = info["input"]
    click.echo(f"input: feed {i['raw']} -> chain {i['chain']} -> {i['channels']}")
    click.echo(f"classes: {info['classes']['names']}")
    # cold switch: a prepare after the first (which proved the subnet's stored plan), from that
    # stored plan or, when none matches this build, from the flatbuffer ("model")
    click.echo(f"{'i':>3}  {'subnet':<10} {'MACs':>10} {'val acc %':>9} {'latency ms':>10} {'cold switch ms':>14} "
               f"{'plan':<6} {'front':>5}")
    for r in info["subnets"]:
        click.echo(f"{r['i']:>3}  {r['name']:<10} {int(r['macs']):>10,} {int(r['acc_bp']) / 100:>9.2f} "
                   f"{int(r['latency_us']) / 1000:>10.2f} {int(r['prepare_us']) / 1000:>14.3f} {r.get('plan', '?'):<6} "
                   f"{'*' if r['front'] == '1' else '':>5}")
    click.echo(f"policy: {p['mode']}, budget {p['budget_permille']} permille of the hop = {int(p['budget_us']) / 1000:g} ms, "
               f"battery {p['battery']} %, load {p['load']} %")


@device.command("stream")
@target_options
@click.option("--recording", default="hapt-uci:0", show_default=True,
              help="hapt-uci:K (the K-th held-out recording: raw acc + gyro for a device running the causal chain, "
                   "the zero-phase channels for an offline blob), basicmotions (its test windows one "
                   "after another), or a .npy of samples [N, raw channels].")
@click.option("--samples", type=int, default=2000, show_default=True, help="How many samples to stream (0: all).")
@click.option("--rate", type=float, default=None, help="Pace at this many samples a second (default: as fast as it takes them).")
@click.option("--subnet", type=int, default=None, help="Force one subnet (default: the policy chooses).")
@click.option("--budget", default=None, help="Duty-cycle budget: PERMILLE of each hop, or Nms.")
@click.option("--battery", type=int, default=None, help="Battery level (%%).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@user_errors
@device_errors
def device_stream(port, baud, qemu, blob_path, recording, samples, rate, subnet, budget, battery, json_path):
    """Stream a recording through `feed`; print every window's result and a summary."""
    import numpy as np
    from slimhar.tools import device as dv
    if recording.startswith("hapt-uci"):
        try:
            k = int(recording.split(":")[1]) if ":" in recording else 0
        except ValueError:
            raise UserError(f"--recording {recording!r}: hapt-uci:K with K a number") from None
        X = ("hapt-uci", k)     # raw or preprocessed: the device's input spec says which (below)
    elif recording == "basicmotions":   # the windows are its raw channels (its spec has no chain)
        from slimhar.train.config import load_config
        from slimhar.train.inputs import load_data
        T = load_data(load_config("basicmotions_cnn")).test.X
        X = T.reshape(-1, T.shape[2]).astype(np.float32)[:samples or None]
    else:
        try:
            X = np.load(recording).astype(np.float32)
        except (OSError, ValueError) as e:
            raise UserError(f"{recording}: not a .npy of samples ({e})") from None
        if X.ndim != 2:
            raise UserError(f"{recording}: samples must be [N, axes], got shape {list(X.shape)}")
        X = X[:samples or None]
    with Connection(port, baud, qemu, blob_path) as dev:
        spec = dev.info()["input"]
        if isinstance(X, tuple):
            _, X, _ = dv.held_out_recording(X[1], 500, samples or None, preprocessed=spec["chain"] == "offline")
        raw = spec["raw"].split(",")
        if X.shape[1] != len(raw):
            raise UserError(f"{recording}: {X.shape[1]} channels, the device takes {len(raw)} ({spec['raw']})")
        if subnet is not None:
            dev.command(f"subnet set {subnet}")
        if budget is not None:
            dev.command(f"budget set {budget}")
        if battery is not None:
            dev.command(f"battery set {battery}")
        dev.command("stream on")
        from tqdm import tqdm
        with tqdm(total=len(X), unit="sample", desc="feed", leave=False, disable=None) as bar:  # no bar off a terminal
            last = [0]

            def step(n):
                bar.update(n - last[0])
                last[0] = n
            res = dev.stream(X, samples_per_line=8 if rate is None else 4, rate_hz=rate, progress=step)
        st = dev.stats()
    for r in res:
        if r.get("skipped"):
            click.echo(f"window {r['seq']:>4}  end {r['end']:>6}  skipped ({r['flags']})")
        else:
            click.echo(f"window {r['seq']:>4}  end {r['end']:>6}  {r['name']:<10} class {r['class']}  "
                       f"{int(r['latency_us']) / 1000:8.2f} ms of {int(r['budget_us']) / 1000:g}  {r['flags']}")
    click.echo(f"\n{len(X)} samples -> {st['windows']} windows: {st['ran']} ran, {st['skipped']} skipped, "
               f"{st['drops']} dropped, {st['over_budget']} over budget, {st['switches']} switches, "
               f"{st['errors']} errors; per subnet {st['per_subnet']}")
    if json_path:
        Path(json_path).write_text(json.dumps({"results": res, "stats": st}, indent=1))


@device.command("bench")
@target_options
@click.option("--runs", type=int, default=5, show_default=True)
@click.option("--warmup", type=int, default=1, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@user_errors
@device_errors
def device_bench(port, baud, qemu, blob_path, runs, warmup, json_path):
    """Every subnet timed on the device through MLPerf Tiny's own commands (db load / db / infer)."""
    import numpy as np
    with Connection(port, baud, qemu, blob_path) as dev:
        info = dev.info()
        axes = int(info["blob"]["axes"])
        rows = []
        for r in info["subnets"]:
            dev.command(f"subnet set {r['i']}")
            data = np.zeros(int(r["t"]) * axes, np.int8).tobytes()
            dev.command(f"db load {len(data)}%")
            for i in range(0, len(data), 31):
                dev.command(f"db {data[i:i + 31].hex()}%")
            out = dev.command(f"infer {runs} {warmup}%")
            laps = [int(x.split("-")[-1]) for x in out if x.startswith("m-lap-us-")]
            per = next((int(x.split("-")[-1]) for x in out if "-per-run-" in x), 0)
            rows.append(dict(subnet=int(r["i"]), name=r["name"], macs=int(r["macs"]), us=(laps[1] - laps[0]) / runs,
                             per_run=per, clock=info["device"]["clock"]))
        dev.command("subnet auto")
    clock = rows[0]["clock"] if rows else "cycles"
    click.echo(f"{'subnet':<10} {'MACs':>10} {'us / inference':>15} {clock + ' / run':>18} {clock + ' / MAC':>18}")
    for x in rows:
        click.echo(f"{x['name']:<10} {x['macs']:>10,} {x['us']:>15.1f} {x['per_run']:>18,} {x['per_run'] / x['macs']:>18.3f}")
    if json_path:
        Path(json_path).write_text(json.dumps(rows, indent=1))
