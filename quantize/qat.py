"""``--qat-epochs N``: a short quantization-aware fine-tune of the whole supernet.

The collaborative step of training runs again (same passes, same seeded draws, lr = the
config's x ``lr_scale``) with the shared int8 weight quantizer in the loop (the exact
per-channel full-width rounding the pool stores, sign(gamma) folded, straight-through
gradients) and int8 fake quantization of every activation the exported graph quantizes.
NNCF cannot express this: its weight quantizers belong to one model, and here one int8 tensor
serves every width. Afterwards every grid subnet's BN statistics are calibrated again with the
quantizers in place, and the export proceeds from the fine-tuned weights.
"""
from __future__ import annotations

import torch

from slimhar.train import checkpoint as ckpt
from slimhar.train.bn_calib import calibrate
from slimhar.train.inputs import calib_set, to_input
from slimhar.train.trainer import run_epoch


def qat_finetune(ck: dict, data, epochs: int, lr_scale: float = 0.1, progress: bool = False):
    cfg = ck["config"]
    torch.manual_seed(cfg["seed"])
    model = ckpt.build_model(ck)
    mean, std = ck["dataset"]["norm_mean"], ck["dataset"]["norm_std"]
    Xtr, ytr = to_input(data.train.X, mean, std), torch.from_numpy(data.train.y)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg["optimizer"]["lr"]) * lr_scale)
    model.set_qat(True)
    for e in range(epochs):
        run_epoch(model, opt, Xtr, ytr, cfg, int(cfg["epochs"]) + e, progress=progress,
                  desc=f"QAT epoch {e + 1}/{epochs}")
    calibrate(model, calib_set(cfg, Xtr), model.spec.subnets, int(cfg["batch_size"]))
    model.set_qat(False)
    model.eval()
    return model
