"""One collaborative-learning step (DESIGN §1; the paper's code does the same 9 passes).

1. the widest net at full resolution learns from the labels (cross-entropy);
2. the widest AGAIN, the narrowest, and ``random_widths`` widths drawn uniformly from
   ``width_range`` -- each on a randomly drawn grid resolution -- learn from
   ``(1 - kd) * CE(labels) + kd * KL(softmax(widest, full res, detached) || student)``;
3. gradients accumulate over all passes; one optimizer step.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .models import HarNet, resize


def draw_subnets(gen: torch.Generator, width_range, resolutions, random_widths: int) -> list[tuple[float, int]]:
    """The (width, resolution) of passes 2..n of a step, from a seeded generator so every
    process (and a resumed run) draws the same ones."""
    lo, hi = width_range
    ws = [hi, lo] + (lo + (hi - lo) * torch.rand(random_widths, generator=gen, dtype=torch.float64)).tolist()
    ri = torch.randint(len(resolutions), (len(ws),), generator=gen).tolist()
    return [(float(w), int(resolutions[i])) for w, i in zip(ws, ri)]


def collab_step(model: HarNet, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, widest: float,
                draws: list[tuple[float, int]], kd_weight: float = 0.5, temperature: float = 1.0,
                ddp=None, loss_scale: float = 1.0) -> dict:
    """One step. With ``ddp`` (a DistributedDataParallel around `model`) gradients are
    accumulated locally for the first passes and all-reduced once, on the last backward;
    ``loss_scale`` = local share of the global batch x world size keeps the average exact."""
    model.train()
    net = model if ddp is None else ddp
    opt.zero_grad(set_to_none=True)
    passes = [(widest, None)] + list(draws)
    soft, loss0, correct = None, 0.0, 0
    for k, (w, r) in enumerate(passes):
        sync = ddp is None or k == len(passes) - 1
        with contextlib.nullcontext() if sync else ddp.no_sync():
            model.set_width(w)
            if r is None:      # the widest at full resolution, on the labels
                out = net(x)
                loss = F.cross_entropy(out, y)
                with torch.no_grad():
                    soft = F.softmax(out / temperature, dim=1)
                    correct = int((out.argmax(1) == y).sum())
                loss0 = float(loss.detach())
            else:
                o = net(resize(x, r))
                kl = F.kl_div(F.log_softmax(o / temperature, dim=1), soft, reduction="batchmean") * temperature ** 2
                loss = (1 - kd_weight) * F.cross_entropy(o, y) + kd_weight * kl
            (loss * loss_scale if loss_scale != 1.0 else loss).backward()
    opt.step()
    return {"loss": loss0, "correct": correct, "n": int(y.shape[0])}
