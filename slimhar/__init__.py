"""slimhar: one HAR network, every width x resolution, on a Cortex-M wearable."""
# Importing slimhar changes nothing in the host process: the process-wide settings the fused
# training layout wants (oneDNN's kernel cache, glibc's trim threshold, the caching CPU
# allocator) are made by slimhar.train.speed.configure when that layout is chosen.

# The Python API is slimhar.api (train, quantize, pack, load_blob): `from slimhar import api`.
# (Not re-exported here: slimhar.train and slimhar.quantize are the packages of those stages.)

__version__ = "0.1.0"

