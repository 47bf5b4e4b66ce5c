"""The slimmable network against the plain torch modules of the paper's 2-D formulation."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from slimhar.train.bn_calib import calibrate
from slimhar.train.models import build_model, make_divisible, resize
from slimhar.train.models.reference import dense_subnet

UCI_W = [round(0.10 + 0.05 * i, 2) for i in range(19)]
UCI_R = list(range(128, 95, -4))


def test_make_divisible_matches_paper_rule():
    # new = max(1, int(v + 2) // 4 * 4); +4 if that is below 0.9 v
    assert [make_divisible(64 * w) for w in (0.1, 0.15, 0.25, 0.5, 1.0)] == [8, 12, 16, 32, 64]   # 9.6 -> 8 is >10 % down -> 12
    assert make_divisible(256 * 0.35) == 88 and make_divisible(128 * 0.1) == 12
    assert make_divisible(0.3) == 1
    for v in [x / 7 for x in range(1, 2000)]:
        n = make_divisible(v)
        assert n >= 1 and n >= 0.9 * v


@pytest.mark.parametrize("t", [128, 200, 151, 100])
def test_resize_is_torch_nearest_exact(t):
    x = torch.randn(3, 1, t, 2)
    for r in range(40, t + 1):
        assert torch.equal(resize(x, r), F.interpolate(x, size=(r, 2), mode="nearest-exact")), r


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
@pytest.mark.parametrize("layout", ["cl", "nchw", "seq"])
def test_eval_outputs_equal_dense_reference(arch, layout):
    torch.manual_seed(0)
    W, R = [0.1, 0.35, 0.5, 0.85, 1.0], [128, 112, 96]
    m = build_model(arch, 128, 9, 6, W, R)
    m.layout = layout
    X = torch.randn(96, 1, 128, 9)
    calibrate(m, X, m.spec.subnets, 32)
    for w in W:
        for r in R:
            m.eval()
            m.set_subnet(w, r)
            xr = resize(X[:8], r)
            ref = dense_subnet(m, w, r).eval()(xr)
            torch.testing.assert_close(m(xr), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
@pytest.mark.parametrize("layout", ["cl", "nchw", "seq"])
def test_train_mode_outputs_and_gradients_equal_dense_reference(arch, layout):
    torch.manual_seed(1)
    m = build_model(arch, 200, 3, 6, [0.1, 1.0], [200, 150])
    m.layout = layout
    m.train()
    x = torch.randn(16, 1, 160, 3)
    for w in (1.0, 0.37, 0.1):            # any width in training, not only grid points
        m.zero_grad()
        m.set_width(w)
        out = m(x)
        out.square().sum().backward()
        d = dense_subnet(m, w).train()
        ref = d(x)
        ref.square().sum().backward()
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
        # gradients of the sliced parameters equal the dense module's, the rest is zero
        o1 = m.block_channels(w)[0]
        g_dense = d.blocks[0].conv1.weight.grad.squeeze(-1)
        torch.testing.assert_close(m.blocks[0].conv1.weight.grad[:o1], g_dense, rtol=1e-3, atol=1e-4)
        assert m.blocks[0].conv1.weight.grad[o1:].abs().sum() == 0
        feats = d.fc.weight.shape[1]
        torch.testing.assert_close(m.fc.weight.grad[:, :feats], d.fc.weight.grad, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_macs_and_params_are_exact(arch):
    m = build_model(arch, 128, 9, 6, UCI_W, UCI_R)
    for w in (0.1, 0.25, 0.55, 1.0):
        for r in (128, 100, 96):
            d = dense_subnet(m, w)
            with FlopCounterMode(display=False) as fc:
                d.eval()(torch.zeros(1, 1, r, 9))
            cost = m.cost(w, r)
            assert fc.get_total_flops() == 2 * cost["macs"], (w, r)
            n_params = sum(p.numel() for p in d.parameters())
            assert n_params == cost["params"], (w, r)


def test_uci_cnn_full_width_size_matches_design():
    m = build_model("cnn", 128, 9, 6, UCI_W, UCI_R)
    assert m.cost(1.0, 128)["params"] == sum(p.numel() for p in m.parameters()) == 329_990
    assert m.block_channels(1.0) == [64, 128, 256]
    assert m.feature_len(128) == 4 and m.feature_len(96) == 3   # the pool then upsamples to 6 rows


def test_bad_grid_and_input_are_refused():
    with pytest.raises(ValueError, match="too short"):
        build_model("cnn", 128, 9, 6, [1.0], [128, 30])
    with pytest.raises(KeyError, match="unknown model"):
        build_model("vgg", 128, 9, 6, [1.0], [128])
    m = build_model("cnn", 128, 9, 6, [0.5, 1.0], [128])
    with pytest.raises(ValueError, match=r"expected input \[N, 1, T, 9\]"):
        m(torch.zeros(2, 1, 128, 3))
    with pytest.raises(KeyError, match="not a subnet of the grid"):
        m.set_subnet(0.7, 128)


def test_bn_calibration_statistics_are_exact():
    """The first BN's input does not depend on any BN: its calibrated statistics must equal the
    mean and unbiased variance of conv1's output over the whole calibration set, however it
    was batched."""
    torch.manual_seed(3)
    m = build_model("cnn", 128, 9, 6, [0.5, 1.0], [128, 100])
    X = torch.randn(70, 1, 128, 9)
    calibrate(m, X, m.spec.subnets, 32)           # batches of 32, 32, 6
    for w in (0.5, 1.0):
        for r in (128, 100):
            i = m.subnet_index(w, r)
            d = dense_subnet(m, w)
            h = d.blocks[0].conv1(resize(X, r)).double()
            o = h.shape[1]
            torch.testing.assert_close(m.blocks[0].bn1.stat_mean[i, :o].double(), h.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(m.blocks[0].bn1.stat_var[i, :o].double(), h.var((0, 2, 3)), rtol=1e-4, atol=1e-6)
