"""The ``fused`` training layout: a conv block (CNN: conv, BatchNorm with batch statistics,
ReLU; ResNet: the same plus conv2, the shortcut and the sum, see _ResBlock) as ONE autograd
node over channels-last chunk buffers, with the element-wise work in a small C++
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

Training-mode passes and BN calibration (the kernels' batch mean and variance merged per
batch, float32 GEMMs) use this path; evaluation with calibrated statistics, QAT and
multi-process training (global-batch BatchNorm) run the ``cl`` modules.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

_CSRC = Path(__file__).resolve().parent.parent / "csrc"
_SRC = _CSRC / "fused_block.cpp"
_SOURCES = (_SRC, _CSRC / "cpu_cache.cpp")      # one extension: the kernels and the CPU cache
_NAME = "slimhar_fused_block"


def _build_root(cpp_extension) -> Path:
    try:                # where torch's cpp_extension builds (TORCH_EXTENSIONS_DIR or its default root)
        return Path(cpp_extension._get_build_directory(_NAME, False)).parent
    except Exception:   # noqa: BLE001 - a private helper; fall back to the documented variable / root
        return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root())


def build_dir() -> tuple[str, Path]:
    """(extension name, build folder) of the kernels for these sources, flags and torch install."""
    import hashlib
    from torch.utils import cpp_extension
    h = hashlib.sha256(repr((_flags(), torch.__version__, str(Path(torch.__file__).resolve().parent))).encode())
    for p in _SOURCES:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    name = f"{_NAME}_{h.hexdigest()[:12]}"
    return name, _build_root(cpp_extension) / name


def _flags() -> list[str]:
    flags = ["-O3", "-fopenmp"]     # at::parallel_for is header code: serial without -fopenmp
    if os.environ.get("SLIMHAR_NATIVE", "1") == "1":
        flags.append("-march=native")
    return flags


@functools.lru_cache(maxsize=1)
def extension():
    """Build once and load the C++ kernels. Needs g++ and ninja; raises a clear error without
    them. SLIMHAR_NATIVE=0 builds without -march=native (a cache shared by machines with
    different CPUs).

    The build folder is named for a hash of the sources, the flags and the torch installation
    (its headers are in the build's command lines), under torch's extensions root
    (TORCH_EXTENSIONS_DIR, default ~/.cache/torch_extensions/<python>_<accelerator>/), and the
    sources are copied into it: a checkout and an installed copy of the same code share one
    build, a changed source or another torch gets its own, and whether this call compiles
    (minutes: it is announced on stderr with where it goes, and timed) is known before it starts.

    Builds are serialized by an flock the OS releases when a process dies. torch's own lock
    file (`lock`, a plain file) outlives a build that was killed and would make every later
    run wait forever; holding the flock means no slimhar process is building there, so such a
    file is stale and is removed."""
    import fcntl
    import sys
    import time
    from torch.utils import cpp_extension
    name, where = build_dir()
    where.mkdir(parents=True, exist_ok=True)
    with open(where / ".slimhar-build.flock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        stale = where / "lock"
        if stale.exists():
            print(f"slimhar: removing {stale}, left by a kernel build that was stopped", file=sys.stderr, flush=True)
            stale.unlink()
        srcs = []
        for p in _SOURCES:
            t, q = p.read_bytes(), where / p.name
            if not q.is_file() or q.read_bytes() != t:      # unchanged copies keep their mtime: no rebuild
                q.write_bytes(t)
            srcs.append(str(q))
        fresh = not (where / f"{name}.so").is_file()
        if fresh:
            print(f"slimhar: compiling the fused training kernels once (0.5-5 minutes, depending on the machine) "
                  f"in {where}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            ext = cpp_extension.load(name=name, sources=srcs, extra_cflags=_flags(), extra_ldflags=["-fopenmp"],
                                     build_directory=str(where), verbose=False)
        except Exception as e:       # noqa: BLE001 - re-raised with what to do
            raise RuntimeError(f"cannot build the fused training kernels ({_SRC.name}) in {where}: {e}. "
                               "Install a C++ compiler and ninja, or train with layout 'cl'.") from e
    if fresh:
        print(f"slimhar: fused training kernels ready ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return ext


def chunk_geometry(T: int, k: int, s: int, p: int) -> tuple[int, int, int]:
    """(L, m, n) of a kernel-k, stride-s, pad-p conv over T samples in chunk form: L outputs,
    m = k / s kernel pieces, n = L + m - 1 chunks of s samples read."""
    if k % s:
        raise ValueError(f"chunk form needs kernel {k} to be a multiple of stride {s}")
    m = k // s
    L = (T + 2 * p - k) // s + 1
    return L, m, L + m - 1


def chunk_weight(ws, s: int, dtype: torch.dtype) -> torch.Tensor:
    """Conv weights [o_i, ci, k] (slices of full weights, same ci and k) -> [s*ci, m*sum(o_i)]:
    rows (sample in chunk, in-channel), columns (piece, out-channel of w_0 | w_1 | ...): several
    convs reading the same input become one GEMM. One strided copy (with the cast) each."""
    if isinstance(ws, torch.Tensor):
        ws = [ws]
    _, ci, k = ws[0].shape
    m = k // s
    wc = torch.empty(s, ci, m, sum(w.shape[0] for w in ws), dtype=dtype)
    off = 0
    for w in ws:
        o = w.shape[0]
        wc[:, :, :, off:off + o].copy_(w.detach().view(o, ci, m, s).permute(3, 1, 2, 0))
        off += o
    return wc.view(s * ci, -1)


def accumulate_chunk_grad(params, gwc: torch.Tensor, ci: int, s: int) -> None:
    """The inverse of chunk_weight for the weight gradient, added in place: gwc [s*ci, m*sum(o_i)]
    (any float dtype) into params[i].grad[:o_i, :ci] (params: (parameter, o_i) in column order),
    one strided add each -- no float32 copy in the [o, ci, k] layout first."""
    k = params[0][0].shape[2]
    m = k // s
    g = gwc.view(s, ci, m, -1)
    off = 0
    for param, o in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        param.grad[:o, :ci].view(o, ci, m, s).permute(3, 1, 2, 0).add_(g[:, :, :, off:off + o])
        off += o


def _accumulate(param: torch.Tensor, index, grad: torch.Tensor) -> None:
    """param.grad[index] += grad, in place. The fused Functions take the FULL parameters and
    return no gradient for them: a slimmed pass touches only the slice it used, where autograd
    would allocate, zero and add a full-size gradient per parameter per pass (9 passes a
    step). So this path supports ``loss.backward()`` (what training calls), not
    ``torch.autograd.grad`` or DDP's gradient hooks -- those run the ``cl`` layout."""
    if param.grad is None:
        param.grad = torch.zeros_like(param)
    param.grad[index].add_(grad)        # in place on the view (`+=` on an index adds a copy back)


def _accumulate_bn(gamma: torch.Tensor, beta: torch.Tensor, o: int, dgamma: torch.Tensor, dbeta: torch.Tensor) -> None:
    _accumulate(gamma, slice(0, o), dgamma)
    _accumulate(beta, slice(0, o), dbeta)


class _FusedBlock(torch.autograd.Function):
    """xbuf [B, n*s, ci] (this conv's zero-padded input, rows beyond the data zero or cropped)
    -> out [B, R, o]: relu(bn(conv(x))) at rows [row0, row0 + L) of the next conv's buffer.
    weight / gamma / beta are the full parameters; the first o (out) and ci (in) are used."""

    @staticmethod
    def forward(ctx, xbuf, weight, gamma, beta, o, s, L, m, R, row0, eps, out_dtype, rec=None):
        B, rows, ci = xbuf.shape
        n = rows // s
        g, b = gamma.detach()[:o], beta.detach()[:o]
        wc = chunk_weight(weight[:o, :ci], s, xbuf.dtype)
        z = (xbuf.reshape(B * n, s * ci) @ wc).reshape(B, n, m * o)
        out = torch.empty(B, R, o, dtype=out_dtype)
        y, mean, rstd, var = extension().forward(z, L, m, g, b, eps, out, row0)
        if rec is not None:
            rec(mean, var, B * L)
        ctx.save_for_backward(xbuf, wc, y, mean, rstd)
        ctx.params = (weight, gamma, beta)
        ctx.geom = (s, m, row0, o)
        return out

    @staticmethod
    def backward(ctx, gout):
        xbuf, wc, y, mean, rstd = ctx.saved_tensors
        weight, gamma, beta = ctx.params
        s, m, row0, o = ctx.geom
        B, rows, ci = xbuf.shape
        n = rows // s
        gz = torch.empty(B, n, m * o, dtype=wc.dtype)
        dgamma, dbeta = extension().backward(y, 0, mean, rstd, gamma.detach()[:o], beta.detach()[:o],
                                             gout.contiguous(), row0, gz, m, 0)
        gz2 = gz.reshape(B * n, m * o)
        gx = (gz2 @ wc.t()).reshape(B, rows, ci) if ctx.needs_input_grad[0] else None
        accumulate_chunk_grad([(weight, o)], xbuf.reshape(B * n, s * ci).t() @ gz2, ci, s)
        _accumulate_bn(gamma, beta, o, dgamma, dbeta)
        return (gx,) + (None,) * 12


class _FirstBlock(torch.autograd.Function):
    """The first block (one input channel): x [B, T] float32 -> out [B, R, o]. The conv is six
    multiply-adds per output, done inside the kernel rather than as a K=3 matrix product; its
    weight gradient is accumulated there too. Full parameters in, the first o used."""

    @staticmethod
    def forward(ctx, x, weight, gamma, beta, o, s, p, L, R, row0, eps, out_dtype, rec=None):
        wt = weight.detach()[:o, 0].t().contiguous()      # [k, o]
        g, b = gamma.detach()[:o], beta.detach()[:o]
        out = torch.empty(x.shape[0], R, o, dtype=out_dtype)
        y, mean, rstd, var = extension().first_forward(x, wt, s, p, L, g, b, eps, out, row0)
        if rec is not None:
            rec(mean, var, x.shape[0] * L)
        ctx.save_for_backward(x, wt, y, mean, rstd)
        ctx.params = (weight, gamma, beta)
        ctx.geom = (o, s, p, row0)
        return out

    @staticmethod
    def backward(ctx, gout):
        x, wt, y, mean, rstd = ctx.saved_tensors
        weight, gamma, beta = ctx.params
        o, s, p, row0 = ctx.geom
        gw, dgamma, dbeta = extension().first_backward(x, wt, s, p, y, 0, mean, rstd, gamma.detach()[:o],
                                                       beta.detach()[:o], gout.contiguous(), row0)
        _accumulate(weight, (slice(0, o), 0), gw)
        _accumulate_bn(gamma, beta, o, dgamma, dbeta)
        return (None,) * 13


class _ResBlock(torch.autograd.Function):
    """A ResNet block, relu(bn2(conv2(relu(bn1(conv1(x))))) + bn_s(short(x))), as one node.
    conv1 and the shortcut read the same input with the same geometry, so they are ONE chunk
    GEMM with their weights side by side ([s*ci, m*2o], columns (piece, [conv1 | shortcut]));
    the kernel normalizes both halves, writes relu(bn1) as conv2's input and keeps the
    shortcut's output for the sum. conv2 (kernel 3, stride 1, pad 1) is a second chunk GEMM on
    the unpadded rows (its chunk sum skips the pad rows' zero products);
    its epilogue adds both normalized branches and applies the ReLU into the next block's
    buffer. Backward mirrors it: one kernel writes conv2's chunk gradient and the shortcut's
    columns of the concatenated one, conv2's input gradient goes through bn1 into the conv1
    columns, then two GEMMs give the block input's and both weights' gradients.
    The first block (one input channel) computes conv1 + shortcut inside the kernel and
    accumulates their weight gradients there too (no gradient tensor of their output)."""

    @staticmethod
    def forward(ctx, x, w1, g1, b1, w2, g2, b2, ws, gs, bs, o, geom, eps, out_dtype, gemm_dtype, rec=None):
        s, p, L, m, R, row0, first = geom
        ext = extension()
        B = x.shape[0]
        gcat = torch.cat([g1.detach()[:o], gs.detach()[:o]])
        bcat = torch.cat([b1.detach()[:o], bs.detach()[:o]])
        abuf = torch.empty(B, L, o, dtype=gemm_dtype)             # conv2's input, not padded
        if first:
            wcat = torch.cat([w1.detach()[:o, 0], ws.detach()[:o, 0]]).t().contiguous()     # [k, 2o]
            ycat, mean, rstd, var = ext.first_forward(x, wcat, s, p, L, gcat, bcat, eps, abuf, 0)
        else:
            ci, n = x.shape[2], x.shape[1] // s
            wcat = chunk_weight([w1[:o, :ci], ws[:o, :ci]], s, x.dtype)
            z = (x.reshape(B * n, s * ci) @ wcat).reshape(B, n, m * 2 * o)
            ycat, mean, rstd, var = ext.forward(z, L, m, gcat, bcat, eps, abuf, 0)
        wc2 = chunk_weight(w2[:o, :o], 1, gemm_dtype)             # [o, 3o]
        # conv2 (kernel 3, pad 1) on the unpadded rows: the pad rows' products are zero, so the
        # chunk sum skips them instead of a GEMM computing them (2 of L + 2 rows: 1/3 at L = 4)
        z2 = (abuf.reshape(B * L, o) @ wc2).reshape(B, L, 3 * o)
        out = torch.empty(B, R, o, dtype=out_dtype)
        y2, mean2, rstd2, var2 = ext.residual_forward(z2, L, 3, 1, g2.detach()[:o], b2.detach()[:o], eps, ycat, o,
                                                mean[o:], rstd[o:], gs.detach()[:o], bs.detach()[:o], out, row0)
        if rec is not None:          # calibration: (bn1, bn2, bn_short) batch statistics
            rec[0](mean[:o], var[:o], B * L)
            rec[1](mean2, var2, B * L)
            rec[2](mean[o:], var[o:], B * L)
        ctx.save_for_backward(x, wcat, ycat, mean, rstd, abuf, wc2, y2, mean2, rstd2)
        ctx.params = (w1, g1, b1, w2, g2, b2, ws, gs, bs)
        ctx.geom = (o, geom)
        return out

    @staticmethod
    def backward(ctx, gout):
        x, wcat, ycat, mean, rstd, abuf, wc2, y2, mean2, rstd2 = ctx.saved_tensors
        w1, g1, b1, w2, g2, b2, ws, gs, bs = ctx.params
        o, (s, p, L, m, R, row0, first) = ctx.geom
        ext = extension()
        B = x.shape[0]
        aff = lambda t: t.detach()[:o]                            # noqa: E731
        gz2 = torch.empty(B, L, 3 * o, dtype=wc2.dtype)
        stats = (aff(g2), aff(b2), ycat, o, mean[o:], rstd[o:], aff(gs), aff(bs), gout.contiguous(), row0, gz2, 3, 1)
        if first:       # both 1-channel convs: their weight gradients straight from the kernels
            dg2, db2, dgs, dbs, gws = ext.residual_backward_first(y2, mean2, rstd2, *stats, x, wcat, s, p)
        else:
            gzc = torch.empty(B, x.shape[1] // s, m * 2 * o, dtype=wcat.dtype)
            dg2, db2, dgs, dbs = ext.residual_backward(y2, mean2, rstd2, *stats, gzc, m)
        gz2f = gz2.reshape(B * L, 3 * o)
        ga = (gz2f @ wc2.t()).reshape(B, L, o)
        accumulate_chunk_grad([(w2, o)], abuf.reshape(B * L, o).t() @ gz2f, o, 1)
        _accumulate_bn(g2, b2, o, dg2, db2)
        _accumulate_bn(gs, bs, o, dgs, dbs)
        if first:
            gw1, dg1, db1 = ext.first_backward(x, wcat, s, p, ycat, 0, mean[:o], rstd[:o], aff(g1), aff(b1), ga, 0)
            _accumulate_bn(g1, b1, o, dg1, db1)
            _accumulate(w1, (slice(0, o), 0), gw1)
            _accumulate(ws, (slice(0, o), 0), gws)
            return (None,) * 16
        dg1, db1 = ext.backward(ycat, 0, mean[:o], rstd[:o], aff(g1), aff(b1), ga, 0, gzc, m, 0)
        _accumulate_bn(g1, b1, o, dg1, db1)
        ci, n = x.shape[2], x.shape[1] // s
        gzf = gzc.reshape(B * n, m * 2 * o)
        gx = (gzf @ wcat.t()).reshape(B, n * s, ci) if ctx.needs_input_grad[0] else None
        accumulate_chunk_grad([(w1, o), (ws, o)], x.reshape(B * n, s * ci).t() @ gzf, ci, s)
        return (gx,) + (None,) * 15


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


def forward_blocks(blocks, x: torch.Tensor, channels, gemm_dtype: torch.dtype, calibrate: bool = False) -> torch.Tensor:
    """Run CNN or ResNet blocks (batch-statistics BatchNorm) on channels-last sequences
    x [B, T, 1]; returns the last block's activations [B, L, ch] in float32. calibrate: every
    BatchNorm merges the batch's mean and variance, which the kernels compute anyway, into its
    calibration sums (SlimBN.merge_batch_stats)."""
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
        if blk.residual:
            c2, sh = blk.conv2, blk.short
            if (sh.k, sh.stride, sh.pad) != (conv.k, conv.stride, conv.pad) or (c2.k, c2.stride, c2.pad) != (3, 1, 1):
                raise ValueError("fused ResNet blocks need the shortcut's geometry = conv1's and a (3, 1, 1) conv2")
            geom = (conv.stride, conv.pad, L, m, R, row0, i == 0)
            rec = (bn.merge_batch_stats, blk.bn2.merge_batch_stats, blk.bn_short.merge_batch_stats) if calibrate else None
            h = _ResBlock.apply(h, conv.weight, bn.weight, bn.bias, c2.weight, blk.bn2.weight, blk.bn2.bias,
                                sh.weight, blk.bn_short.weight, blk.bn_short.bias, ch, geom, bn.eps, out_dtype,
                                gemm_dtype, rec)
            continue
        rec = bn.merge_batch_stats if calibrate else None
        if i == 0:
            h = _FirstBlock.apply(h, conv.weight, bn.weight, bn.bias, ch, conv.stride, conv.pad, L, R, row0, bn.eps,
                                  out_dtype, rec)
        else:
            h = _FusedBlock.apply(h, conv.weight, bn.weight, bn.bias, ch, conv.stride, L, m, R, row0, bn.eps,
                                  out_dtype, rec)
    return h
