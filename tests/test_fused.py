"""The fused training layout (train/models/fused.py + train/csrc/fused_block.cpp) against the
plain torch modules: float32 to float rounding, bfloat16 within torch autocast's own error."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from slimhar.train import speed
from slimhar.train.collab import collab_step
from slimhar.train.config import ConfigError, check, load_config
from slimhar.train.models import build_model, resize
from slimhar.train.models.fused import extension
from slimhar.train.models.reference import dense_subnet


def _model(window=128, axes=9, seed=0):
    torch.manual_seed(seed)
    m = build_model("cnn", window, axes, 6, [0.1, 0.5, 1.0], [window, window - 16, window - 28])
    for p in m.parameters():          # BN affine away from (1, 0): exercises scale and shift
        if p.dim() == 1:
            p.data.uniform_(-0.5, 1.5)
    return m


def _grads(m):
    return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("window,axes,cases", [
    (128, 9, [(1.0, 128), (0.37, 112), (0.1, 100), (0.8, 124)]),   # UCI-HAR shapes (incl. cropped rows)
    (100, 6, [(1.0, 100), (0.55, 88)]),                             # BasicMotions shapes
])
def test_fused_fp32_outputs_and_gradients_equal_dense_reference(window, axes, cases):
    m = _model(window, axes)
    m.layout = "fused"
    x = torch.randn(8, 1, window, axes)
    for w, r in cases:
        m.train()
        m.zero_grad(set_to_none=True)
        m.set_width(w)
        xr = resize(x, r)
        out = m(xr)
        assert m._fused_ok()
        out.square().sum().backward()
        d = dense_subnet(m, w).train()
        ref = d(xr)
        ref.square().sum().backward()
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
        for blk, dblk, ch in zip(m.blocks, d.blocks, m.block_channels(w)):
            g = blk.conv1.weight.grad
            ci = dblk.conv1.weight.shape[1]
            torch.testing.assert_close(g[:ch, :ci], dblk.conv1.weight.grad.squeeze(-1), rtol=1e-3, atol=1e-5)
            assert g[ch:].abs().sum() == 0 and g[:, ci:].abs().sum() == 0     # untouched outside the slice
            torch.testing.assert_close(blk.bn1.weight.grad[:ch], dblk.bn1.weight.grad, rtol=1e-3, atol=1e-5)
            torch.testing.assert_close(blk.bn1.bias.grad[:ch], dblk.bn1.bias.grad, rtol=1e-3, atol=1e-5)
        feats = d.fc.weight.shape[1]
        torch.testing.assert_close(m.fc.weight.grad[:, :feats], d.fc.weight.grad, rtol=1e-3, atol=1e-5)
        torch.testing.assert_close(m.fc.bias.grad, d.fc.bias.grad, rtol=1e-3, atol=1e-5)


def test_fused_collab_step_accumulates_like_cl():
    """A whole 9-pass collaborative step (gradients accumulated over passes of different widths
    and resolutions into the parameter slices) gives the cl layout's gradients."""
    x, y = torch.randn(16, 1, 128, 9), torch.randint(6, (16,))
    draws = [(1.0, 124), (0.1, 100), (0.42, 128), (0.77, 116), (0.25, 104), (0.9, 108), (0.6, 100), (0.15, 120)]
    grads = {}
    for layout in ("cl", "fused"):
        m = _model()
        speed.configure(m, layout, "fp32")
        opt = torch.optim.SGD(m.parameters(), lr=0.0)
        collab_step(m, opt, x, y, 1.0, draws)
        grads[layout] = _grads(m)
    assert grads["cl"].keys() == grads["fused"].keys()
    for k in grads["cl"]:
        torch.testing.assert_close(grads["fused"][k], grads["cl"][k], rtol=1e-3, atol=2e-6, msg=k)


def test_fused_bf16_error_is_that_of_torch_autocast():
    """bfloat16 GEMMs change the rounding, not the maths: outputs and gradients stay as close to
    float32 as torch's own mixed precision (autocast, bfloat16) gets."""
    m = _model()
    x, y = torch.randn(64, 1, 128, 9), torch.randint(6, (64,))

    def run(layout, dtype=torch.float32, autocast=False, w=0.8, r=112):
        m.layout, m.gemm_dtype = layout, dtype
        m.train()
        m.zero_grad(set_to_none=True)
        m.set_width(w)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = m(resize(x, r))
        F.cross_entropy(out.float(), y).backward()
        return out.detach().float(), [p.grad.clone() for p in m.parameters()]

    def err(a, b):
        (oa, ga), (ob, gb) = a, b
        return ((oa - ob).abs().max() / ob.abs().max()).item(), max(((p - q).norm() / q.norm()).item() for p, q in zip(ga, gb))

    for w, r in [(0.8, 112), (1.0, 128), (0.3, 100)]:
        ref = run("cl", w=w, r=r)
        out_bf, grad_bf = err(run("fused", torch.bfloat16, w=w, r=r), ref)
        out_ac, grad_ac = err(run("nchw", autocast=True, w=w, r=r), ref)
        assert out_bf < 2e-2 and grad_bf < 0.3, (w, r, out_bf, grad_bf)
        assert out_bf < 3 * out_ac + 1e-3 and grad_bf < 2 * grad_ac, (w, r, out_bf, out_ac, grad_bf, grad_ac)


@pytest.mark.parametrize("length", [2, 3, 4, 5, 7, 10, 13])
def test_fused_pool_is_adaptive_max_pool(length):
    from slimhar.train.models.fused import _PoolRows
    h = torch.randn(12, length, 20)                       # continuous values: no ties
    g = torch.randn(12, 6, 20)
    a = h.clone().requires_grad_()
    (_PoolRows.apply(a, 6) * g).sum().backward()
    b = h.clone().requires_grad_()
    ref = F.adaptive_max_pool2d(b.transpose(1, 2).unsqueeze(-1), (6, 1)).squeeze(-1).transpose(1, 2)
    (ref * g).sum().backward()
    torch.testing.assert_close(_PoolRows.apply(h, 6), ref.detach(), rtol=0, atol=0)
    torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


def test_fused_kernels_reject_bad_shapes():
    ext = extension()
    g, b = torch.ones(8), torch.zeros(8)
    z = torch.randn(4, 6, 16)                            # m=2, o=8 -> L=5
    out = torch.empty(4, 9, 8)
    ext.forward(z, 5, 2, g, b, 1e-5, out, 1)              # fine
    with pytest.raises(RuntimeError, match="shape mismatch"):
        ext.forward(z, 4, 2, g, b, 1e-5, out, 1)          # L inconsistent with z
    with pytest.raises(RuntimeError, match="shape mismatch"):
        ext.forward(z, 5, 2, g, b, 1e-5, out, 9)          # row0 outside out
    with pytest.raises(RuntimeError, match="gamma / beta"):
        ext.forward(z, 5, 2, g.double(), b, 1e-5, out, 1)
    with pytest.raises(RuntimeError, match="float or bfloat16"):
        ext.forward(z.half(), 5, 2, g, b, 1e-5, out, 1)
    with pytest.raises(RuntimeError, match="first conv geometry"):
        ext.first_forward(torch.randn(4, 10), torch.randn(6, 8), 3, 1, 9, g, b, 1e-5, out, 1)   # L too long for T


def test_speed_settings():
    cfg = load_config("uci_cnn")
    cfg.update(layout="cl", precision="bf16")
    with pytest.raises(ConfigError, match="fused"):
        check(cfg)
    cfg.update(layout="fast")
    with pytest.raises(ConfigError, match="layout"):
        check(cfg)
    cnn = build_model("cnn", 128, 9, 6, [0.5, 1.0], [128])
    res = build_model("resnet", 128, 9, 6, [0.5, 1.0], [128])
    assert speed.configure(cnn, "auto", "bf16") == "fused" and cnn.gemm_dtype == torch.bfloat16
    assert speed.configure(res, "auto", "fp32") == "cl"
    assert speed.configure(cnn, "auto", "fp32", world=2) == "cl"      # multi-process: global-batch BN path
    with pytest.raises(speed.SpeedError):
        speed.configure(res, "fused", "fp32")
    # the fused path covers training only; evaluation runs the cl modules on the same weights
    cnn.eval()
    assert not cnn._fused_ok()


def test_bench_train_cli_reports_fused_bf16():
    r = subprocess.run([sys.executable, "-m", "slimhar", "bench", "train", "--config", "basicmotions_cnn", "--steps", "2",
                        "--warmup", "1", "--no-warm-shapes", "--precision", "bf16"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "layout fused, bf16" in r.stdout and "s/epoch" in r.stdout
