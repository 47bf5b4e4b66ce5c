"""Training configurations: YAML files mirroring the paper's apps/*.yml (configs as data).

A config names the dataset, the architecture, the width x resolution grid and the schedule.
``load_config`` accepts a path or the name of a bundled config (``train/configs/NAME.yaml``)
and returns a plain dict with every default filled in and checked.
"""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import yaml

DEFAULTS = {
    "dataset": {"name": None, "path": None, "val_frac": 0.15, "recipe": None},   # recipe: hapt-uci only
    "model": "cnn",
    "widths": None,                 # grid widths, e.g. 0.10 .. 1.0 step 0.05
    "width_range": None,            # range random widths are drawn from (default: min/max widths)
    "resolutions": None,            # grid T' values; first = window length
    "batch_size": 64,
    "epochs": 150,
    "optimizer": {"name": "adam", "lr": 1.0e-4, "weight_decay": 0.0},
    "lr_schedule": {"step_epochs": 50, "gamma": 0.1},
    "collab": {"random_widths": 6, "kd_weight": 0.5, "temperature": 1.0},
    "bn_calibration": {"windows": 1024},
    "validation": {"every": 1},
    "seed": 0,
    "layout": "auto",               # how the step computes (train/speed.py): auto | fused | cl | nchw | seq
    "precision": "fp32",            # fp32 | bf16 (bfloat16 GEMMs, fused layout only)
}


class ConfigError(ValueError):
    pass


def _merge(base: dict, over: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k not in base:
            raise ConfigError(f"unknown config key {where}{k!r}")
        if isinstance(base[k], dict) and base[k] and isinstance(v, dict):
            out[k] = _merge(base[k], v, f"{where}{k}.")
        else:
            out[k] = v
    return out


def bundled_configs() -> list[str]:
    d = resources.files("slimhar.train.configs")
    return sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".yaml"))


def load_config(path_or_name: str) -> dict:
    p = Path(path_or_name)
    if p.is_file():
        text, src = p.read_text(), str(p)
    else:
        res = resources.files("slimhar.train.configs") / f"{path_or_name}.yaml"
        if not res.is_file():
            raise ConfigError(f"no config file {path_or_name!r}; bundled: {', '.join(bundled_configs())}")
        text, src = res.read_text(), f"bundled:{path_or_name}"
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{src}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{src}: a config is a mapping")
    name = raw.pop("name", Path(src).stem)
    cfg = _merge(DEFAULTS, raw)
    cfg["name"] = name
    cfg["source"] = src
    return check(cfg)


def check(cfg: dict) -> dict:
    if not cfg["dataset"].get("name"):
        raise ConfigError("dataset.name is required")
    if not cfg["widths"] or not cfg["resolutions"]:
        raise ConfigError("widths and resolutions are required")
    cfg["widths"] = sorted(float(w) for w in cfg["widths"])
    cfg["resolutions"] = sorted((int(r) for r in cfg["resolutions"]), reverse=True)
    if cfg["width_range"] is None:
        cfg["width_range"] = [cfg["widths"][0], cfg["widths"][-1]]
    lo, hi = cfg["width_range"]
    if not 0 < lo <= hi <= 1:
        raise ConfigError(f"width_range {cfg['width_range']} must satisfy 0 < lo <= hi <= 1")
    for k in ("batch_size", "epochs"):
        if int(cfg[k]) < 1:
            raise ConfigError(f"{k} must be >= 1")
    if cfg["batch_size"] < 2:
        raise ConfigError("batch_size must be >= 2 (BatchNorm needs batch statistics)")
    if cfg["optimizer"]["name"] != "adam":
        raise ConfigError("optimizer.name: only adam (the paper's) is implemented")
    from .speed import SpeedError, check as check_speed
    try:
        check_speed(cfg["layout"], cfg["precision"])
    except SpeedError as e:
        raise ConfigError(str(e)) from None
    return cfg
