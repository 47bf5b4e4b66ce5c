"""The training loop: data in, a checkpoint out (every epoch, atomically), resumable.

Determinism: the model is initialised from the seed; every epoch's shuffle and every step's
subnet draws come from generators seeded by (seed, epoch), so a run resumed at an epoch
boundary continues exactly as an uninterrupted one. Wall-clock timings go to
``train_log.jsonl`` beside the checkpoint, never into it, so checkpoint bytes are reproducible.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .config import ConfigError
from .bn_calib import calibrate
from .collab import collab_step, draw_subnets
from .data import HarData
from .evaluate import accuracy
from . import speed
from .inputs import calib_set, dataset_facts, derive_seed, load_data, normalization, to_input  # noqa: F401
from .models import HarNet, build_model

SUMMARY_WIDTHS = (1.0, 0.75, 0.5, 0.25)


def new_model(cfg: dict, data: HarData) -> HarNet:
    torch.manual_seed(cfg["seed"])
    try:
        return build_model(cfg["model"], data.window, data.channels, data.classes, cfg["widths"], cfg["resolutions"])
    except ValueError as e:         # the grid does not fit the model or the data's windows
        raise ConfigError(f"config {cfg['name']!r} does not fit {data.name}'s {data.window}-sample windows "
                          f"x {data.channels} channels: {e}") from None


def make_optim(cfg: dict, model: HarNet):
    o = cfg["optimizer"]
    opt = torch.optim.Adam(model.parameters(), lr=float(o["lr"]), weight_decay=float(o.get("weight_decay", 0)))
    s = cfg["lr_schedule"]
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=int(s["step_epochs"]), gamma=float(s["gamma"]))
    return opt, sched


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ckpt.CheckpointError("--device cuda: no CUDA device visible")
    return torch.device(name)


def setup_distributed(device: str) -> tuple[torch.device, int, int]:
    """(device, rank, world). Under torchrun (WORLD_SIZE > 1) joins the process group:
    gloo on CPU, NCCL on CUDA, one GPU per local rank."""
    import torch.distributed as dist
    dev = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return dev, 0, 1
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dev, dist.get_rank(), dist.get_world_size()


def teardown_distributed(world: int) -> None:
    """Leave the process group (when there is one) once every rank is done: a rank that
    destroys gloo's group while a peer is still working can abort the peer ("terminate called
    without an active exception")."""
    if world > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()


def train(cfg: dict, out_dir, resume: bool = False, data_dir=None, progress: bool = True,
          log=print, device: str = "cpu", log_test: bool = False) -> dict:
    """Single process, or one rank of a torchrun job (DistributedDataParallel; every rank
    draws the same subnets, the global batch is the config's, only rank 0 writes).

    log_test: at every validation also record the same subnets' TEST accuracy in the log
    (``test_paper_protocol``): what the paper's code looks at to pick its best epoch. Reported
    beside our final-epoch figures, never used for any choice; training is identical with or
    without it (evaluation only, after the validation's own BN calibration)."""
    dev, rank, world = setup_distributed(device)
    if rank != 0:
        progress, log = False, (lambda *a, **k: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "checkpoint.pt"
    data = load_data(cfg, data_dir)
    start, history = 0, []
    if resume and path.is_file():
        ck = ckpt.load(path)
        prev = ck["config"]
        for k in ("dataset", "model", "widths", "resolutions", "seed", "batch_size", "optimizer", "collab"):
            if prev[k] != cfg[k]:
                raise ckpt.CheckpointError(f"{path}: --resume with a different {k!r} than the run being resumed")
        mean, std = np.asarray(ck["dataset"]["norm_mean"]), np.asarray(ck["dataset"]["norm_std"])
        model = ckpt.build_model(ck)
        opt, sched = make_optim(cfg, model)
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start, history = int(ck["epoch"]), list(ck["history"])
        log(f"resuming {path} after epoch {start} of {cfg['epochs']}")
    else:
        if path.is_file() and not resume:
            raise ckpt.CheckpointError(f"{path} exists: pass --resume to continue it, or choose another --out")
        mean, std = normalization(data)
        model = new_model(cfg, data)
        opt, sched = make_optim(cfg, model)
    layout = speed.configure(model, cfg["layout"], cfg["precision"], dev, world)
    log(f"training step: layout {layout}, precision {cfg['precision']}")
    model.to(dev)
    opt_state_to(opt, dev)
    ddp = None
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        # BN tables are buffers filled by calibration, not by training: nothing to broadcast
        ddp = DistributedDataParallel(model, broadcast_buffers=False,
                                      device_ids=[dev.index] if dev.type == "cuda" else None)
    Xtr, ytr = to_input(data.train.X, mean, std), torch.from_numpy(data.train.y)
    Xval, yval = to_input(data.val.X, mean, std).to(dev), torch.from_numpy(data.val.y).to(dev)
    if log_test:
        Xte, yte = to_input(data.test.X, mean, std).to(dev), torch.from_numpy(data.test.y).to(dev)
    Xcal = calib_set(cfg, Xtr).to(dev)
    facts = dataset_facts(data, mean, std)
    spec = model.spec
    bs = int(cfg["batch_size"])
    val_subnets = [(spec.widths[-1], spec.resolutions[0]), (spec.widths[0], spec.resolutions[-1])]

    def snapshot(epoch: int, calibrated: bool) -> dict:
        return {"format": ckpt.FORMAT, "version": ckpt.VERSION, "config": cfg, "spec": spec.to_dict(),
                "dataset": facts, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "epoch": epoch, "history": history,
                "bn_calibrated": calibrated}

    logf = open(out / "train_log.jsonl", "a") if rank == 0 else open(os.devnull, "w")
    t_run = time.perf_counter()
    for epoch in range(start, int(cfg["epochs"])):
        t0 = time.perf_counter()
        loss_sum, correct, seen = run_epoch(model, opt, Xtr, ytr, cfg, epoch, dev, ddp, rank, world,
                                           progress, f"epoch {epoch + 1}/{cfg['epochs']}")
        sched.step()
        if world > 1:
            import torch.distributed as dist
            tot = torch.tensor([loss_sum, correct, seen], dtype=torch.float64, device=dev)
            dist.all_reduce(tot)
            loss_sum, correct, seen = tot.tolist()
        train_s = time.perf_counter() - t0
        rec = {"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1)}
        every = int(cfg["validation"]["every"])
        if every > 0 and ((epoch + 1) % every == 0 or epoch + 1 == cfg["epochs"]):
            calibrate(model, Xcal, val_subnets, bs)
            rec["val"] = {f"{w:.2f}@{r}": accuracy(model, Xval, yval, w, r) for w, r in val_subnets}
            if log_test:
                rec["test_paper_protocol"] = {f"{w:.2f}@{r}": accuracy(model, Xte, yte, w, r) for w, r in val_subnets}
        history.append(rec)
        if rank == 0:
            ckpt.save_atomic(snapshot(epoch + 1, False), path)
        epoch_s = time.perf_counter() - t0
        logf.write(json.dumps({**rec, "train_seconds": train_s, "epoch_seconds": epoch_s}) + "\n")
        logf.flush()
        vals = " ".join(f"val[{k}]={v:.4f}" for k, v in rec.get("val", {}).items())
        log(f"epoch {epoch + 1}/{cfg['epochs']}: loss {rec['loss']:.4f} train_acc {rec['train_acc']:.4f} "
            f"{vals} ({train_s:.1f} s train, {epoch_s:.1f} s total)")
    t_cal = time.perf_counter()
    calibrate(model, Xcal, spec.subnets, bs, progress=progress)
    cal_s = time.perf_counter() - t_cal
    if rank == 0:
        ckpt.save_atomic(snapshot(int(cfg["epochs"]), True), path)
    logf.write(json.dumps({"bn_calibration_seconds": cal_s, "subnets": len(spec.subnets),
                           "run_seconds": time.perf_counter() - t_run}) + "\n")
    logf.close()
    summary = summarize(model, Xval, yval)
    teardown_distributed(world)
    return {"rank": rank, "world": world, "checkpoint": str(path), "epochs": int(cfg["epochs"]), "history": history,
            "bn_calibration_seconds": cal_s, "val_summary": summary}


def run_epoch(model: HarNet, opt, Xtr: torch.Tensor, ytr: torch.Tensor, cfg: dict, epoch: int,
              dev=torch.device("cpu"), ddp=None, rank: int = 0, world: int = 1, progress: bool = False,
              desc: str = "epoch") -> tuple[float, int, int]:
    """One pass over the training windows with the collaborative step; the shuffle and the
    subnet draws are seeded by (seed, epoch). Returns (loss sum, correct, seen) of this rank."""
    n, bs = len(Xtr), int(cfg["batch_size"])
    wlo, whi = cfg["width_range"]
    g_perm = torch.Generator().manual_seed(derive_seed(cfg["seed"], epoch, 1))
    g_draw = torch.Generator().manual_seed(derive_seed(cfg["seed"], epoch, 2))
    perm = torch.randperm(n, generator=g_perm)
    # a last batch of one window cannot give BN batch statistics: drop it
    starts = [s for s in range(0, n, bs) if n - s >= max(2, world)]
    loss_sum = correct = seen = 0
    bar = tqdm(starts, desc=desc, unit="step", disable=not progress, leave=False)
    for s in bar:
        idx = perm[s:s + bs]
        draws = draw_subnets(g_draw, (wlo, whi), model.spec.resolutions, int(cfg["collab"]["random_widths"]))
        local = torch.tensor_split(idx, world)[rank] if world > 1 else idx
        r = collab_step(model, opt, Xtr[local].to(dev), ytr[local].to(dev), whi, draws,
                        float(cfg["collab"]["kd_weight"]), float(cfg["collab"]["temperature"]),
                        ddp=ddp, loss_scale=len(local) * world / len(idx))
        loss_sum += r["loss"] * r["n"]
        correct += r["correct"]
        seen += r["n"]
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}")
    return loss_sum, correct, seen


def opt_state_to(opt, dev: torch.device) -> None:
    for st in opt.state.values():
        for k, v in st.items():
            if isinstance(v, torch.Tensor) and k != "step":
                st[k] = v.to(dev)


def summarize(model: HarNet, X, y) -> list[dict]:
    """Validation accuracy of a few widths at the largest and smallest resolution."""
    spec = model.spec
    ws = [w for w in spec.widths if any(abs(w - s) < 1e-6 for s in SUMMARY_WIDTHS)] + [spec.widths[0]]
    rows = []
    for w in sorted(set(ws), reverse=True):
        for r in (spec.resolutions[0], spec.resolutions[-1]):
            rows.append({"width": w, "resolution": r, "accuracy": accuracy(model, X, y, w, r), **model.cost(w, r)})
    return rows
