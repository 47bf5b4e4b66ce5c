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

from slimhar.quantize.blob import Blob, pack_blob


def small_blob(blob: Blob, n: int = 2) -> tuple[bytes, list]:
    chosen = sorted(blob.subnets, key=lambda s: (s.macs, s.name))[:n]
    used = {}
    for s in chosen:
        for _t, p, o, i in s.refs:
            uo, ui = used.get(p, (0, 0))
            used[p] = (max(uo, o), max(ui, i))
    keep = sorted(used)
    pool = {blob.pool[p].name: np.ascontiguousarray(blob.pool_array(p)[:used[p][0], ..., :used[p][1]]) for p in keep}
    names = [blob.pool[p].name for p in keep]
    subnets = [dict(width=s.width, resolution=s.resolution, classes=s.classes, channels=s.channels, macs=s.macs,
                    params=s.params, arena_bytes=s.arena_bytes, float_acc=s.float_acc, int8_acc=s.int8_acc,
                    model=blob.model_bytes(s), refs=[(t, names[keep.index(p)], o, i) for t, p, o, i in s.refs])
               for s in chosen]
    data = pack_blob(pool, subnets, blob.norm_mean, blob.norm_std, blob.meta, blob.window, blob.axes, blob.classes,
                     blob.arch)
    return data, chosen


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
