"""Which subnets a device gets (quantize/select.py, `slimhar blob select`, `quantize --subnets`):
the Pareto front against a brute-force definition, the analytic blob size against packing it,
the flash-budget fit, and that a selected blob carries exactly the source's models."""
from __future__ import annotations

import random
import subprocess
import sys

import pytest

from slimhar.quantize import select as sel
from slimhar.quantize.blob import Blob, BlobError, repack


@pytest.fixture(scope="module")
def blob(exported):
    return Blob.open(exported["dir"] / "model.blob")


def test_pareto_is_the_undominated_set(blob):
    cost, how = sel.costs(blob)
    assert how.startswith("estimated")
    acc = {i: s.int8_acc for i, s in enumerate(blob.subnets)}
    brute = [i for i in range(len(blob.subnets))
             if not any((cost[j] <= cost[i] and acc[j] >= acc[i]) and (cost[j] < cost[i] or acc[j] > acc[i])
                        for j in range(len(blob.subnets)))]
    front = sel.pareto(blob, cost)
    # equal (cost, accuracy) twins: the front keeps one of them
    assert set(front) <= set(brute) and {(cost[i], acc[i]) for i in front} == {(cost[i], acc[i]) for i in brute}


def test_blob_bytes_equals_the_packed_size(blob):
    rng = random.Random(3)
    for _ in range(12):
        ch = sorted(rng.sample(range(len(blob.subnets)), rng.randint(1, len(blob.subnets))))
        assert sel.blob_bytes(blob, ch) == len(repack(blob, ch, trim=True)), ch


def test_blob_bytes_when_the_chosen_share_other_names(blob):
    """pack_blob writes once the tensor-name list most of the subnets it packs share: for a choice
    whose majority has other names than the source blob's, the estimate follows the choice."""
    from slimhar.quantize.tflite_io import pack, read_model
    src = Blob(repack(blob))
    orig = src.packed_model

    def renamed(s):                 # subnets 0 and 1 with names of their own, as another export might
        m = read_model(orig(s))
        if src.subnets.index(s) < 2:
            for t in m.subgraphs[0].tensors:
                t.name = bytes(t.name) + b"_b"
        return pack(m)

    src.packed_model = renamed
    two = Blob(repack(src))
    assert len(blob.subnets) > 4 and two.tensor_names == blob.tensor_names
    for ch in ([0], [0, 1], [0, 1, 4], [1, 4], list(range(len(blob.subnets)))):
        assert sel.blob_bytes(two, ch) == len(repack(two, ch, trim=True)), ch


def test_flash_budget_fit(blob):
    cost, _ = sel.costs(blob)
    full = sel.blob_bytes(blob, list(range(len(blob.subnets))))
    cheapest = min(range(len(blob.subnets)), key=lambda i: cost[i])
    for budget in (full // 2 + 1000, full // 4 + 1000):
        chosen = sel.fit(blob, list(range(len(blob.subnets))), cost, budget, firmware_bytes=1000)
        assert cheapest in chosen and sel.blob_bytes(blob, chosen) + 1000 <= budget
    # a budget the whole set fits keeps it whole
    assert sel.fit(blob, list(range(len(blob.subnets))), cost, full + 1000, firmware_bytes=1000) == \
        list(range(len(blob.subnets)))
    with pytest.raises(BlobError, match="exceed the flash budget"):
        sel.fit(blob, list(range(len(blob.subnets))), cost, 1000, firmware_bytes=1000)


def test_selected_blob_has_the_source_models(blob, tmp_path):
    data, info = sel.select(blob, "pareto")
    small = Blob(data)
    names = [r["name"] for r in info["subnets"]]
    assert [s.name for s in small.subnets] == names and all(r["pareto"] for r in info["subnets"])
    for s in small.subnets:
        assert small.unpack(s) == blob.unpack(blob.find(s.name))     # same standalone .tflite, byte for byte
    out = tmp_path / "sel.blob"
    r = subprocess.run([sys.executable, "-m", "slimhar", "blob", "select", str(blob.source), "--subnets",
                        f"{names[0]},{blob.subnets[-1].name}", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert [s.name for s in Blob.open(out).subnets] == sorted({names[0], blob.subnets[-1].name},
                                                              key=lambda n: [s.name for s in blob.subnets].index(n))
    r = subprocess.run([sys.executable, "-m", "slimhar", "blob", "select", str(blob.source), "--subnets", "w999_t1",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 1 and "no subnet 'w999_t1'" in r.stderr and r.stderr.count("\n") == 1
