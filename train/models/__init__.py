"""Model registry (timm-style): a name -> builder of a :class:`HarNet` for any (T, C, classes).

``cnn`` / ``resnet`` are the paper's two architectures; they fit any dataset shape. The
paper's per-dataset variants (cnn_uci, resnet_wisdm, ...) are these with the dataset's shape,
chosen by the configs in train/configs/.
"""
from __future__ import annotations

from .har_net import HarNet, NetSpec, resize, resize_index
from .slim_ops import channels_at, make_divisible

ARCHS = ("cnn", "resnet")


def build_model(arch: str, window: int, axes: int, classes: int, widths, resolutions, **kw) -> HarNet:
    if arch not in ARCHS:
        raise KeyError(f"unknown model {arch!r}; known: {', '.join(ARCHS)}")
    spec = NetSpec(arch=arch, window=window, axes=axes, classes=classes,
                   widths=tuple(sorted(float(w) for w in widths)),
                   resolutions=tuple(sorted((int(r) for r in resolutions), reverse=True)), **kw)
    return HarNet(spec)


__all__ = ["ARCHS", "HarNet", "NetSpec", "build_model", "channels_at", "make_divisible", "resize", "resize_index"]
