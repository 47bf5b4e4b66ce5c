"""Optional features and the extra that installs each.

The core install (torch, numpy, scipy, the TFLM / LiteRT interpreters, flatbuffers, click, tqdm,
PyYAML) trains, quantizes, packs and checks blobs. Everything else is an extra; a command that
needs one says which, in one line, instead of failing on an import deep inside.
"""
from __future__ import annotations

import importlib

# module -> (extra, what it is for)
EXTRAS = {
    "matplotlib": ("plots", "plots"),
    "tensorflow": ("baseline", "the TF-converter int8 baseline (--baseline)"),
    "nncf": ("nncf", "NNCF activation ranges (--ranges nncf)"),
    "serial": ("device", "talking to a board over a serial port"),
}


class MissingExtra(ImportError):
    """Raised with the one line a user needs: which extra to install."""


def require(module: str):
    """Import ``module`` or raise MissingExtra naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra, purpose = EXTRAS[module]
        raise MissingExtra(f"{purpose} needs the optional dependency {module!r}: "
                           f"pip install 'slimhar[{extra}]'") from None


def available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend, or MissingExtra."""
    mpl = require("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt
    return plt
