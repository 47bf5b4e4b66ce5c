"""Quantization: the shared int8 weight pool, per-subnet int8 TFLite flatbuffers, the blob."""
