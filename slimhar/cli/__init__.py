"""The ``slimhar`` command line, one module per command group; each command is a thin layer
over the Python API (slimhar.api) or the module it names, and turns input errors into one line.

- train.py: ``train``, ``eval``, ``data``
- quantize.py: ``quantize``, ``blob``
- device.py: ``device``, ``policy``
- bench.py: ``bench`` (slimhar.benchmarks, and the runtime experiments of slimhar.tools.runtime)
"""
from .common import UserError, main, user_errors  # noqa: F401
from . import bench, device, quantize, train  # noqa: E402,F401  (each registers its commands on main)

if __name__ == "__main__":
    main()
