"""Developer benchmarks behind ``slimhar bench``: they print numbers and never assert them.

- ``train_speed``: seconds per collaborative step / epoch for a config (``bench train``);
- ``train_costs``: where a fused step's time goes (``bench train-costs``);
- ``paper_code``: the paper's own training code and slimhar timed alternately in one run
  (``bench paper-code``);
- ``engine``: the firmware engine in QEMU, instructions / RAM / flash per subnet (``bench engine``).

``bench runtime`` (the paper's runtime experiments on a device) lives with the device tools in
``slimhar.tools.runtime``, since the HIL suite runs the same experiments as tests.
"""
