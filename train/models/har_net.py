"""The paper's 3-block HAR CNN and ResNet as one slimmable network (DESIGN §1).

Input ``[N, 1, T', C]`` (T' = the subnet's resolution, C = sensor axes). Each block: conv
kernel (6,1) stride (3,1) padding (1,0), no bias, BN, ReLU; channels 64 -> 128 -> 256 at width
1.0. ResNet blocks add a (3,1) conv + BN on the main path and a conv+BN shortcut, ReLU after
the sum. Head: adaptive max pool to (6, C), channel-major flatten, linear to the classes.

Width and resolution are run-time settings: ``set_width(w)`` (any w, for training) or
``set_subnet(w, T')`` (a point of the grid, selects its calibrated BN statistics).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .slim_ops import SlimBN, SlimConv, SlimLinear, _distributed, channels_at, fake_quant_act

POOL_ROWS = 6


@dataclass(frozen=True)
class NetSpec:
    """Everything that defines the architecture and its grid; stored in every checkpoint."""
    arch: str                      # "cnn" | "resnet"
    window: int                    # T at full resolution
    axes: int                      # C
    classes: int
    widths: tuple[float, ...]      # the grid's widths (ascending)
    resolutions: tuple[int, ...]   # the grid's T' values (descending, first = window)
    channels: tuple[int, ...] = (64, 128, 256)
    kernel: int = 6
    stride: int = 3
    padding: int = 1

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "NetSpec":
        d = dict(d)
        for k in ("widths", "resolutions", "channels"):
            d[k] = tuple(d[k])
        return cls(**d)

    @property
    def subnets(self) -> list[tuple[float, int]]:
        return [(w, r) for w in self.widths for r in self.resolutions]


class _Block(nn.Module):
    def __init__(self, spec: NetSpec, in_ch: int, out_ch: int, n_sub: int, residual: bool):
        super().__init__()
        k, s, p = spec.kernel, spec.stride, spec.padding
        self.out_full = out_ch
        self.residual = residual
        self.conv1 = SlimConv(in_ch, out_ch, k, s, p)
        self.bn1 = SlimBN(out_ch, n_sub)
        if residual:
            self.conv2 = SlimConv(out_ch, out_ch, 3, 1, 1)
            self.bn2 = SlimBN(out_ch, n_sub)
            self.short = SlimConv(in_ch, out_ch, k, s, p)
            self.bn_short = SlimBN(out_ch, n_sub)

    def forward(self, x: torch.Tensor, out_ch: int, cl: bool = False, fq=None) -> torch.Tensor:
        """fq: activation fake-quantizer applied to every tensor the int8 graph quantizes (QAT)."""
        def bn(m, y):     # channels-last [B, L, c]: BatchNorm over the rows of a [B*L, c] view
            return m(y.reshape(-1, y.shape[-1])).reshape(y.shape) if cl else m(y)
        q = fq or (lambda t: t)
        y = bn(self.bn1, self.conv1(x, out_ch, cl))
        if not self.residual:
            return q(F.relu(y))
        y = q(bn(self.bn2, self.conv2(q(F.relu(y)), out_ch, cl)))
        return q(F.relu(y + q(bn(self.bn_short, self.short(x, out_ch, cl)))))

    def out_len(self, length: int) -> int:
        return self.conv1.out_len(length)

    def cost(self, in_ch: int, out_ch: int, length: int, axes: int) -> tuple[int, int, int]:
        """(MACs, params, output length) of this block at these channel counts."""
        L = self.out_len(length)
        macs = self.conv1.macs(in_ch, out_ch, L, axes)
        params = out_ch * in_ch * self.conv1.k + 2 * out_ch
        if self.residual:
            macs += self.conv2.macs(out_ch, out_ch, L, axes) + self.short.macs(in_ch, out_ch, L, axes)
            params += out_ch * out_ch * 3 + out_ch * in_ch * self.short.k + 4 * out_ch
        return macs, params, L


class HarNet(nn.Module):
    LAYOUTS = ("cl", "nchw", "seq", "fused")

    def __init__(self, spec: NetSpec, layout: str = "cl"):
        super().__init__()
        if spec.arch not in ("cnn", "resnet"):
            raise ValueError(f"unknown arch {spec.arch!r} (cnn, resnet)")
        if list(spec.widths) != sorted(spec.widths) or not spec.widths or spec.widths[0] <= 0 or spec.widths[-1] > 1:
            raise ValueError(f"widths must be ascending in (0, 1]: {spec.widths}")
        if list(spec.resolutions) != sorted(spec.resolutions, reverse=True) or spec.resolutions[0] != spec.window:
            raise ValueError(f"resolutions must be descending and start at the window {spec.window}: {spec.resolutions}")
        self.spec = spec
        n_sub = len(spec.widths) * len(spec.resolutions)
        chans = (1,) + tuple(spec.channels)
        self.blocks = nn.ModuleList(
            _Block(spec, chans[i], chans[i + 1], n_sub, spec.arch == "resnet") for i in range(len(spec.channels)))
        self.fc = SlimLinear(spec.channels[-1], POOL_ROWS * spec.axes, spec.classes)
        for r in spec.resolutions:
            if self.feature_len(r) < 1:
                raise ValueError(f"resolution {r} is too short for {len(spec.channels)} stride-{spec.stride} blocks")
        if layout not in self.LAYOUTS:
            raise ValueError(f"layout must be one of {self.LAYOUTS}")
        self.layout = layout        # maths identical; a speed choice (see slim_ops, fused)
        self.gemm_dtype = torch.float32   # bfloat16: mixed-precision GEMMs in the fused layout
        self.width = 1.0
        self._sub: tuple[float, int] | None = None
        self.qat = False
        # the BatchNorms, listed once: _fused_mode() reads their flags every forward (a
        # modules() walk per pass was ~1 % of a fused CNN step)
        self._bns = tuple(m for m in self.modules() if isinstance(m, SlimBN))

    # -- run-time configuration -------------------------------------------------------------
    def feature_len(self, length: int) -> int:
        for b in self.blocks:
            length = b.out_len(length)
        return length

    def set_qat(self, on: bool) -> None:
        """Quantization-aware mode: the shared int8 weight quantizer on every conv / linear
        weight and int8 fake quantization of every activation the exported graph quantizes
        (input, block outputs, ResNet branches, logits)."""
        self.qat = on
        for b in self.blocks:
            b.conv1.qat_bn = b.bn1 if on else None
            if b.residual:
                b.conv2.qat_bn = b.bn2 if on else None
                b.short.qat_bn = b.bn_short if on else None
        self.fc.qat = on

    def set_width(self, width: float) -> None:
        """Any width (training); BN uses batch statistics, so no grid point is selected."""
        self.width = float(width)
        self._sub = None
        self._select(None)

    def set_subnet(self, width: float, resolution: int) -> int:
        """A grid point: selects its calibrated BN statistics. Returns its index."""
        idx = self.subnet_index(width, resolution)
        self.width = float(width)
        self._sub = (float(width), int(resolution))
        self._select(idx)
        return idx

    def subnet_index(self, width: float, resolution: int) -> int:
        wi = [i for i, w in enumerate(self.spec.widths) if abs(w - width) < 1e-6]
        if not wi or resolution not in self.spec.resolutions:
            raise KeyError(f"({width}, {resolution}) is not a subnet of the grid")
        return wi[0] * len(self.spec.resolutions) + self.spec.resolutions.index(resolution)

    def _select(self, idx: int | None) -> None:
        for m in self._bns:          # set_width runs 9 times a step: no modules() walk each time
            m.subnet_index = idx

    def block_channels(self, width: float | None = None) -> list[int]:
        w = self.width if width is None else width
        return [channels_at(c, w) for c in self.spec.channels]

    # -- maths --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, one, t, c = x.shape
        if one != 1 or c != self.spec.axes:
            raise ValueError(f"expected input [N, 1, T, {self.spec.axes}], got {list(x.shape)}")
        if self._sub is not None and not self.training and t != self._sub[1]:
            raise ValueError(f"subnet {self._sub} selected but input has T={t}")
        mode = self._fused_mode()
        if mode is not None:
            return self._forward_fused(x, calibrate=mode == "calibrate")
        cl = self.layout in ("cl", "fused")
        if cl:
            h = x.reshape(n, t, c).transpose(1, 2).reshape(n * c, t, 1)   # [N*C, T, 1] channels last
        elif self.layout == "seq":
            h = x.reshape(n, t, c).transpose(1, 2).reshape(n * c, 1, t)   # [N*C, 1, T]
        else:
            h = x.contiguous()                                            # [N, 1, T, C]
        fq = fake_quant_act if self.qat else None
        if fq:
            h = fq(h)
        for b, ch in zip(self.blocks, self.block_channels()):
            h = b(h, ch, cl, fq)
        time_dim = 2 if self.layout in ("seq", "nchw") else 1
        h = pool_rows(h, time_dim)
        if cl:
            h = h.reshape(n, c, POOL_ROWS, -1).permute(0, 3, 2, 1)      # [N, ch, 6, C]
        elif self.layout == "seq":
            h = h.reshape(n, c, -1, POOL_ROWS).permute(0, 2, 3, 1)      # [N, ch, 6, C]
        out = self.fc(h.reshape(n, -1))                                 # channel-major flatten
        return fake_quant_act(out) if self.qat else out

    def _fused_mode(self) -> str | None:
        """The fused layout covers passes with batch-statistics BatchNorm: "train" (training-
        mode passes, CNN and ResNet) and "calibrate" (every BatchNorm collecting; GEMMs in
        float32 whatever the training precision). None: everything else (evaluation with the
        calibrated statistics, QAT, multi-process BatchNorm) runs the cl path."""
        if self.layout != "fused" or self.qat or _distributed():
            return None
        flags = {m.collect is not None for m in self._bns}
        if flags == {True}:
            return "calibrate"
        return "train" if self.training and flags == {False} else None

    def _fused_ok(self) -> bool:
        return self._fused_mode() is not None

    def _forward_fused(self, x: torch.Tensor, calibrate: bool) -> torch.Tensor:
        n, _, t, c = x.shape
        h = x.reshape(n, t, c).transpose(1, 2).reshape(n * c, t, 1)
        dtype = torch.float32 if calibrate else self.gemm_dtype
        from .fused import forward_blocks, head     # the fused layout's module, only when it runs
        h = forward_blocks(self.blocks, h, self.block_channels(), dtype, calibrate=calibrate)
        return head(h, c, POOL_ROWS, self.fc.weight, self.fc.bias)

    def cost(self, width: float, resolution: int) -> dict:
        """Exact multiply-accumulates and parameters of one subnet (conv + linear MACs; BN, ReLU,
        pooling and adds are not MACs)."""
        macs = params = 0
        in_ch, L = 1, resolution
        for b, ch in zip(self.blocks, self.block_channels(width)):
            m, p, L = b.cost(in_ch, ch, L, self.spec.axes)
            macs, params, in_ch = macs + m, params + p, ch
        feats = in_ch * POOL_ROWS * self.spec.axes
        macs += feats * self.spec.classes
        params += feats * self.spec.classes + self.spec.classes
        return {"macs": macs, "params": params}


def pool_windows(length: int, rows: int = POOL_ROWS) -> list[tuple[int, int]]:
    """torch's adaptive pooling windows [start, end) for `rows` outputs over `length`."""
    return [(i * length // rows, -(-((i + 1) * length) // rows)) for i in range(rows)]


_POOL_CACHE: dict[int, list[torch.Tensor]] = {}


def pool_rows(h: torch.Tensor, dim: int) -> torch.Tensor:
    """Adaptive max pool of dim `dim` to POOL_ROWS rows, as the max of a few row gathers (the
    windows have 1-2 rows at these lengths, overlapping when upsampling). Same values as
    torch's adaptive_max_pool, and ~10x faster on CPU for these shapes (docs/results.md)."""
    length = h.shape[dim]
    if length not in _POOL_CACHE:
        wins = pool_windows(length)
        _POOL_CACHE[length] = [torch.tensor([min(s + j, e - 1) for s, e in wins])
                               for j in range(max(e - s for s, e in wins))]
    idx = _POOL_CACHE[length]
    out = h.index_select(dim, idx[0].to(h.device))
    for i in idx[1:]:
        out = torch.maximum(out, h.index_select(dim, i.to(h.device)))
    return out


def resize(x: torch.Tensor, length: int) -> torch.Tensor:
    """[N, 1, T, C] -> [N, 1, length, C] with nearest-exact sampling along T (torch's
    ``F.interpolate(mode="nearest-exact")``): source index floor((i + 0.5) * T / length)
    computed in float32, exactly as torch does."""
    t = x.shape[2]
    if t == length:
        return x
    return x.index_select(2, resize_index(t, length).to(x.device))


_IDX_CACHE: dict[tuple[int, int], torch.Tensor] = {}


def resize_index(t: int, length: int) -> torch.Tensor:
    """Source index of every output sample, in IEEE float32 exactly as torch computes it
    (scale = float32(t) / float32(length); the exact rational formula differs from torch for a
    few (t, length) pairs, e.g. (128, 41)). The firmware uses the same float32 arithmetic."""
    key = (t, length)
    if key not in _IDX_CACHE:
        i = torch.arange(length, dtype=torch.float32)
        scale = torch.tensor(t, dtype=torch.float32) / torch.tensor(length, dtype=torch.float32)
        _IDX_CACHE[key] = torch.clamp(torch.floor((i + 0.5) * scale).long(), max=t - 1)
    return _IDX_CACHE[key]
