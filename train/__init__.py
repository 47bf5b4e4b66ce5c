"""Training: data loaders, slimmable models, collaborative learning, BN calibration, evaluation."""
