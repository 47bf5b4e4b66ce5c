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


__all__ = ["DatasetError", "HarData", "Split", "NAMES", "load_dataset"]
