"""An independent check of the shared-weight quantizer: from the float checkpoint alone, a few
lines of NumPy written for this test (not quantize/shared.py or quantize/graph.py) recompute
DESIGN §3 and compare with what the blob and its standalone subnets hold:

  pool      q = clamp(round(W * sign(gamma) / Delta), -127, 127), Delta[o] = max|W[o]| / 127 over the
            FULL-width row (sign(gamma) of the following BatchNorm; none for the classifier)
  scales    s_w[o] = Delta[o] * |gamma[o]| / sqrt(var_s[o] + eps), BN folded with subnet s's statistics
  biases    round((beta - gamma * mu_s / sqrt(var_s + eps)) / (s_in * s_w)), s_in the conv's input scale

Integers must match exactly, float scales to float32 precision."""
from __future__ import annotations

import numpy as np

from slimhar.quantize.blob import Blob
from slimhar.quantize.tflite_io import read_model

EPS = 1e-5                      # torch's BatchNorm default, which the models use
BN_OF = {"conv1": "bn1", "conv2": "bn2", "short": "bn_short"}


def _np(t):
    return t.detach().double().numpy()


def _expected_pool(state, name, spec):
    """(q in the blob's layout, Delta, sign) of pool tensor `name`, from the float weights."""
    if name == "fc":
        w = _np(state["fc.weight"])                                 # [K, Cin * 6 * C], torch flatten: channel-major
        K, C, cin = w.shape[0], spec["axes"], spec["channels"][-1]
        w = w.reshape(K, cin, w.shape[1] // cin).transpose(0, 2, 1)  # [K, 6C, Cin]: the NHWC flatten order
        sign = np.ones(K)
    else:
        blk, conv = name.rsplit(".", 1)
        w = _np(state[f"{name}.weight"]).reshape(state[f"{name}.weight"].shape[0], state[f"{name}.weight"].shape[1], -1)
        w = w.transpose(0, 2, 1)[:, :, None, :]                     # [O, I, k] -> OHWI [O, k, 1, I]
        sign = np.where(_np(state[f"{blk}.{BN_OF[conv]}.weight"]) < 0, -1.0, 1.0)
    ws = w * sign.reshape((-1,) + (1,) * (w.ndim - 1))
    delta = np.abs(ws).reshape(len(ws), -1).max(axis=1) / 127.0
    q = np.clip(np.round(ws / delta.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
    return q, delta, sign


def test_blob_equals_an_independent_recomputation(exported):
    """For both architectures (the fixture's params): every pool tensor, and every subnet's
    weights, per-channel scales and int32 biases."""
    arch = exported["cfg"]["model"]
    ck = exported["ckpt"]
    state, spec = ck["model"], ck["spec"]
    blob = Blob.open(exported["dir"] / "model.blob")
    expected = {e.name: _expected_pool(state, e.name, spec) for e in blob.pool}
    for k, e in enumerate(blob.pool):
        np.testing.assert_array_equal(blob.pool_array(k), expected[e.name][0], err_msg=f"pool {e.name}")
    n_checked = 0
    for s in blob.subnets:
        idx = spec["widths"].index(next(w for w in spec["widths"] if abs(w - s.width) < 1e-6)) \
            * len(spec["resolutions"]) + spec["resolutions"].index(s.resolution)
        m = read_model(blob.unpack(s))
        sg = m.subgraphs[0]
        users = {op.inputs[1]: op for op in sg.operators if len(op.inputs) >= 2}
        for t, p, o, i in s.refs:
            name = blob.pool[p].name
            q, delta, _sign = expected[name]
            wt = sg.tensors[t]
            want_w = q[:o, ..., :i]
            assert int(np.prod([int(x) for x in wt.shape])) == want_w.size and int(wt.shape[0]) == o
            got = np.frombuffer(bytes(m.buffers[wt.buffer].data), np.int8).reshape(want_w.shape)   # fc: [K, 6C*Cin]
            np.testing.assert_array_equal(got, want_w, err_msg=f"{s.name} {name} weights")
            if name == "fc":
                s_w = delta[:o]
                b_f = _np(state["fc.bias"])[:o]
            else:
                blk, conv = name.rsplit(".", 1)
                bn = f"{blk}.{BN_OF[conv]}"
                g, beta = _np(state[f"{bn}.weight"])[:o], _np(state[f"{bn}.bias"])[:o]
                mu, var = _np(state[f"{bn}.stat_mean"])[idx, :o], _np(state[f"{bn}.stat_var"])[idx, :o]
                s_w = delta[:o] * np.abs(g) / np.sqrt(var + EPS)
                b_f = beta - g * mu / np.sqrt(var + EPS)
            stored = np.asarray(wt.quantization.scale, np.float64)
            np.testing.assert_allclose(stored, s_w, rtol=1e-6, err_msg=f"{s.name} {name} weight scales")
            op = users[t]
            s_in = np.float64(np.float32(sg.tensors[op.inputs[0]].quantization.scale[0]))
            bias_t = sg.tensors[op.inputs[2]]
            bias = np.frombuffer(bytes(m.buffers[bias_t.buffer].data), "<i4")
            want = np.round(b_f / (s_in * stored.astype(np.float32).astype(np.float64)))
            np.testing.assert_array_equal(bias, want.astype(np.int64), err_msg=f"{s.name} {name} int32 biases")
            n_checked += 1
    assert n_checked >= len(blob.subnets) * (4 if arch == "cnn" else 10)
