"""(1) Every subnet of the board's blob on real test windows sent with MLPerf Tiny's `db` /
`infer`: the device's int8 logits equal the TFLM interpreter's on the standalone subnet, bit for
bit. (5) What a switch between subnets costs on the core, warm (plan cached) and cold (a proven
stored plan decoded, for every subnet)."""
from __future__ import annotations

import os

from slimhar.tools import device as dv


def _db(device, data: bytes) -> None:
    assert device.command(f"db load {len(data)}%") == [f"m-[Expecting {len(data)} bytes]"]
    out = []
    for i in range(0, len(data), 31):                   # 31 bytes a line, as the runner sends
        out += device.command(f"db {data[i:i + 31].hex()}%")
    assert out == ["m-load-done"]


def test_every_subnet_equals_tflm_bit_for_bit(device, board, recording, tflm, hil_report):
    blob = board.blob
    X = recording(blob, 0, 500, blob.window + 3 * blob.spec.hop)
    rows = []
    for i, s in enumerate(blob.subnets):
        device.command(f"subnet set {i}")
        for end, xq in dv.reference_inputs(blob, i, X)[::2]:   # real held-out windows, host-quantized
            _db(device, xq.tobytes())
            out = device.command("infer 1 0%")
            got = next(r for r in out if r.startswith("m-results-int8-["))
            logits = [int(v) for v in got[len("m-results-int8-["):-1].split(",")]
            ref = tflm(i).run(xq[None, :, :, None])[0].tolist()
            assert logits == ref, f"{s.name}, window ending at sample {end}: device {logits} vs TFLM {ref}"
            laps = [int(r.split("-")[-1]) for r in out if r.startswith("m-lap-us-")]
            rows.append({"subnet": s.name, "end": end, "latency_us": laps[1] - laps[0]})
    device.command("subnet auto")
    hil_report.add("tflm_equality", {"windows": len(rows), "subnets": len(blob.subnets), "mismatches": 0})


def _window(device, X, i):
    """Feed one hop of samples; returns (next index, the result of the window it completed)."""
    res = []
    while not res:
        res = device.feed(X[i:i + 8])
        i += 8
    assert len(res) == 1
    return i, res[0]


def test_switch_cost_warm_and_cold(device, board, recording, hil_report):
    """Cycling through every subnet with more subnets than plan slots makes every switch cold
    (a prepare: cold=1, its cost in prepare_us); going back and forth between two cached plans
    makes them warm (a lookup: cold=0). A warm switch costs a small fraction of a cold one."""
    blob = board.blob
    X = recording(blob, 1, 500, None)
    device.command("stream on")
    i, _ = _window(device, X, 0)                   # the first window: the policy's subnet
    cold, warm = [], []
    order = list(range(len(blob.subnets))) * 2
    for k in order:                                     # 2 rounds through all subnets
        device.command(f"subnet set {k}")
        i, r = _window(device, X, i)
        assert int(r["subnet"]) == k
        (cold if r["cold"] == "1" else warm).append(r)
    a, b = 0, len(blob.subnets) - 1
    pingpong = []
    for k in [a, b] * 4:
        device.command(f"subnet set {k}")
        i, r = _window(device, X, i)
        pingpong.append(r)
    clock = device.info()["device"]["clock"]
    key = f"plan_{clock}"
    assert all(r["cold"] == "0" for r in pingpong[1:]), "two subnets back and forth must stay cached"
    assert cold, "the first use of every subnet is a prepare"
    assert all(int(r["prepare_us"]) > 0 or int(r[key]) > 0 for r in cold)
    assert all(int(r["prepare_us"]) == 0 for r in pingpong[1:])
    w = sorted(int(r[key]) for r in pingpong[1:])
    c = sorted(int(r[key]) for r in cold)
    assert w[-1] < c[0], f"a warm switch ({w[-1]} {clock}) must cost less than the cheapest cold one ({c[0]})"
    # a cold switch decodes the subnet's stored plan, proven at start-up against the plan this
    # board's engine computes: a build that computes other plans than the exporter made would
    # prepare from the flatbuffer, ~10x slower. A build with other flags on purpose (another
    # SLIMHAR_DSP_SCRATCH_BUDGET or SLIMHAR_RAM_LIMIT in $PLATFORMIO_BUILD_FLAGS) is reported only.
    plans = {r["name"]: r.get("plan") for r in device.info()["subnets"]}
    model = sorted(n for n, p in plans.items() if p != "stored")
    if not os.environ.get("PLATFORMIO_BUILD_FLAGS"):
        assert not model, f"cold switches prepare from the flatbuffer on this build (no stored plan matches): {model}"
    hil_report.add("switch_cost", {"clock": clock, "warm_max": w[-1], "warm_median": w[len(w) // 2],
                                   "cold_min": c[0], "cold_median": c[len(c) // 2], "cold_max": c[-1],
                                   "cold_switches": len(cold), "warm_switches": len(pingpong) - 1,
                                   "cold_from_flatbuffer": model})
