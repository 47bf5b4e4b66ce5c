"""(2) A real held-out recording streamed at the sensor rate: one result per hop, none lost or
duplicated, every window's int8 input equal to the host pipeline's (the blob's input spec run on
the host: quantize/input_spec.run_chain, then the same windowing) and its class equal to TFLM's
on that input. (7) The soak: 10,000 windows, 0 lost, 0 mismatches (slow)."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from slimhar.tools import device as dv


def _check_stream(device, blob, X, tflm, subnet=None, rate_hz=None):
    if subnet is not None:
        device.command(f"subnet set {subnet}")
    device.command("stream on")
    res = device.stream(X, samples_per_line=4 if rate_hz else 8, rate_hz=rate_hz)
    st = device.stats()
    bad = []
    by_subnet: dict[int, list] = {}
    for r in res:
        by_subnet.setdefault(int(r["subnet"]), []).append(r)
    M = dv.model_channels(blob, X)                       # the device's chain, mirrored: once
    refs = {k: dict(dv.reference_inputs(blob, k, X, channels=M)) for k in by_subnet}
    ends = list(range(blob.window, len(X) + 1, blob.spec.hop))
    assert [int(r["end"]) for r in res] == ends, "one result per hop, in order, none lost or duplicated"
    assert [int(r["seq"]) for r in res] == list(range(len(ends)))
    for r in res:
        k, end = int(r["subnet"]), int(r["end"])
        xq = refs[k][end]
        if int(r["in_crc"], 16) != zlib.crc32(xq.tobytes()):
            bad.append(f"window ending at {end}: int8 input differs from the host's")
            continue
        logits = tflm(k).run(xq[None, :, :, None])[0]
        if int(r["class"]) != int(np.argmax(logits)) or [int(v) for v in r["logits"].split(",")] != logits.tolist():
            bad.append(f"window ending at {end} ({r['name']}): logits differ from TFLM's")
    assert not bad, bad[:5]
    assert (int(st["windows"]), int(st["ran"]), int(st["drops"]), int(st["overruns"])) == (len(ends), len(ends), 0, 0)
    assert int(st["samples"]) == len(X)
    return res


def test_stream_at_the_sensor_rate_matches_the_host(device, board, recording, tflm, hil_report):
    blob = board.blob
    X = recording(blob, 0, 500, blob.window + 12 * blob.spec.hop)
    res = _check_stream(device, blob, X, tflm, rate_hz=blob.spec.sample_rate_hz)
    hil_report.add("stream", {"samples": len(X), "windows": len(res), "rate_hz": blob.spec.sample_rate_hz,
                              "lost": 0, "duplicated": 0, "mismatches": 0,
                              "subnets": sorted({r["name"] for r in res})})


@pytest.mark.slow
def test_soak_10000_windows(device, board, recording, tflm, hil_report):
    """Held-out recordings back to back (feed reset between them), the policy choosing, as fast
    as the link takes them: 10,000 windows, none lost, none different from the host pipeline."""
    blob = board.blob
    n_recs = dv.held_out_count()
    total, k = 0, 0
    while total < 10000:
        X = recording(blob, k % n_recs, 0, None)
        n = (len(X) - blob.window) // blob.spec.hop + 1
        need = min(n, 10000 - total)
        X = X[:blob.window + (need - 1) * blob.spec.hop]
        device.feed_reset()
        device.command("stats reset")
        total += len(_check_stream(device, blob, X, tflm))
        k += 1
    hil_report.add("soak", {"windows": total, "recordings": k, "lost": 0, "mismatches": 0})
