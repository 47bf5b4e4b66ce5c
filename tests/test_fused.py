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


def _model(window=128, axes=9, seed=0, arch="cnn"):
    torch.manual_seed(seed)
    m = build_model(arch, window, axes, 6, [0.1, 0.5, 1.0], [window, window - 16, window - 28])
    for p in m.parameters():          # BN affine away from (1, 0): exercises scale and shift
        if p.dim() == 1:
            p.data.uniform_(-0.5, 1.5)
    return m


def _close(actual, expected, **kw):
    """Equal to float rounding: relative 1e-3 per element, or 2e-6 of the tensor's largest value
    (gradients reach ~100 here; an element near zero carries the rounding of the large ones)."""
    atol = max(1e-5, 2e-6 * expected.abs().max().item())
    torch.testing.assert_close(actual, expected, rtol=1e-3, atol=atol, **kw)


def _grads(m):
    return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}


def _dense_params(blk):
    """The (conv, BatchNorm) attribute names of a block: conv1/bn1, and for the ResNet also
    conv2/bn2 and the shortcut."""
    return [("conv1", "bn1")] + ([("conv2", "bn2"), ("short", "bn_short")] if blk.residual else [])


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
@pytest.mark.parametrize("window,axes,cases", [
    (128, 9, [(1.0, 128), (0.37, 112), (0.1, 100), (0.8, 124)]),   # UCI-HAR shapes (incl. cropped rows)
    (100, 6, [(1.0, 100), (0.55, 88)]),                             # BasicMotions shapes
])
def test_fused_fp32_outputs_and_gradients_equal_dense_reference(arch, window, axes, cases):
    m = _model(window, axes, arch=arch)
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
            for conv, bn in _dense_params(blk):
                g = getattr(blk, conv).weight.grad
                dconv, dbn = getattr(dblk, conv), getattr(dblk, bn)
                ci = dconv.weight.shape[1]
                _close(g[:ch, :ci], dconv.weight.grad.squeeze(-1), msg=f"{conv} {w} {r}")
                assert g[ch:].abs().sum() == 0 and g[:, ci:].abs().sum() == 0     # untouched outside the slice
                _close(getattr(blk, bn).weight.grad[:ch], dbn.weight.grad)
                _close(getattr(blk, bn).bias.grad[:ch], dbn.bias.grad)
        feats = d.fc.weight.shape[1]
        _close(m.fc.weight.grad[:, :feats], d.fc.weight.grad)
        _close(m.fc.bias.grad, d.fc.bias.grad)


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_fused_collab_step_accumulates_like_cl(arch):
    """A whole 9-pass collaborative step (gradients accumulated over passes of different widths
    and resolutions into the parameter slices) gives the cl layout's gradients.

    Over a step, a few pre-ReLU values land within float rounding of zero, and the two layouts
    (different summation orders) may put one on the other side: a discrete change downstream.
    So: every gradient within 1e-2 of the cl one in relative norm, all of them together within
    1e-3 (this seed flips one in the ResNet's step: 5e-3 for its worst gradient; without a
    flip the layouts agree to ~3e-6)."""
    torch.manual_seed(7)
    x, y = torch.randn(16, 1, 128, 9), torch.randint(6, (16,))
    draws = [(1.0, 124), (0.1, 100), (0.42, 128), (0.77, 116), (0.25, 104), (0.9, 108), (0.6, 100), (0.15, 120)]
    grads = {}
    for layout in ("cl", "fused"):
        m = _model(arch=arch)
        speed.configure(m, layout, "fp32")
        opt = torch.optim.SGD(m.parameters(), lr=0.0)
        collab_step(m, opt, x, y, 1.0, draws)
        grads[layout] = _grads(m)
    assert grads["cl"].keys() == grads["fused"].keys()

    def rel(a, b):
        return ((a - b).norm() / b.norm()).item()
    for k in grads["cl"]:
        assert rel(grads["fused"][k], grads["cl"][k]) < 1e-2, k
    flat = {lay: torch.cat([g.flatten() for g in grads[lay].values()]) for lay in grads}
    assert rel(flat["fused"], flat["cl"]) < 1e-3


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_fused_bf16_error_is_that_of_torch_autocast(arch):
    """bfloat16 GEMMs change the rounding, not the maths: outputs and gradients stay as close to
    float32 as torch's own mixed precision (autocast, bfloat16) gets."""
    m = _model(arch=arch)
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
    # the ResNet block end: conv2 products without pad rows (shift 1), the shortcut in ycat
    z2, ycat = torch.randn(4, 5, 24), torch.randn(4, 5, 16)
    out2 = torch.empty(4, 5, 8)
    ext.residual_forward(z2, 5, 3, 1, g, b, 1e-5, ycat, 8, g, g, g, b, out2, 0)     # fine
    with pytest.raises(RuntimeError, match="shape mismatch"):
        ext.residual_forward(z2, 5, 3, 0, g, b, 1e-5, ycat, 8, g, g, g, b, out2, 0)   # rows need pad rows
    with pytest.raises(RuntimeError, match="ycat"):
        ext.residual_forward(z2, 5, 3, 1, g, b, 1e-5, ycat, 9, g, g, g, b, out2, 0)   # shortcut past ycat
    with pytest.raises(RuntimeError, match="ycat"):
        ext.residual_forward(z2, 5, 3, 1, g, b, 1e-5, ycat.bfloat16(), 8, g, g, g, b, out2, 0)
    y2, gz2, gzc = torch.randn(4, 5, 8), torch.empty(4, 5, 24), torch.empty(4, 6, 32)
    ext.residual_backward(y2, g, g, g, b, ycat, 8, g, g, g, b, out2, 0, gz2, 3, 1, gzc, 2)    # fine
    with pytest.raises(RuntimeError, match="gz shape mismatch"):
        ext.residual_backward(y2, g, g, g, b, ycat, 8, g, g, g, b, out2, 0, gz2, 3, 1, gzc[:, :5], 2)
    with pytest.raises(RuntimeError, match="mean / rstd"):
        ext.residual_backward(y2, g[:4], g, g, b, ycat, 8, g, g, g, b, out2, 0, gz2, 3, 1, gzc, 2)


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
    assert speed.configure(res, "auto", "bf16") == "fused" and res.gemm_dtype == torch.bfloat16
    assert speed.configure(cnn, "auto", "fp32", world=2) == "cl"      # multi-process: global-batch BN path
    assert speed.configure(res, "auto", "fp32", device="cuda") == "cl"
    with pytest.raises(speed.SpeedError, match="CPU"):
        speed.configure(res, "fused", "fp32", device="cuda")
    # the fused path covers training only; evaluation runs the cl modules on the same weights
    cnn.eval()
    assert not cnn._fused_ok()


_CACHE_SCRIPT = r"""
import os, torch
from slimhar.train import speed
from slimhar.train.models import build_model
from slimhar.train.models.fused import extension
ext = extension()
assert ext.cpu_cache_stats() == [0, 0, 0, 0, 0]                    # nothing installed yet
m = build_model("cnn", 128, 9, 6, [0.5, 1.0], [128])
speed.configure(m, "fused", "fp32")
installed = ext.cpu_cache_stats()[1]
if os.environ.get("SLIMHAR_CPU_CACHE_MB") == "0":
    assert installed == 0
    raise SystemExit(0)
assert installed == speed.CPU_CACHE_MB << 20
assert not ext.install_cpu_cache(8 << 20)                           # installed once; now a cap of 8 MiB
x = torch.arange(300_000, dtype=torch.float32)                      # 1.2 MB: a cached size class
p, hits = x.data_ptr(), ext.cpu_cache_stats()[2]
del x
y = torch.zeros(300_000)                                             # same class: the same block back
assert y.data_ptr() == p and ext.cpu_cache_stats()[2] == hits + 1
assert torch.equal(y, torch.zeros(300_000))                          # and zeros() still zeroes it
y.copy_(torch.arange(300_000, dtype=torch.float32))
assert y[-1].item() == 299_999.0
blocks = [torch.empty(1 << 20, dtype=torch.uint8) for _ in range(20)] # 20 MiB live, then freed
del blocks
cached, cap = ext.cpu_cache_stats()[:2]
assert 0 < cached <= cap == 8 << 20, (cached, cap)                  # kept up to the cap, the rest freed
small = [torch.ones(100) for _ in range(50)]                         # small blocks: the old allocator's
raw = torch.UntypedStorage(1000)                                     # a bare storage
del small, raw
ext.cpu_cache_trim()
assert ext.cpu_cache_stats()[0] == 0
print("ok")
"""


@pytest.mark.parametrize("env", [None, "0"])
def test_cpu_cache_reuses_blocks_within_its_cap(env):
    """The caching CPU allocator the fused layout installs (train/csrc/cpu_cache.cpp), in a
    fresh process: a freed block comes back for the next request of its size class, contents
    are what torch writes, at most the cap stays cached, small and raw allocations still work,
    and SLIMHAR_CPU_CACHE_MB=0 leaves torch's allocator alone."""
    import os
    env_vars = dict(os.environ)
    env_vars.pop("SLIMHAR_CPU_CACHE_MB", None)
    if env is not None:
        env_vars["SLIMHAR_CPU_CACHE_MB"] = env
    r = subprocess.run([sys.executable, "-c", _CACHE_SCRIPT], capture_output=True, text=True, env=env_vars)
    assert r.returncode == 0, r.stderr[-3000:]
    assert env == "0" or r.stdout.strip().endswith("ok")


def test_bench_train_cli_reports_fused_bf16():
    r = subprocess.run([sys.executable, "-m", "slimhar", "bench", "train", "--config", "basicmotions_cnn", "--steps", "2",
                        "--warmup", "1", "--no-warm-shapes", "--precision", "bf16"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "layout fused, bf16" in r.stdout and "s/epoch" in r.stdout


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_fused_bn_calibration_matches_cl(arch):
    """BN calibration through the fused kernels (their batch mean / variance merged per batch)
    stores the statistics the cl modules do, in float32 GEMMs even for a bf16-trained model."""
    from slimhar.train.bn_calib import calibrate
    m = _model(arch=arch)
    X = torch.randn(40, 1, 128, 9) * 2 + 0.5
    stats = {}
    for layout in ("cl", "fused"):
        speed.configure(m, layout, "bf16" if layout == "fused" else "fp32")
        calibrate(m, X, m.spec.subnets, 16)
        stats[layout] = {k: v.clone() for k, v in m.state_dict().items() if "stat_" in k}
    m.eval()
    assert m._fused_ok() is False                        # eval with calibrated statistics: cl path
    for k in stats["cl"]:
        if k.endswith("stat_var"):
            torch.testing.assert_close(stats["fused"][k], stats["cl"][k], rtol=2e-5, atol=1e-7, msg=k)
        else:   # a mean near zero: compare on the scale of its channel's spread
            std = stats["cl"][k.replace("stat_mean", "stat_var")].sqrt()
            assert ((stats["fused"][k] - stats["cl"][k]).abs() <= 1e-5 * std + 1e-7).all(), k


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_cost_probe_wgrad_shapes_are_the_trained_ones(arch):
    """The weight-gradient GEMMs `slimhar bench train-costs` times are the ones a fused pass
    runs (recorded from the pass itself)."""
    from slimhar.benchmarks.train_costs import wgrad_shapes
    m = _model(arch=arch)
    speed.configure(m, "fused", "fp32")
    m.set_width(0.5)
    x = torch.randn(2, 1, 128, 9)
    with torch.profiler.profile(record_shapes=True) as prof:
        m(x).sum().backward()
    ran = {(a[0], a[1], b[1]) for e in prof.events() if e.name == "aten::mm"
           for a, b in [e.input_shapes[:2]]}
    expected = wgrad_shapes(m, 2, 0.5)
    assert expected and set(expected) <= ran


def test_bench_train_costs_cli():
    r = subprocess.run([sys.executable, "-m", "slimhar", "bench", "train-costs", "--config", "basicmotions_cnn"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "fixed cost" in r.stdout and "width 1.00" in r.stdout and "X^T stored contiguously" in r.stdout
    r = subprocess.run([sys.executable, "-m", "slimhar", "bench", "train-costs", "--config", "unimib_cnn"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "no known shapes" in r.stderr


def test_a_kernel_build_killed_midway_does_not_block_the_next_run():
    """torch's build lock is a plain file: a build that was killed leaves it behind and every
    later load would wait on it forever. With slimhar's flock held nobody is building, so the
    next run removes it and loads (here: the already built kernels, in a fresh process)."""
    import subprocess
    import sys
    from slimhar.train.models import fused
    fused.extension()                             # built (or loaded) here first
    _, where = fused.build_dir()
    (where / "lock").write_text("")               # what a killed build leaves
    code = "from slimhar.train.models import fused; fused.extension(); print('loaded')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "loaded" in r.stdout, r.stderr[-2000:]
    assert "left by a kernel build that was stopped" in r.stderr and not (where / "lock").exists()
