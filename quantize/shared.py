"""The shared int8 weight pool (DESIGN §3).

For every conv / linear layer of the supernet, once, at FULL width:

* fold sign(gamma[o]) of the layer's BatchNorm into the weights (the magnitude |gamma| goes
  into each subnet's private per-channel scale, so the int8 values never depend on a subnet);
* a symmetric per-output-channel step Delta[o] = max|W[o, :]| / 127 over the full row;
* q = clamp(round(W * sign(gamma) / Delta), -127, 127).

Pool tensors are stored in the TFLite layout the subnets use, so a subnet's weights are the
slice "first o rows of dim 0, first i entries of the last dim" of a pool tensor, with the full
tensor's strides:

* conv  [O, k, 1, I]            (TFLite OHWI)
* fc    [classes, 6*C, Cin]     (NHWC flatten order: pooled row, axis, channel; the head's
                                 torch weight is channel-major and is permuted here once)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slimhar.train.models.har_net import POOL_ROWS


@dataclass
class PoolTensor:
    name: str            # e.g. "blocks.0.conv1"
    q: np.ndarray        # int8, full-width tensor in TFLite layout
    delta: np.ndarray    # float64 [O], step of each output channel
    sign: np.ndarray     # float64 [O], sign(gamma) folded into q (+1 for the fc)
    bn: str | None       # the BatchNorm that follows ("blocks.0.bn1") or None for the fc

    @property
    def out_dim(self) -> int:
        return self.q.shape[0]

    @property
    def in_dim(self) -> int:
        return self.q.shape[-1]

    def slice(self, o: int, i: int) -> np.ndarray:
        """The subnet's weights: first o out-channels, first i in-channels (a strided view)."""
        return self.q[:o, ..., :i]


def _quantize_rows(w: np.ndarray, sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = w * sign.reshape((-1,) + (1,) * (w.ndim - 1))
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    delta = np.where(amax > 0, amax / 127.0, 1.0)
    q = np.clip(np.round(w / delta.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
    return q, delta


def conv_layers(spec: dict) -> list[tuple[str, str]]:
    """(conv, following BN) names in graph order."""
    out = []
    for b in range(len(spec["channels"])):
        out.append((f"blocks.{b}.conv1", f"blocks.{b}.bn1"))
        if spec["arch"] == "resnet":
            out.append((f"blocks.{b}.conv2", f"blocks.{b}.bn2"))
            out.append((f"blocks.{b}.short", f"blocks.{b}.bn_short"))
    return out


def build_pool(state: dict, spec: dict) -> dict[str, PoolTensor]:
    """The shared pool of a checkpoint's supernet (state dict of float tensors)."""
    pool = {}
    for conv, bn in conv_layers(spec):
        w = state[f"{conv}.weight"].double().numpy()            # [O, I, k]
        gamma = state[f"{bn}.weight"].double().numpy()
        sign = np.where(gamma < 0, -1.0, 1.0)
        q, delta = _quantize_rows(w, sign)
        pool[conv] = PoolTensor(conv, np.ascontiguousarray(q.transpose(0, 2, 1)[:, :, None, :]), delta, sign, bn)
    w = state["fc.weight"].double().numpy()                      # [K, Cin*6*C] channel-major
    K, C, cin = w.shape[0], spec["axes"], spec["channels"][-1]
    w = w.reshape(K, cin, POOL_ROWS * C).transpose(0, 2, 1)     # [K, 6*C, Cin]
    q, delta = _quantize_rows(w, np.ones(K))
    pool["fc"] = PoolTensor("fc", np.ascontiguousarray(q), delta, np.ones(K), None)
    return pool
