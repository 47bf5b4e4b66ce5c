"""The checkpoint file (``.pt``): the hand-off from training to every later stage.

Spec in docs/checkpoint.md. It is a ``torch.save`` dict holding the config, the network spec,
the dataset facts a deployment needs (class names, channel order, sample rate, per-channel
input normalization), the supernet weights with every grid subnet's calibrated BN statistics,
and the optimizer / schedule state that ``--resume`` needs. No wall-clock values are stored,
so the same config and seed give the same bytes.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

FORMAT = "slimhar-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    pass


def canonical(obj):
    """Rebuild containers and intern every string. pickle memoizes by object identity, so two
    equal dicts built differently (fresh vs loaded on --resume) would otherwise serialize to
    different bytes; after this they are the same object graph."""
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, dict):
        new = type(obj)((canonical(k), canonical(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):          # a module state_dict's version info
            new._metadata = canonical(obj._metadata)
        return new
    if isinstance(obj, (list, tuple)):
        return type(obj)(canonical(v) for v in obj)
    return obj


def save_atomic(obj: dict, path: Path) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: a kill at any moment
    leaves either the old checkpoint or the new one, never a torn file."""
    path = Path(path)
    obj = canonical(obj)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def load(path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # torch raises many kinds for damaged zip/pickle data
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a slimhar checkpoint")
    if ck.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ck.get('version')} (this slimhar reads {VERSION})")
    for k in ("config", "spec", "dataset", "model", "epoch"):
        if k not in ck:
            raise CheckpointError(f"{path}: checkpoint lacks {k!r}")
    ck["path"] = str(path)
    return ck


def build_model(ck: dict):
    """The HarNet of a loaded checkpoint, weights and BN statistics in place."""
    from .models import HarNet, NetSpec
    try:
        model = HarNet(NetSpec.from_dict(ck["spec"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{ck.get('path', 'checkpoint')}: its model spec does not describe a slimhar "
                              f"model ({type(e).__name__}: {e})") from None
    want = model.state_dict()
    got = ck["model"]
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    shapes = [k for k in want if k in got and tuple(got[k].shape) != tuple(want[k].shape)]
    if missing or extra or shapes:
        first = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra else
                 f"{shapes[0]} is {list(got[shapes[0]].shape)}, the spec gives {list(want[shapes[0]].shape)}")
        raise CheckpointError(f"{ck.get('path', 'checkpoint')}: its weights do not fit the {ck['spec'].get('arch')} "
                              f"model its spec describes ({len(missing)} missing, {len(extra)} unexpected, "
                              f"{len(shapes)} of another shape; {first})")
    model.load_state_dict(got)
    model.eval()
    return model
