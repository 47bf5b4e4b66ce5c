"""The ``fused`` training layout: a CNN block (conv, BatchNorm with batch statistics, ReLU) as
ONE autograd node over channels-last chunk buffers, with the element-wise work in a small C++
extension (train/csrc/fused_block.cpp, compiled on first use by torch's cpp_extension).

Why: in the ``cl`` layout a step's matrix products are only ~40 % of its time; the rest is
BatchNorm / ReLU forward and backward, padding copies, zero fills and shifted adds, each a full
pass over the activations. Here a block does its GEMM and then two passes forward (shifted sum
+ statistics; normalize + ReLU written straight into the NEXT conv's padded chunk buffer) and
two passes backward (statistics of the gradient; the gradient written straight into the
chunk-product layout the two backward GEMMs read). Nothing is padded, filled or copied again.

``gemm_dtype``: float32 (the default; the same maths as the plain modules to float rounding,
tests/test_fused.py) or bfloat16 -- the GEMM operands (activations, weights, gradients) and the
stored conv outputs in bfloat16, accumulation and everything else (BatchNorm statistics and
normalization, master weights, the optimizer, the loss) in float32. That is mixed precision
(as torch's autocast: tested to be as close to float32 as autocast is), not the same rounding;
docs/results.md reports its speed and the accuracy of the full schedule trained with it.

Only training-mode passes of the CNN use this path; evaluation, BN calibration, QAT and
multi-process training (global-batch BatchNorm) run the ``cl`` modules.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

_SRC = Path(__file__).resolve().parent.parent / "csrc" / "fused_block.cpp"


@functools.lru_cache(maxsize=1)
def extension():
    """Build (once per source version; cached by torch under TORCH_EXTENSIONS_DIR, default
    ~/.cache/torch_extensions) and load the C++ kernels. Needs g++ and ninja; raises a clear
    error without them. SLIMHAR_NATIVE=0 builds without -march=native (a cache shared by
    machines with different CPUs)."""
    from torch.utils import cpp_extension
    flags = ["-O3", "-fopenmp"]     # at::parallel_for is header code: serial without -fopenmp
    if os.environ.get("SLIMHAR_NATIVE", "1") == "1":
        flags.append("-march=native")
    try:
        return cpp_extension.load(name="slimhar_fused_block", sources=[str(_SRC)], extra_cflags=flags,
                                  extra_ldflags=["-fopenmp"], verbose=False)
    except Exception as e:       # noqa: BLE001 - re-raised with what to do
        raise RuntimeError(f"cannot build the fused training kernels ({_SRC.name}): {e}. "
                           "Install a C++ compiler and ninja, or train with layout 'cl'.") from e


def chunk_geometry(T: int, k: int, s: int, p: int) -> tuple[int, int, int]:
    """(L, m, n) of a kernel-k, stride-s, pad-p conv over T samples in chunk form: L outputs,
    m = k / s kernel pieces, n = L + m - 1 chunks of s samples read."""
    if k % s:
        raise ValueError(f"chunk form needs kernel {k} to be a multiple of stride {s}")
    m = k // s
    L = (T + 2 * p - k) // s + 1
    return L, m, L + m - 1


def chunk_weight(w: torch.Tensor, s: int, dtype: torch.dtype) -> torch.Tensor:
    """[o, ci, k] (a slice of the full weight) -> [s*ci, m*o]: rows (sample in chunk,
    in-channel), columns (piece, out-channel). One strided copy (with the cast)."""
    o, ci, k = w.shape
    m = k // s
    wc = torch.empty(s, ci, m, o, dtype=dtype)
    wc.copy_(w.detach().view(o, ci, m, s).permute(3, 1, 2, 0))
    return wc.view(s * ci, m * o)


def unchunk_grad(gwc: torch.Tensor, shape, s: int) -> torch.Tensor:
    """Inverse of chunk_weight for the weight gradient: [s*ci, m*o] -> float32 [o, ci, k]."""
    o, ci, k = shape
    m = k // s
    gw = torch.empty(o, ci, k)
    gw.view(o, ci, m, s).permute(3, 1, 2, 0).copy_(gwc.view(s, ci, m, o))
    return gw


def _accumulate(param: torch.Tensor, index, grad: torch.Tensor) -> None:
    """param.grad[index] += grad, in place. The fused Functions take the FULL parameters and
    return no gradient for them: a slimmed pass touches only the slice it used, where autograd
    would allocate, zero and add a full-size gradient per parameter per pass (9 passes a
    step). So this path supports ``loss.backward()`` (what training calls), not
    ``torch.autograd.grad`` or DDP's gradient hooks -- those run the ``cl`` layout."""
    if param.grad is None:
        param.grad = torch.zeros_like(param)
    param.grad[index] += grad


def _accumulate_bn(gamma: torch.Tensor, beta: torch.Tensor, o: int, dgamma: torch.Tensor, dbeta: torch.Tensor) -> None:
    _accumulate(gamma, slice(0, o), dgamma)
    _accumulate(beta, slice(0, o), dbeta)


class _FusedBlock(torch.autograd.Function):
    """xbuf [B, n*s, ci] (this conv's zero-padded input, rows beyond the data zero or cropped)
    -> out [B, R, o]: relu(bn(conv(x))) at rows [row0, row0 + L) of the next conv's buffer.
    weight / gamma / beta are the full parameters; the first o (out) and ci (in) are used."""

    @staticmethod
    def forward(ctx, xbuf, weight, gamma, beta, o, s, L, m, R, row0, eps, out_dtype):
        B, rows, ci = xbuf.shape
        n = rows // s
        g, b = gamma.detach()[:o], beta.detach()[:o]
        wc = chunk_weight(weight[:o, :ci], s, xbuf.dtype)
        z = (xbuf.reshape(B * n, s * ci) @ wc).reshape(B, n, m * o)
        out = torch.empty(B, R, o, dtype=out_dtype)
        y, mean, rstd = extension().forward(z, L, m, g, b, eps, out, row0)
        ctx.save_for_backward(xbuf, wc, y, mean, rstd)
        ctx.params = (weight, gamma, beta)
        ctx.geom = (s, m, row0, (o, ci, weight.shape[2]))
        return out

    @staticmethod
    def backward(ctx, gout):
        xbuf, wc, y, mean, rstd = ctx.saved_tensors
        weight, gamma, beta = ctx.params
        s, m, row0, wshape = ctx.geom
        B, rows, ci = xbuf.shape
        n = rows // s
        o = wshape[0]
        gz, dgamma, dbeta = extension().backward(y, mean, rstd, gamma.detach()[:o], beta.detach()[:o],
                                                 gout.contiguous(), row0, m, wc.dtype == torch.bfloat16)
        gz2 = gz.reshape(B * n, m * o)
        gx = (gz2 @ wc.t()).reshape(B, rows, ci) if ctx.needs_input_grad[0] else None
        _accumulate(weight, (slice(0, o), slice(0, ci)), unchunk_grad(xbuf.reshape(B * n, s * ci).t() @ gz2, wshape, s))
        _accumulate_bn(gamma, beta, o, dgamma, dbeta)
        return gx, None, None, None, None, None, None, None, None, None, None, None


class _FirstBlock(torch.autograd.Function):
    """The first block (one input channel): x [B, T] float32 -> out [B, R, o]. The conv is six
    multiply-adds per output, done inside the kernel rather than as a K=3 matrix product; its
    weight gradient is accumulated there too. Full parameters in, the first o used."""

    @staticmethod
    def forward(ctx, x, weight, gamma, beta, o, s, p, L, R, row0, eps, out_dtype):
        wt = weight.detach()[:o, 0].t().contiguous()      # [k, o]
        g, b = gamma.detach()[:o], beta.detach()[:o]
        out = torch.empty(x.shape[0], R, o, dtype=out_dtype)
        y, mean, rstd = extension().first_forward(x, wt, s, p, L, g, b, eps, out, row0)
        ctx.save_for_backward(x, wt, y, mean, rstd)
        ctx.params = (weight, gamma, beta)
        ctx.geom = (o, s, p, row0)
        return out

    @staticmethod
    def backward(ctx, gout):
        x, wt, y, mean, rstd = ctx.saved_tensors
        weight, gamma, beta = ctx.params
        o, s, p, row0 = ctx.geom
        gw, dgamma, dbeta = extension().first_backward(x, wt, s, p, y, mean, rstd, gamma.detach()[:o],
                                                       beta.detach()[:o], gout.contiguous(), row0)
        _accumulate(weight, (slice(0, o), 0), gw)
        _accumulate_bn(gamma, beta, o, dgamma, dbeta)
        return (None,) * 12


class _PoolRows(torch.autograd.Function):
    """h [B, L, ch] -> [B, rows, ch]: adaptive max pool over time (gradient to the arg-max)."""

    @staticmethod
    def forward(ctx, h, rows):
        ctx.save_for_backward(h)
        ctx.rows = rows
        return extension().pool_forward(h, rows)

    @staticmethod
    def backward(ctx, g):
        (h,) = ctx.saved_tensors
        return extension().pool_backward(g, h, ctx.rows), None


class _Head(torch.autograd.Function):
    """The linear head on pooled activations [N, C*rows*ch] in their natural (C, rows, ch)
    order: the full head weight's features are torch's channel-major (ch, rows, C), so its
    first ch channels are permuted to match (classes x features: tiny next to activations)."""

    @staticmethod
    def forward(ctx, feats, weight, bias, ch, rows, axes):
        k = weight.shape[0]
        w = weight.detach()[:, :ch * rows * axes].reshape(k, ch, rows, axes).permute(0, 3, 2, 1).reshape(k, -1)
        ctx.save_for_backward(feats, w)
        ctx.params = (weight, bias)
        ctx.dims = (ch, rows, axes)
        # W @ feats^T: MKL is ~3x faster this way round for a 6-column output
        return (w @ feats.t()).t() + bias.detach()

    @staticmethod
    def backward(ctx, g):
        feats, w = ctx.saved_tensors
        weight, bias = ctx.params
        ch, rows, axes = ctx.dims
        k = weight.shape[0]
        gw = (g.t() @ feats).view(k, axes, rows, ch).permute(0, 3, 2, 1)     # [k, ch, rows, C]
        if weight.grad is None:
            weight.grad = torch.zeros_like(weight)
        weight.grad[:, :ch * rows * axes].view(k, ch, rows, axes).add_(gw)
        _accumulate(bias, slice(None), g.sum(0))
        return g @ w, None, None, None, None, None


def head(h: torch.Tensor, axes: int, rows: int, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Adaptive max pool + the linear head: h [N*C, L, ch] -> logits [N, classes]."""
    B, L, ch = h.shape
    pooled = _PoolRows.apply(h, rows).reshape(B // axes, axes * rows * ch)
    return _Head.apply(pooled, weight, bias, ch, rows, axes)


def forward_blocks(blocks, x: torch.Tensor, channels, gemm_dtype: torch.dtype) -> torch.Tensor:
    """Run CNN blocks (training mode) on channels-last sequences x [B, T, 1]; returns the last
    block's activations [B, L, ch] in float32."""
    B, T, _ = x.shape
    h, L = x.reshape(B, T).float().contiguous(), T
    for i, (blk, ch) in enumerate(zip(blocks, channels)):
        conv, bn = blk.conv1, blk.bn1
        L, m, _ = chunk_geometry(L, conv.k, conv.stride, conv.pad)
        if i == len(blocks) - 1:
            R, row0, out_dtype = L, 0, torch.float32
        else:
            nxt = blocks[i + 1].conv1
            _, _, n2 = chunk_geometry(L, nxt.k, nxt.stride, nxt.pad)
            R, row0, out_dtype = n2 * nxt.stride, nxt.pad, gemm_dtype
        if i == 0:
            h = _FirstBlock.apply(h, conv.weight, bn.weight, bn.bias, ch, conv.stride, conv.pad, L, R, row0, bn.eps,
                                  out_dtype)
        else:
            h = _FusedBlock.apply(h, conv.weight, bn.weight, bn.bias, ch, conv.stride, L, m, R, row0, bn.eps,
                                  out_dtype)
    return h
