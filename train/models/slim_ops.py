"""Slimmable building blocks.

Two equivalent layouts are supported: ``[N, ch, T, C]`` (torch's NCHW, a kernel-(k,1) 2-D
conv) and ``[N*C, ch, T]`` (each sensor axis an independent sequence, a 1-D conv; BatchNorm
over (N, T, C) is BatchNorm over (N*C, T)). The blocks work on either; the network picks one
(``HarNet.layout``). Measured on this 2-core CPU the contiguous NCHW 2-D conv is ~1.4x faster
than the 1-D form (docs/results.md), so it is the default; tests/test_models.py proves both
give the same outputs and gradients as the plain 2-D torch modules.

Slimming (DESIGN §1): at width w a layer uses the first out-channels and first in-channels of
its full weight, ``W[:o_w, :i_w]``. BatchNorm's affine (gamma, beta) is shared and sliced; its
running statistics are private to every (width, resolution) subnet of the grid and are filled
by post-training calibration (``train/bn_calib.py``).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_divisible(v: float, divisor: int = 4, min_value: int = 1) -> int:
    """The paper's channel rounding: nearest multiple of `divisor`, never more than 10 % down."""
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


def channels_at(full: int, width: float) -> int:
    return make_divisible(full * width)


def conv_out_len(length: int, k: int, stride: int, pad: int) -> int:
    return (length + 2 * pad - k) // stride + 1


class SlimConv(nn.Module):
    """Conv with kernel (k,1), no bias. Weight stored [O, I, k] (the 2-D kernel is [O, I, k, 1])."""

    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int, pad: int):
        super().__init__()
        self.in_ch, self.out_ch, self.k, self.stride, self.pad = in_ch, out_ch, k, stride, pad
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, k))
        # torch's Conv2d default initialisation (fan_in = I*k*1)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: torch.Tensor, out_ch: int) -> torch.Tensor:
        w = self.weight[:out_ch, :x.shape[1]]
        if x.dim() == 4:
            return F.conv2d(x, w.unsqueeze(-1), None, (self.stride, 1), (self.pad, 0))
        return F.conv1d(x, w, None, self.stride, self.pad)

    def macs(self, in_ch: int, out_ch: int, out_len: int, axes: int) -> int:
        return out_len * axes * out_ch * in_ch * self.k

    def out_len(self, length: int) -> int:
        return conv_out_len(length, self.k, self.stride, self.pad)


class SlimBN(nn.Module):
    """BatchNorm with a shared affine and one set of running statistics per grid subnet.

    In training mode it normalizes with batch statistics (every width, every resolution, as the
    paper). In eval mode it uses the statistics of the subnet selected by ``subnet_index`` (set
    by the model), which must have been calibrated. While ``collect`` is set it normalizes with
    batch statistics and accumulates exact sums for calibration.
    """

    def __init__(self, ch: int, n_subnets: int, eps: float = 1e-5):
        super().__init__()
        self.ch, self.eps = ch, eps
        self.weight = nn.Parameter(torch.ones(ch))
        self.bias = nn.Parameter(torch.zeros(ch))
        self.register_buffer("stat_mean", torch.zeros(n_subnets, ch))
        self.register_buffer("stat_var", torch.ones(n_subnets, ch))
        self.subnet_index: int | None = None
        self.collect: dict | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        w, b = self.weight[:c], self.bias[:c]
        if self.collect is not None:
            xd = x.detach().double()
            dims = (0,) + tuple(range(2, xd.dim()))
            s = self.collect
            s["n"] = s.get("n", 0) + xd.numel() // c
            s["sum"] = s.get("sum", 0) + xd.sum(dim=dims)
            s["sq"] = s.get("sq", 0) + (xd * xd).sum(dim=dims)
        if self.collect is None and self.training and _distributed():
            return _sync_batch_norm(x, w, b, self.eps)
        if self.training or self.collect is not None:
            return F.batch_norm(x, None, None, w, b, True, 0.0, self.eps)
        if self.subnet_index is None:
            raise RuntimeError("SlimBN in eval mode needs a calibrated grid subnet (model.set_subnet)")
        i = self.subnet_index
        return F.batch_norm(x, self.stat_mean[i, :c], self.stat_var[i, :c], w, b, False, 0.0, self.eps)


def _distributed() -> bool:
    import torch.distributed as dist
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _sync_batch_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    """Training-mode BatchNorm with statistics over the GLOBAL batch of all processes, so a
    multi-process step computes what one process does on the whole batch. The all-reduce is
    differentiable, so gradients flow through the shared statistics as well."""
    from torch.distributed.nn.functional import all_reduce
    c = x.shape[1]
    dims = (0,) + tuple(range(2, x.dim()))
    count = torch.full((1,), float(x.numel() // c), dtype=x.dtype, device=x.device)
    tot = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
    n = tot[-1]
    mean = tot[:c] / n
    var = (tot[c:2 * c] / n - mean * mean).clamp_min(0)
    shape = (1, c) + (1,) * (x.dim() - 2)
    return (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + eps) * w.view(shape) + b.view(shape)


class SlimLinear(nn.Module):
    """The head: input features are channel-major (ch, 6, C); slimming keeps the first
    ``ch_w * 6 * C`` features. Output (classes) is never slimmed."""

    def __init__(self, in_ch: int, per_ch: int, classes: int):
        super().__init__()
        self.per_ch = per_ch
        fan_in = in_ch * per_ch
        self.weight = nn.Parameter(torch.empty(classes, fan_in))
        self.bias = nn.Parameter(torch.empty(classes))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[:, :x.shape[1]], self.bias)
