"""Slimmable building blocks.

Three equivalent layouts (``HarNet.layout``; the maths is the same, the speed is not):

* ``cl`` (default): channels-last sequences ``[N*C, T, ch]`` -- each sensor axis an
  independent sequence -- where the stride-3, kernel-6 conv is ONE matrix product over
  3-sample chunks plus a shifted add (``SlimConv.forward_cl``), and BatchNorm runs over the rows
  of a ``[N*C*T, ch]`` view;
* ``nchw``: torch's ``Conv2d`` with a (k,1) kernel over ``[N, ch, T, C]``;
* ``seq``: ``Conv1d`` over ``[N*C, ch, T]``.

Measured speeds are in docs/results.md; tests/test_models.py proves all three give the same
outputs and gradients as the plain 2-D torch modules.

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


def fake_quant_shared(w: torch.Tensor, sign: torch.Tensor | None = None) -> torch.Tensor:
    """The shared int8 weight quantizer in the loop (quantization-aware training): per output
    channel of the FULL tensor, sign(gamma) folded in, Delta = max|W[o]| / 127, round, clamp to
    +-127 -- exactly what quantize/shared.py stores -- with a straight-through gradient."""
    # in float64, as quantize/shared.py builds the pool: a value on a rounding tie in float32
    # can land on the other side in float64, and QAT must train with the exported int8 values
    view = (-1,) + (1,) * (w.dim() - 1)
    sg = None if sign is None else sign.double().view(view)
    ws = w.detach().double() if sg is None else w.detach().double() * sg
    delta = (ws.abs().flatten(1).amax(1).clamp_min(1e-12) / 127.0).view(view)
    wq = torch.clamp(torch.round(ws / delta), -127, 127) * delta
    if sg is not None:
        wq = wq * sg
    return w + (wq.to(w.dtype) - w).detach()


def fake_quant_act(x: torch.Tensor) -> torch.Tensor:
    """Asymmetric per-tensor int8 fake quantization with the batch's own range (widened to
    contain 0), straight-through gradient: the int8 activation grid in the training loop."""
    xd = x.detach()
    lo, hi = xd.min().clamp(max=0), xd.max().clamp(min=0)
    scale = ((hi - lo) / 255).clamp_min(1e-8)
    zp = torch.round(-128 - lo / scale)
    xq = (torch.clamp(torch.round(xd / scale) + zp, -128, 127) - zp) * scale
    return x + (xq - x).detach()


class SlimConv(nn.Module):
    """Conv with kernel (k,1), no bias. Weight stored [O, I, k] (the 2-D kernel is [O, I, k, 1])."""

    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int, pad: int):
        super().__init__()
        self.in_ch, self.out_ch, self.k, self.stride, self.pad = in_ch, out_ch, k, stride, pad
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, k))
        # torch's Conv2d default initialisation (fan_in = I*k*1)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.qat_bn: "SlimBN | None" = None     # set by HarNet.set_qat: weights fake-quantized

    def full_weight(self) -> torch.Tensor:
        if self.qat_bn is None:
            return self.weight
        g = self.qat_bn.weight.detach()
        return fake_quant_shared(self.weight, torch.where(g < 0, -1.0, 1.0))

    def forward(self, x: torch.Tensor, out_ch: int, channels_last: bool = False) -> torch.Tensor:
        if channels_last:
            return self.forward_cl(x, out_ch)
        w = self.full_weight()[:out_ch, :x.shape[1]]
        if x.dim() == 4:
            return F.conv2d(x, w.unsqueeze(-1), None, (self.stride, 1), (self.pad, 0))
        return F.conv1d(x, w, None, self.stride, self.pad)

    def forward_cl(self, x: torch.Tensor, out_ch: int) -> torch.Tensor:
        """Channels-last sequences [B, T, ci] -> [B, L, o] as ONE matrix product.

        With k = m * stride, output l reads input chunks l .. l+m-1 of `stride` samples each.
        So cut the padded sequence into chunks ([B, n, stride*ci], a free view), multiply once
        by the m kernel pieces side by side ([stride*ci, m*o]), and add the m products shifted
        by one chunk each. Same maths as the convolution; plain GEMMs forward and backward."""
        B, T, ci = x.shape
        k, s, p = self.k, self.stride, self.pad
        if k % s:
            raise ValueError(f"channels-last conv needs kernel {k} to be a multiple of stride {s}")
        m = k // s
        L = (T + 2 * p - k) // s + 1
        n = L + m - 1                                   # chunks that outputs read
        xp = F.pad(x, (0, 0, p, n * s - T - p))         # negative right padding crops the unread tail
        xc = xp.reshape(B, n, s * ci)
        w = self.full_weight()[:out_ch, :ci]            # [o, ci, k]
        o = w.shape[0]
        wc = w.reshape(o, ci, m, s).permute(3, 1, 2, 0).reshape(s * ci, m * o)   # rows (sample, ci), cols (piece, o)
        return _ChunkConv.apply(xc, wc, L, m, o)

    def macs(self, in_ch: int, out_ch: int, out_len: int, axes: int) -> int:
        return out_len * axes * out_ch * in_ch * self.k

    def out_len(self, length: int) -> int:
        return conv_out_len(length, self.k, self.stride, self.pad)


class _ChunkConv(torch.autograd.Function):
    """y[:, l] = sum_q (xc @ wc)[:, l + q, q*o:(q+1)*o]. A hand-written backward builds the
    gradient of the product in ONE zero-initialised buffer (autograd would allocate and fill
    one per shifted slice), then two GEMMs."""

    @staticmethod
    def forward(ctx, xc, wc, L, m, o):
        z = xc @ wc                                      # [B, n, m*o]
        y = z[:, 0:L, 0:o].clone()
        for q in range(1, m):
            y += z[:, q:q + L, q * o:(q + 1) * o]
        ctx.save_for_backward(xc, wc)
        ctx.dims = (L, m, o)
        return y

    @staticmethod
    def backward(ctx, gy):
        xc, wc = ctx.saved_tensors
        L, m, o = ctx.dims
        B, n, K = xc.shape
        gz = gy.new_zeros(B, n, m * o)
        for q in range(m):
            gz[:, q:q + L, q * o:(q + 1) * o] = gy      # column blocks are disjoint
        gx = gz @ wc.t() if ctx.needs_input_grad[0] else None
        gw = xc.reshape(-1, K).t() @ gz.reshape(-1, m * o) if ctx.needs_input_grad[1] else None
        return gx, gw, None, None, None


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
            dims = (0,) + tuple(range(2, x.dim()))
            var_b, mean_b = torch.var_mean(x.detach(), dim=dims, correction=0)
            self.merge_batch_stats(mean_b, var_b, x.numel() // c)
        if self.collect is None and self.training and _distributed():
            return _sync_batch_norm(x, w, b, self.eps)
        if self.training or self.collect is not None:
            return F.batch_norm(x, None, None, w, b, True, 0.0, self.eps)
        if self.subnet_index is None:
            raise RuntimeError("SlimBN in eval mode needs a calibrated grid subnet (model.set_subnet)")
        i = self.subnet_index
        return F.batch_norm(x, self.stat_mean[i, :c], self.stat_var[i, :c], w, b, False, 0.0, self.eps)

    def merge_batch_stats(self, mean_b: torch.Tensor, var_b: torch.Tensor, n_b: int) -> None:
        """Calibration: merge one batch's per-channel mean and biased variance (n_b values per
        channel) into ``collect`` -- exact statistics over all calibration batches, merged in
        float64 (Chan et al.'s parallel update) without a float64 copy of the activations.
        Called by forward (cl layouts) or by the fused kernels, which compute the same two
        statistics anyway."""
        s = self.collect
        if not s:
            s.update(n=n_b, mean=mean_b.double(), m2=var_b.double() * n_b)
        else:
            n = s["n"] + n_b
            delta = mean_b.double() - s["mean"]
            s["mean"] = s["mean"] + delta * (n_b / n)
            s["m2"] = s["m2"] + var_b.double() * n_b + delta * delta * (s["n"] * n_b / n)
            s["n"] = n


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
        self.qat = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = fake_quant_shared(self.weight) if self.qat else self.weight
        return F.linear(x, w[:, :x.shape[1]], self.bias)
