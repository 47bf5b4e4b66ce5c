"""``slimhar quantize``: a checkpoint in; per-subnet .tflite files, one blob and a report out.

For every (width, resolution) subnet asked for:

1. activation ranges from its float model on the checkpoint's fixed calibration windows
   (the same training windows BN calibration used);
2. lower it to int8 TFLite builtin ops with the shared weight pool (``graph.lower_subnet``);
3. write ``subnets/<name>.tflite`` (standalone, weights included) and keep the weight-less
   flatbuffer + pool references for the blob;
4. accuracy on the evaluation split: float (torch), int8 (LiteRT's builtin kernels without
   XNNPACK, batched), and a parity check of TFLM -- the oracle -- against LiteRT's reference
   kernels on the first ``verify`` windows (mismatches are counted and reported, never hidden).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from slimhar.train import checkpoint as ckpt
from slimhar.train.evaluate import predict
from slimhar.train.models import resize
from slimhar.train.models.reference import dense_subnet
from slimhar.train.inputs import calib_set, load_data, to_input

from .blob import Blob, pack_blob, subnet_name
from .input_spec import for_checkpoint
from .calibrate import activation_ranges
from .graph import arena_ideal, lower_subnet
from .oracle import LiteRT, Tflm, quantize_input
from .shared import build_pool
from .tflite_io import to_tflite


def _nhwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).contiguous().numpy()     # [N, 1, T, C] -> [N, T, C, 1]


class GridError(ValueError):
    """--widths / --resolutions asked for a subnet the checkpoint's grid does not have."""


def select(values, want, what):
    if want in (None, "all"):
        return list(values)
    out = []
    for v in str(want).split(","):
        try:
            float(v)
        except ValueError:
            raise GridError(f"{what} {v!r} is not a number (give a comma-separated list or all)") from None
        match = [x for x in values if abs(float(x) - float(v)) < 1e-6]
        if not match:
            raise GridError(f"{what} {v} is not in the checkpoint's grid {list(values)}")
        out.append(match[0])
    return out


def quantize_checkpoint(checkpoint, out_dir, widths=None, resolutions=None, calib_windows: int | None = None,
                        split: str = "val", ranges: str = "percentile", verify: int = 16,
                        data_dir=None, progress: bool = True, baseline: bool = False, qat_epochs: int = 0) -> dict:
    t_start = time.perf_counter()
    ck = ckpt.load(checkpoint)
    if not ck.get("bn_calibrated"):
        raise ckpt.CheckpointError(f"{ck['path']}: training did not finish (no BN calibration); resume it first")
    model = ckpt.build_model(ck)                  # float accuracy is always the checkpoint's own
    spec, state, cfg = ck["spec"], ck["model"], ck["config"]
    ws = select(spec["widths"], widths, "width")
    rs = select(spec["resolutions"], resolutions, "resolution")
    data = load_data(cfg, data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    qmodel = model
    if qat_epochs:
        from .qat import qat_finetune
        qmodel = qat_finetune(ck, data, qat_epochs, progress=progress)
        state = {k: v.detach().clone() for k, v in qmodel.state_dict().items()}
        ckpt.save_atomic({**{k: v for k, v in ck.items() if k != "path"}, "model": state,
                          "qat_epochs": qat_epochs}, out / "qat_checkpoint.pt")
    pool = build_pool(state, spec)
    mean, std = ck["dataset"]["norm_mean"], ck["dataset"]["norm_std"]
    if calib_windows:
        cfg = {**cfg, "bn_calibration": {"windows": int(calib_windows)}}
    Xcal = calib_set(cfg, to_input(data.train.X, mean, std))
    ev = data.splits()[split]
    Xev, yev = to_input(ev.X, mean, std), ev.y
    # the blob's accuracy table (what the device's policy trades latency against) is always the
    # VALIDATION split's; `split` is what the report shows
    Xva, yva = to_input(data.val.X, mean, std), data.val.y
    (out / "subnets").mkdir(parents=True, exist_ok=True)
    rows, blob_subnets = [], []
    grid = [(w, r) for w in ws for r in rs]
    for w, r in tqdm(grid, desc="quantize", unit="subnet", disable=not progress):
        idx = model.subnet_index(w, r)
        dense = dense_subnet(qmodel, w, r).eval()
        rng = activation_ranges(dense, resize(Xcal, r), ranges)
        g = lower_subnet(state, spec, pool, w, r, rng, idx)
        g.meta.update({"classes": spec["classes"], "arch": spec["arch"]})   # the .tflite metadata (tflite_io.META_KEYS)
        tfl = to_tflite(g)
        name = subnet_name(w, r)
        (out / "subnets" / f"{name}.tflite").write_bytes(tfl)
        xr = resize(Xev, r)
        float_pred = predict(model, Xev, w, r).numpy()
        inp = g.tensors[g.inputs[0]]
        xq = quantize_input(_nhwc(xr), inp.scale[0], inp.zero_point[0])
        litert = LiteRT(tfl, reference=False, threads=os.cpu_count() or 1)   # integer: thread-count independent
        int8_logits = litert.run(xq)
        if split == "val":
            val_float, val_int8 = float((float_pred == yev).mean()), float((int8_logits.argmax(1) == yev).mean())
        else:
            xvq = quantize_input(_nhwc(resize(Xva, r)), inp.scale[0], inp.zero_point[0])
            val_float = float((predict(model, Xva, w, r).numpy() == yva).mean())
            val_int8 = float((litert.run(xvq).argmax(1) == yva).mean())
        nv = min(verify, len(xq))
        tflm = Tflm(tfl).run(xq[:nv])
        ref = LiteRT(tfl, reference=True).run(xq[:nv])
        cost = model.cost(w, r)
        row = {"name": name, "width": w, "resolution": r, "channels": g.meta["channels"], **cost,
               "float_acc": float((float_pred == yev).mean()), "int8_acc": float((int8_logits.argmax(1) == yev).mean()),
               "val_float_acc": val_float, "val_int8_acc": val_int8,
               "tflite_bytes": len(tfl), "arena_bytes": arena_ideal(g),
               "tflm_vs_litert_ref_mismatches": int((tflm != ref).sum()),
               "tflm_vs_litert_ref_max_lsb": int(np.abs(tflm.astype(int) - ref).max()), "parity_windows": nv,
               "tflm_vs_batch_max_lsb": int(np.abs(tflm.astype(int) - int8_logits[:nv]).max())}
        if baseline:
            from .baseline import convert
            t_b = time.perf_counter()
            fdense = dense if qmodel is model else dense_subnet(model, w, r).eval()   # the checkpoint's float subnet
            btfl = convert(fdense, r, spec["axes"], _nhwc(resize(Xcal, r)))
            (out / "baseline").mkdir(exist_ok=True)
            (out / "baseline" / f"{name}.tflite").write_bytes(btfl)
            bl = LiteRT(btfl, reference=False)
            bq = quantize_input(_nhwc(xr), bl.in_scale, bl.in_zp)
            row["baseline_acc"] = float((bl.run(bq).argmax(1) == yev).mean())
            row["baseline_bytes"] = len(btfl)
            row["baseline_seconds"] = time.perf_counter() - t_b
        rows.append(row)
        model_nw = to_tflite(g, with_weights=False)
        refs = [(t, g.tensors[t].pool_ref[0], g.tensors[t].pool_ref[1], g.tensors[t].pool_ref[2])
                for t in range(len(g.tensors)) if g.tensors[t].pool_ref is not None]
        blob_subnets.append({"width": w, "resolution": r, "classes": spec["classes"], "channels": g.meta["channels"],
                             "macs": cost["macs"], "params": cost["params"], "arena_bytes": row["arena_bytes"],
                             "float_acc": val_float, "int8_acc": val_int8, "model": model_nw,
                             "refs": refs})
    # the whole training config travels too, so the blob's own data can be found again for a
    # user's config outside the package (slimhar blob check-engine, bench engine)
    meta = {"config": cfg["name"], "train_config": ck["config"], "dataset": ck["dataset"], "arch": spec["arch"],
            "ranges": ranges,
            "qat_epochs": qat_epochs,
            "table_split": "val", "widths": ws, "resolutions": rs}     # the report's split is not the blob's business
    blob = pack_blob({k: p.q for k, p in pool.items()}, blob_subnets, for_checkpoint(ck), meta,
                     spec["window"], spec["axes"], spec["classes"], spec["arch"])
    (out / "model.blob").write_bytes(blob)
    # the blob must give back exactly the standalone subnets
    b = Blob(blob, str(out / "model.blob"))
    for s in b.subnets:
        if b.unpack(s) != (out / "subnets" / f"{s.name}.tflite").read_bytes():
            raise AssertionError(f"{s.name}: unpacked blob subnet differs from the standalone .tflite")
    # what each subnet adds to the blob (Blob.private_bytes): quantization parameters = its
    # biases and multiplier table, stored plan = the engine's plan (quantize/plan.py),
    # structure = the rest of its flatbuffer-region bytes, its weight references and table entry
    for row, p in zip(rows, b.private_bytes()):
        row["private_bytes"] = p["total"]
        row["quant_param_bytes"] = p["biases"] + p["multipliers"]
        row["plan_bytes"] = p["plan"]
        row["structure_bytes"] = p["total"] - row["quant_param_bytes"] - row["plan_bytes"]
    seconds = time.perf_counter() - t_start
    report = make_report(rows, blob, pool, spec, ck, split, len(yev), seconds)
    report["qat_epochs"] = qat_epochs
    report["ranges"] = ranges
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(report_markdown(report))
    from slimhar.extras import available
    if available("matplotlib"):                 # the [plots] extra; the report says the same in numbers
        plot_accuracy(rows, out / "int8_vs_float.png", f"{cfg['name']}: float vs shared int8 ({split})")
    return report


def make_report(rows, blob: bytes, pool, spec, ck, split, n, seconds) -> dict:
    pool_bytes = sum(p.q.nbytes for p in pool.values())
    full_w = max(r["width"] for r in rows)
    full = [r for r in rows if r["width"] == full_w]
    loss = [100 * (r["float_acc"] - r["int8_acc"]) for r in rows]
    tfl_sum = sum(r["tflite_bytes"] for r in rows)
    base = {}
    if "baseline_acc" in rows[0]:
        bl = [100 * (r["float_acc"] - r["baseline_acc"]) for r in rows]
        sh = [100 * (r["baseline_acc"] - r["int8_acc"]) for r in rows]
        bsum = sum(r["baseline_bytes"] for r in rows)
        base = {"baseline": {"loss_pp": {"max": max(bl), "mean": float(np.mean(bl))},
                             "sharing_cost_pp": {"max": max(sh), "mean": float(np.mean(sh))},
                             "sum_tflite_bytes": bsum, "blob_vs_sum": bsum / len(blob),
                             "seconds": sum(r["baseline_seconds"] for r in rows)}}
    return {**base,
        "checkpoint": ck["path"], "config": ck["config"]["name"], "split": split, "windows": n,
        "subnets": len(rows), "seconds": seconds,
        "int8_loss_pp": {"max": max(loss), "mean": float(np.mean(loss)), "min": min(loss)},
        "bytes": {"blob": len(blob), "pool": pool_bytes, "sum_standalone_tflite": tfl_sum,
                  "blob_vs_sum": tfl_sum / len(blob),
                  "largest_tflite": max(r["tflite_bytes"] for r in full),
                  "private_total": sum(r["private_bytes"] for r in rows),
                  "private_quant_params": sum(r["quant_param_bytes"] for r in rows),
                  "private_structure": sum(r["structure_bytes"] for r in rows),
                  "private_plans": sum(r["plan_bytes"] for r in rows),
                  "pool_vs_full_width_int8": pool_bytes / sum(np.prod(p.q.shape) for p in pool.values())},
        "parity": {"tflm_vs_litert_ref_mismatches": sum(r["tflm_vs_litert_ref_mismatches"] for r in rows),
                   "tflm_vs_litert_ref_max_lsb": max(r["tflm_vs_litert_ref_max_lsb"] for r in rows),
                   "tflm_vs_batch_max_lsb": max(r["tflm_vs_batch_max_lsb"] for r in rows),
                   "windows_per_subnet": rows[0]["parity_windows"]},
        "rows": rows,
    }


def report_markdown(rep: dict) -> str:
    b, L = rep["bytes"], rep["int8_loss_pp"]
    lines = [f"# int8 report: {rep['config']}", "",
             f"{rep['subnets']} subnets, accuracy on {rep['split']} ({rep['windows']} windows); "
             f"{rep['seconds']:.1f} s.", "",
             f"- shared int8 vs float: max loss {L['max']:.2f} pp, mean {L['mean']:.2f} pp",
             f"- blob {b['blob']:,} bytes (pool {b['pool']:,}) vs {b['sum_standalone_tflite']:,} bytes of standalone "
             f".tflite files: {b['blob_vs_sum']:.1f}x smaller",
             f"- private bytes of all subnets: {b['private_total']:,} = {b['private_quant_params']:,} quantization "
             f"parameters (biases, multiplier tables) + {b['private_structure']:,} structure (flatbuffer region, "
             f"weight references, table entries) + {b.get('private_plans', 0):,} stored plans",
             f"- TFLM vs LiteRT reference kernels: {rep['parity']['tflm_vs_litert_ref_mismatches']} mismatching "
             f"int8 outputs (max {rep['parity']['tflm_vs_litert_ref_max_lsb']} LSB) over "
             f"{rep['parity']['windows_per_subnet']} windows per subnet (LiteRT's reference FULLY_CONNECTED "
             f"rounds up to 1 LSB apart from TFLM; every other tensor is bit-identical)", ""]
    if "baseline" in rep:
        bb = rep["baseline"]
        lines[-1:-1] = [
            f"- independent TF-converter int8 (baseline) vs float: max loss {bb['loss_pp']['max']:.2f} pp, "
            f"mean {bb['loss_pp']['mean']:.2f} pp; shared vs independent: max {bb['sharing_cost_pp']['max']:.2f} pp, "
            f"mean {bb['sharing_cost_pp']['mean']:.2f} pp",
            f"- blob vs the sum of the {rep['subnets']} independent converter .tflite files "
            f"({bb['sum_tflite_bytes']:,} bytes): {bb['blob_vs_sum']:.1f}x smaller"]
    has_b = "baseline" in rep
    lines += ["| subnet | width | T' | MACs | params | float % | int8 % | " + ("baseline % | " if has_b else "")
              + ".tflite bytes | private bytes (quant + structure) | arena bytes |",
              "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if has_b else "")]
    for r in rep["rows"]:
        lines.append(f"| {r['name']} | {r['width']:.2f} | {r['resolution']} | {r['macs']:,} | {r['params']:,} | "
                     f"{100 * r['float_acc']:.2f} | {100 * r['int8_acc']:.2f} | "
                     + (f"{100 * r['baseline_acc']:.2f} | " if has_b else "") + f"{r['tflite_bytes']:,} | "
                     f"{r['private_bytes']:,} ({r['quant_param_bytes']:,} + {r['structure_bytes']:,}) | {r['arena_bytes']:,} |")
    return "\n".join(lines) + "\n"


def plot_accuracy(rows, path, title):
    from slimhar.extras import pyplot
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    m = [r["macs"] / 1e6 for r in rows]
    ax.scatter(m, [100 * r["float_acc"] for r in rows], s=14, label="float", marker="o")
    ax.scatter(m, [100 * r["int8_acc"] for r in rows], s=14, label="shared int8", marker="x")
    if "baseline_acc" in rows[0]:
        ax.scatter(m, [100 * r["baseline_acc"] for r in rows], s=10, label="independent int8 (TF converter)", marker="+")
    ax.set_xscale("log")
    ax.set_xlabel("MACs per window (millions, log)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
