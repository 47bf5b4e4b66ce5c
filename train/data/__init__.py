"""Dataset registry: every loader returns a validated :class:`HarData`.

Names: ``basicmotions`` and ``hapt-uci`` (real data that ships in registry packages, work
offline), ``uci-har``, ``wisdm``, ``unimib`` (official files; need a path), ``npz`` (slimhar's
generic format; needs a path).
"""
from __future__ import annotations

from . import basicmotions, hapt, npz, uci_har, unimib, wisdm
from .base import DatasetError, HarData, Split

_BUILTIN = {"basicmotions": basicmotions.load, "hapt-uci": hapt.load}
_ON_DISK = {"uci-har": uci_har.load, "wisdm": wisdm.load, "unimib": unimib.load, "npz": npz.load}
NAMES = sorted(_BUILTIN) + sorted(_ON_DISK)


def load_dataset(name: str, path=None, seed: int = 0, **opts) -> HarData:
    if name in _BUILTIN:
        return _BUILTIN[name](seed=seed, **opts)
    if name in _ON_DISK:
        if not path:
            raise DatasetError(f"dataset {name!r} is read from its official files: give --data-dir "
                               f"(or `path:` in the config, or SLIMHAR_DATA_DIR)")
        return _ON_DISK[name](path, seed=seed, **opts)
    raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(NAMES)}")


def device_spec(cfg_dataset: dict, facts: dict):
    """The input spec (quantize/input_spec.py) a device needs to feed a model trained on this
    dataset: hapt-uci's causal recipe runs its filter chain on the device from raw acc + gyro;
    its zero-phase recipe cannot run on a stream (the spec says the stream carries preprocessed
    channels); every other dataset's channels are the sensor's, fed as they are."""
    from ...quantize.input_spec import identity_spec
    if facts.get("name") == "hapt-uci":
        return hapt.device_spec(cfg_dataset.get("recipe") or "zero-phase", facts)
    return identity_spec(facts, units=_UNITS.get(facts.get("name")))


_UNITS = {"basicmotions": None}   # UEA's BasicMotions files do not state units; the spec leaves them empty

__all__ = ["DatasetError", "HarData", "Split", "NAMES", "load_dataset", "device_spec"]
