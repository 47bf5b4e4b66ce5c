"""The baseline: each subnet quantized ON ITS OWN by the TensorFlow Lite converter.

The subnet's float model (BN folded with its own statistics) is rebuilt in Keras with the
same op structure as our lowering (explicit zero PAD, VALID convs, GATHER/MAXIMUM pooling,
NHWC flatten) and converted to full-int8 with a representative dataset of the same
calibration windows. Its per-channel weight scales come from that subnet's own slice, so its
int8 weights differ from every other subnet's: what sharing one pool costs is measured
against this, not assumed.
"""
from __future__ import annotations

import contextlib
import io
import os

import numpy as np
import torch

from slimhar.train.models.reference import DenseSubnet

from .graph import BN_EPS, pool_windows


def _folded(conv, bn):
    w = conv.weight.detach().double()                       # [o, i, k, 1]
    inv = 1.0 / torch.sqrt(bn.running_var.double() + BN_EPS)
    g = bn.weight.detach().double() * inv
    w = w * g[:, None, None, None]
    b = bn.bias.detach().double() - bn.running_mean.double() * g
    return w.permute(2, 3, 1, 0).numpy().astype(np.float32), b.numpy().astype(np.float32)   # HWIO


def keras_subnet(dense: DenseSubnet, resolution: int, axes: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from slimhar.extras import require
    require("tensorflow")                   # keras comes with it
    import keras
    from keras import layers, ops
    inp = keras.Input((resolution, axes, 1))
    x, L = inp, resolution

    def conv(t, conv_m, bn_m, stride, padding, act):
        w, b = _folded(conv_m, bn_m)
        lyr = layers.Conv2D(w.shape[-1], w.shape[:2], strides=(stride, 1), padding=padding, activation=act)
        out = lyr(t)
        lyr.set_weights([w, b])
        return out

    for blk in dense.blocks:
        xp = layers.ZeroPadding2D(((1, 1), (0, 0)))(x)
        if not blk.residual:
            x = conv(xp, blk.conv1, blk.bn1, 3, "valid", "relu")
        else:
            a = conv(xp, blk.conv1, blk.bn1, 3, "valid", "relu")
            m = conv(a, blk.conv2, blk.bn2, 1, "same", None)
            s = conv(xp, blk.short, blk.bn_short, 3, "valid", None)
            x = layers.ReLU()(layers.Add()([m, s]))
        L = (L + 2 - 6) // 3 + 1
    if L != 6:
        wins = pool_windows(L)
        parts = [ops.take(x, np.array([min(s + j, e - 1) for s, e in wins], np.int32), axis=1)
                 for j in range(max(e - s for s, e in wins))]
        x = parts[0]
        for p in parts[1:]:
            x = ops.maximum(x, p)
    ch = x.shape[-1]
    x = layers.Reshape((-1,))(x)
    W = dense.fc.weight.detach().numpy()                    # [K, ch*6*C] channel-major
    K = W.shape[0]
    W = W.reshape(K, ch, 6, axes).transpose(2, 3, 1, 0).reshape(6 * axes * ch, K)   # NHWC order, [in, out]
    fc = layers.Dense(K)
    out = fc(x)
    fc.set_weights([W, dense.fc.bias.detach().numpy()])
    return keras.Model(inp, out)


def convert(dense: DenseSubnet, resolution: int, axes: int, calib_nhwc: np.ndarray) -> bytes:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from slimhar.extras import require
    tf = require("tensorflow")
    tf.get_logger().setLevel("ERROR")
    import warnings
    model = keras_subnet(dense, resolution, axes)
    # the converter prints its saved signatures (Python stdout) and a line per model from C++
    # (fd 2); neither tells the user anything here
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), _quiet_fd(2):
        warnings.simplefilter("ignore")
        return _convert(tf, model, calib_nhwc)


@contextlib.contextmanager
def _quiet_fd(fd: int):
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _convert(tf, model, calib_nhwc: np.ndarray) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep():
        for i in range(len(calib_nhwc)):
            yield [calib_nhwc[i:i + 1]]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()
