"""slimhar: one HAR network, every width x resolution, on a Cortex-M wearable."""
__version__ = "0.1.0"
