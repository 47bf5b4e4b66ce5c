"""A subnet as plain torch modules in the paper's own 2-D formulation.

``dense_subnet(model, w, T')`` copies the sliced weights and that subnet's calibrated BN
statistics into ordinary ``Conv2d`` / ``BatchNorm2d`` / ``Linear`` modules over
``[N, 1, T', C]``. It is the straightforward reference the fast slimmable network is tested
against, and a standalone float model of one subnet for later stages.
"""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from .har_net import POOL_ROWS, HarNet
from .slim_ops import SlimBN, SlimConv


def _conv(c: SlimConv, o: int, i: int) -> nn.Conv2d:
    m = nn.Conv2d(i, o, (c.k, 1), (c.stride, 1), (c.pad, 0), bias=False)
    m.weight.data.copy_(c.weight.data[:o, :i].unsqueeze(-1))
    return m


def _bn(b: SlimBN, o: int, idx: int | None) -> nn.BatchNorm2d:
    m = nn.BatchNorm2d(o, eps=b.eps)
    m.weight.data.copy_(b.weight.data[:o])
    m.bias.data.copy_(b.bias.data[:o])
    if idx is not None:
        m.running_mean.copy_(b.stat_mean[idx, :o])
        m.running_var.copy_(b.stat_var[idx, :o])
    return m


class DenseBlock(nn.Module):
    def __init__(self, conv1, bn1, conv2=None, bn2=None, short=None, bn_short=None):
        super().__init__()
        self.conv1, self.bn1 = conv1, bn1
        self.residual = conv2 is not None
        if self.residual:
            self.conv2, self.bn2, self.short, self.bn_short = conv2, bn2, short, bn_short

    def forward(self, x):
        y = self.bn1(self.conv1(x))
        if not self.residual:
            return F.relu(y)
        y = self.bn2(self.conv2(F.relu(y)))
        return F.relu(y + self.bn_short(self.short(x)))


class DenseSubnet(nn.Module):
    def __init__(self, blocks, fc, axes: int):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveMaxPool2d((POOL_ROWS, axes))
        self.fc = fc

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        x = self.pool(x)
        return self.fc(x.flatten(1))


def dense_subnet(model: HarNet, width: float, resolution: int | None = None) -> DenseSubnet:
    """resolution=None copies no BN statistics (for train-mode comparisons)."""
    idx = None if resolution is None else model.subnet_index(width, resolution)
    blocks, in_ch = [], 1
    for b, o in zip(model.blocks, model.block_channels(width)):
        parts = [_conv(b.conv1, o, in_ch), _bn(b.bn1, o, idx)]
        if b.residual:
            parts += [_conv(b.conv2, o, o), _bn(b.bn2, o, idx), _conv(b.short, o, in_ch), _bn(b.bn_short, o, idx)]
        blocks.append(DenseBlock(*parts))
        in_ch = o
    feats = in_ch * POOL_ROWS * model.spec.axes
    fc = nn.Linear(feats, model.spec.classes)
    fc.weight.data.copy_(model.fc.weight.data[:, :feats])
    fc.bias.data.copy_(model.fc.bias.data)
    return DenseSubnet(blocks, fc, model.spec.axes)
