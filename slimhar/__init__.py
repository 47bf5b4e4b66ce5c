"""slimhar: one HAR network, every width x resolution, on a Cortex-M wearable."""
import os

# Training draws random widths and resolutions, so a run multiplies thousands of distinct
# GEMM shapes; oneDNN (bfloat16 GEMMs) JIT-compiles a kernel per shape and by default keeps
# only 1024. A larger cache makes every shape compile once per process (read at first use).
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384")

__version__ = "0.1.0"
