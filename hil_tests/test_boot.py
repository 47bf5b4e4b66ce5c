"""Boot, `info` and MLPerf Tiny's host-DUT command sequence: the board says it is ready, tells
the host the blob it runs (identity, input spec, every subnet with its latency measured on this
core) and serves MLPerf Tiny's benchmark runner."""
from __future__ import annotations

from slimhar.tools import device as dv


def test_boot_and_info_is_the_blob(device, board):
    blob = board.blob
    assert board.boot and board.boot[0].startswith("slimhar: firmware")
    info = device.info()
    b = info["blob"]
    assert int(b["subnets"]) == len(blob.subnets) and int(b["crc"], 16) == int.from_bytes(blob.data[16:20], "little")
    assert (int(b["window"]), int(b["axes"]), int(b["hop"])) == (blob.window, blob.axes, blob.spec.hop)
    assert int(b["rate_mhz"]) == round(blob.spec.sample_rate_hz * 1000)
    assert info["input"]["raw"].split(",") == [f"{n}:{u or '-'}" for n, u in blob.spec.raw]
    assert info["input"]["channels"].split(",") == [n for n, _ in blob.spec.channels]
    assert info["classes"]["names"].split(",") == blob.spec.class_names
    # samples reach the chain through the replay sensor's FIFO (the Imu interface) when the
    # model's raw channels are IMU axes; a board with its own IMU reads it until `feed` is used
    imu_axes = all(n in ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z") for n, _ in blob.spec.raw)
    assert info["input"]["replay"] == ("fifo" if imu_axes else "direct")
    if device.emulated:
        assert info["input"]["sensor"] == "none" and info["input"]["source"] == "replay"
        out = device.command("battery auto", check=False)
        assert out == ["e-[battery auto: this board has no battery ADC: battery set PCT]"], out
    for row, s in zip(info["subnets"], blob.subnets):
        assert row["name"] == s.name and int(row["macs"]) == s.macs
        assert int(row["acc_bp"]) == round(s.int8_acc * 10000)        # the blob's validation accuracy
        assert int(row["latency_us"]) > 0
    assert sum(int(r["front"]) for r in info["subnets"]) >= 1


def test_mlperf_tiny_sequence(device, board, recording, tflm):
    """name, db load N, db HEX (31 bytes a line, as the runner sends), infer N W, results: the
    runner's replies, a latency from the two m-lap-us stamps, and the logits of TFLM."""
    blob = board.blob
    sub = len(blob.subnets) // 2
    assert device.command("name%") == ["m-name-dut-[slimhar]"]
    device.command(f"subnet set {sub}")
    _, xq = dv.reference_inputs(blob, sub, recording(blob, 0, 500, blob.window))[0]
    data = xq.tobytes()
    assert device.command(f"db load {len(data)}%") == [f"m-[Expecting {len(data)} bytes]"]
    replies = []
    for i in range(0, len(data), 31):
        replies += device.command(f"db {data[i:i + 31].hex()}%")
    assert replies == ["m-load-done"]
    out = device.command("infer 5 2%")
    assert out[:3] == ["m-warmup-start-2", "m-warmup-done", "m-infer-start-5"] and "m-infer-done" in out
    laps = [int(r.split("-")[-1]) for r in out if r.startswith("m-lap-us-")]
    assert len(laps) == 2 and laps[1] > laps[0]
    int8 = next(r for r in out if r.startswith("m-results-int8-["))
    assert [int(v) for v in int8[len("m-results-int8-["):-1].split(",")] == tflm(sub).run(xq[None, :, :, None])[0].tolist()
    assert device.command("results%")[1] == int8
    d = device.info()["device"]
    per_run = int(next(r for r in out if r.startswith(f"m-infer-{d['clock']}-per-run-")).split("-")[-1])
    assert (laps[1] - laps[0]) * int(d["per_us"]) >= 5 * per_run * 0.99     # the stamps bracket the 5 timed runs
