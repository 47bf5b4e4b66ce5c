"""Small seed inputs for the fuzz targets (`make fuzz`): a fuzzer's speed is set by the size of
what it mutates, and the firmware blob is ~470 KB, almost all of it full-width pool weights.

``python -m slimhar.tools.fuzz_seeds BLOB OUT_DIR`` writes
  - ``small.blob``: the blob's two narrowest subnets with each pool tensor cut down to the
    out / in channels those subnets use (a valid blob the C++ reader and Prepare accept; the
    weights are the real ones, only their strides shrink), and
  - ``<subnet>.tflite``: those subnets unpacked as standalone models (for PrepareModel).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from slimhar.quantize.blob import Blob, repack


def small_blob(blob: Blob, n: int = 2) -> tuple[bytes, list]:
    chosen = sorted(range(len(blob.subnets)), key=lambda i: (blob.subnets[i].macs, blob.subnets[i].name))[:n]
    return repack(blob, chosen, trim=True), [blob.subnets[i] for i in chosen]


def chain_spec(blob: Blob):
    """A valid spec of blob's geometry whose chain runs every op: median of every raw channel,
    a 4th-order low-pass (2 sections) on them, and the first half minus the filtered second."""
    from scipy.signal import butter, sosfilt_zi

    from slimhar.quantize.input_spec import Stage, chain_spec as make
    C = blob.axes
    sos = butter(4, 0.2, output="sos")
    rows = np.concatenate([sos, sosfilt_zi(sos)], 1)
    h = max(1, C // 2)
    stages = [Stage("median", C, 0, C, arg0=3), Stage("sos", C, C, 2 * C, arg0=0, arg1=len(sos)),
              Stage("sub", h, C, 3 * C, src2=2 * C + C - h)]
    facts = {"sample_rate_hz": blob.spec.sample_rate_hz, "window": blob.window, "channel_names": [n for n, _ in blob.spec.channels],
             "class_names": blob.spec.class_names, "norm_mean": blob.norm_mean, "norm_std": blob.norm_std}
    out_map = [3 * C + c if c < h else 2 * C + c for c in range(C)]
    return make(facts, blob.spec.hop, blob.spec.raw, stages, rows, out_map, [u for _, u in blob.spec.channels])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m slimhar.tools.fuzz_seeds BLOB OUT_DIR", file=sys.stderr)
        return 2
    blob = Blob.open(argv[0])
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    data, chosen = small_blob(blob)
    (out / "small.blob").write_bytes(data)
    chained = repack(Blob(data), spec=chain_spec(blob))
    (out / "chain.blob").write_bytes(chained)
    small = Blob(data)
    for s in small.subnets:
        (out / f"{s.name}.tflite").write_bytes(small.unpack(s))
    print(f"fuzz seeds in {out}: small.blob ({len(data):,} bytes, {', '.join(s.name for s in chosen)}) "
          f"and their standalone .tflite")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
