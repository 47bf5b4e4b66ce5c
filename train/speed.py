"""How a training run computes: the layout and GEMM precision of the collaborative step.

Config keys (configs as data; ``slimhar train`` / ``slimhar bench train`` override them):

* ``layout``: ``auto`` (default) = ``fused`` on the CPU in one process (CNN and ResNet),
  ``cl`` otherwise; or ``fused`` / ``cl`` / ``nchw`` / ``seq`` explicitly. All compute the same
  maths to float rounding (tests/test_models.py, tests/test_fused.py); they differ in speed.
* ``precision``: ``fp32`` (default) or ``bf16`` -- bfloat16 GEMM operands with float32
  accumulation in the fused layout (mixed precision; BatchNorm, master weights, optimizer and
  loss stay float32). docs/results.md reports its speed and the accuracy it trains to.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import warnings

import torch

LAYOUTS = ("auto", "fused", "cl", "nchw", "seq")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


class SpeedError(ValueError):
    pass


def check(layout: str, precision: str) -> None:
    if layout not in LAYOUTS:
        raise SpeedError(f"layout {layout!r}: one of {', '.join(LAYOUTS)}")
    if precision not in PRECISIONS:
        raise SpeedError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and layout not in ("auto", "fused"):
        raise SpeedError("precision bf16 needs the fused layout (layout: auto or fused)")


def configure(model, layout: str = "auto", precision: str = "fp32", device: torch.device | None = None,
              world: int = 1) -> str:
    """Set `model`'s layout and GEMM dtype; returns the layout used. ``auto`` falls back to
    ``cl`` (with a warning) where the fused kernels cannot be built."""
    check(layout, precision)
    cpu = device is None or torch.device(device).type == "cpu"
    chosen = layout
    if layout == "auto":
        chosen = "fused" if cpu and world == 1 else "cl"
    if chosen == "fused":
        if not cpu:
            raise SpeedError("the fused layout runs on the CPU (use cl on CUDA)")
        try:
            from .models.fused import extension
            extension()
        except RuntimeError as e:
            if layout != "auto":
                raise
            warnings.warn(f"{e} -- training with layout cl", stacklevel=2)
            chosen = "cl"
    if precision == "bf16" and chosen != "fused":
        raise SpeedError(f"precision bf16 needs the fused layout, but {layout!r} resolved to {chosen!r} here")
    model.layout = chosen
    model.gemm_dtype = PRECISIONS[precision]
    if chosen == "fused":
        # Training draws random widths and resolutions, so a run multiplies thousands of distinct
        # GEMM shapes; oneDNN (bfloat16 GEMMs) JIT-compiles a kernel per shape and by default keeps
        # only 1024. A larger cache makes every shape compile once per process. oneDNN reads it at
        # its first use, so it is set here, before the first training GEMM, and only if unset.
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384")
        keep_freed_memory()
        cache_cpu_allocations()
    return chosen


CPU_CACHE_MB = 1024


@functools.lru_cache(maxsize=1)
def cache_cpu_allocations() -> bool:
    """Install the fused extension's caching CPU allocator (train/csrc/cpu_cache.cpp) for
    blocks of 64 KiB and more, keeping at most SLIMHAR_CPU_CACHE_MB (default 1024) MiB of
    freed blocks for reuse; SLIMHAR_CPU_CACHE_MB=0 leaves torch's allocator alone. A step
    frees and re-allocates the same buffers nine passes over at sizes that change with every
    drawn width; glibc's best-fit search over its fragmented bins cost a ResNet step ~5 %
    (docs/results.md). Process-wide, like keep_freed_memory; the only visible change is that
    memory profilers see the cached blocks as in use."""
    value = os.environ.get("SLIMHAR_CPU_CACHE_MB", str(CPU_CACHE_MB))
    try:
        mb = int(value)
    except ValueError:
        raise SpeedError(f"SLIMHAR_CPU_CACHE_MB={value!r}: a whole number of MiB (0 = off)") from None
    if mb <= 0:
        return False
    from .models import fused
    fused.extension().install_cpu_cache(mb << 20)
    return True


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks up to 32 MiB in the heap instead of returning them to
    the OS: a training step frees and re-allocates the same activation buffers hundreds of
    times, and fresh pages fault in zeroed (~3 % of a fused CNN step on these machines).
    Process-wide and harmless elsewhere; a no-op off glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
