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

from slimhar.quantize.blob import Blob, repack


def small_blob(blob: Blob, n: int = 2) -> tuple[bytes, list]:
    chosen = sorted(range(len(blob.subnets)), key=lambda i: (blob.subnets[i].macs, blob.subnets[i].name))[:n]
    return repack(blob, chosen, trim=True), [blob.subnets[i] for i in chosen]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m slimhar.tools.fuzz_seeds BLOB OUT_DIR", file=sys.stderr)
        return 2
    blob = Blob.open(argv[0])
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    data, chosen = small_blob(blob)
    (out / "small.blob").write_bytes(data)
    small = Blob(data)
    for s in small.subnets:
        (out / f"{s.name}.tflite").write_bytes(small.unpack(s))
    print(f"fuzz seeds in {out}: small.blob ({len(data):,} bytes, {', '.join(s.name for s in chosen)}) "
          f"and their standalone .tflite")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
