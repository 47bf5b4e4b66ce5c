"""Shared-weight int8 export on real data (BasicMotions), checked against TFLM -- the oracle."""
from __future__ import annotations

import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slimhar.quantize.blob import (CRC_OFFSET, FLAGS_FIELD, HEADER, LEAST_PLAN_FOLLOWS, PLAN_FIELD, SUBNET_ENTRY, Blob, BlobError,
                                   crc32_of)
from slimhar.quantize.export import quantize_checkpoint
from slimhar.quantize.graph import macs_check
from slimhar.quantize.oracle import LiteRT, Tflm, quantize_input
from slimhar.quantize.tflite_io import read_metadata, read_model
from slimhar.train import checkpoint as ckpt
from slimhar.train.config import load_config
from slimhar.train.models import resize
from slimhar.train.trainer import load_data, to_input, train


def _test_windows(ex, resolution, split="test"):
    ck = ex["ckpt"]
    data = load_data(ck["config"])
    s = data.splits()[split]
    x = resize(to_input(s.X, ck["dataset"]["norm_mean"], ck["dataset"]["norm_std"]), resolution)
    return x.permute(0, 2, 3, 1).contiguous().numpy(), s.y


def test_blob_table_holds_validation_accuracy(exported):
    """The accuracy the device's policy decides by is the validation split's, never the test
    split's: recomputed here with TFLM on the validation windows of each standalone subnet."""
    blob = Blob.open(exported["dir"] / "model.blob")
    assert blob.meta["table_split"] == "val" and exported["report"]["split"] == "test"
    for s in blob.subnets:
        x, y = _test_windows(exported, s.resolution, "val")
        t = Tflm((exported["dir"] / "subnets" / f"{s.name}.tflite").read_bytes())
        acc = (t.run(quantize_input(x, t.in_scale, t.in_zp)).argmax(1) == y).mean()
        assert abs(float(np.float32(acc)) - s.int8_acc) <= 1 / len(y) + 1e-6, s.name


def _all_tensors_tflm(tfl: bytes, x: np.ndarray) -> dict[int, np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime
    it = runtime.Interpreter.from_bytes(tfl, arena_size=4 << 20,
                                        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    it.set_input(x, 0)
    it.invoke()
    n = len(read_model(tfl).subgraphs[0].tensors)
    return {i: np.asarray(it.GetTensor(i, 0)["tensor_data"]) for i in range(n)}


def _all_tensors_litert(tfl: bytes, x: np.ndarray) -> dict[int, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_content=tfl, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return {d["index"]: it.get_tensor(d["index"]) for d in it.get_tensor_details()}


def test_every_subnet_tflm_equals_litert_reference_on_real_windows(exported):
    """TFLM (the oracle) and LiteRT's reference kernels on every test window of every subnet:
    every intermediate tensor bit-identical; the logits too, except that LiteRT's reference
    FULLY_CONNECTED may round 1 LSB apart (measured, DESIGN §4) -- counted, never more."""
    rows = exported["report"]["rows"]
    assert len(rows) == 9
    for r in rows:
        tfl = (exported["dir"] / "subnets" / f"{r['name']}.tflite").read_bytes()
        x, y = _test_windows(exported, r["resolution"])
        t = Tflm(tfl)
        xq = quantize_input(x, t.in_scale, t.in_zp)
        a = t.run(xq)                              # TFLM, one window per invoke (all 40)
        b = LiteRT(tfl, reference=True).run(xq)    # LiteRT reference kernels, batched
        assert a.dtype == np.int8 and a.shape == (len(y), 4)
        assert np.abs(a.astype(int) - b).max() <= 1, r["name"]
        # the accuracy the report states is what TFLM gives on these windows
        assert abs((a.argmax(1) == y).mean() - r["int8_acc"]) <= 1 / len(y) + 1e-9
        out_idx = read_model(tfl).subgraphs[0].outputs[0]
        for k in (0, len(xq) - 1):
            ta, tb = _all_tensors_tflm(tfl, xq[k:k + 1]), _all_tensors_litert(tfl, xq[k:k + 1])
            for i, v in ta.items():
                if i != out_idx:
                    np.testing.assert_array_equal(v.reshape(tb[i].shape), tb[i], err_msg=f"{r['name']} tensor {i}")


def test_int8_loses_almost_nothing(exported):
    rep = exported["report"]
    assert rep["int8_loss_pp"]["mean"] <= 2.5, rep["int8_loss_pp"]       # 1 window of 40 = 2.5 pp
    full = [r for r in rep["rows"] if r["width"] == 1.0 and r["resolution"] == 100][0]
    assert full["int8_acc"] >= 0.85


def test_quantize_is_deterministic(exported, tmp_path):
    """The same checkpoint and arguments give the same blob, byte for byte (the fixture's own
    export against a second one in a fresh folder)."""
    from slimhar.quantize.export import quantize_checkpoint
    quantize_checkpoint(exported["dir"].parent / "run" / "checkpoint.pt", tmp_path / "again", progress=False)
    assert (tmp_path / "again" / "model.blob").read_bytes() == (exported["dir"] / "model.blob").read_bytes()
    for f in sorted((exported["dir"] / "subnets").glob("*.tflite")):
        assert (tmp_path / "again" / "subnets" / f.name).read_bytes() == f.read_bytes(), f.name


def test_blob_unpacks_to_the_standalone_files(exported):
    b = Blob.open(exported["dir"] / "model.blob")
    assert len(b.subnets) == 9
    for s in b.subnets:
        assert b.unpack(s) == (exported["dir"] / "subnets" / f"{s.name}.tflite").read_bytes()
        meta = read_metadata(b.unpack(s))
        assert (meta["width"], meta["resolution"], meta["classes"]) == (s.width, s.resolution, 4)


def test_blob_form_of_the_flatbuffers(exported):
    """In the blob a per-channel weight quantization keeps ONE zero point and no scales (the
    multiplier table gives them back), a bias no quantization (its scales are input x weight
    scales, which TFLM's int8 kernels never read), no tensor has a name (the blob's metadata
    lists them once) and the `slimhar` metadata entry is gone (the subnet table has it): 16 bytes
    a channel and ~0.4 KB a subnet. unpack restores all of it exactly -- LiteRT refuses the
    blob's form -- and the result is the standalone file byte for byte (test above). A blob
    packed in the full form (before the compact one) repacks to the same bytes as one exported
    now."""
    from slimhar.quantize.blob import pack_blob, repack
    from slimhar.quantize.tflite_io import blob_form, pack, standalone_form
    b = Blob.open(exported["dir"] / "model.blob")
    per_channel = biases = 0
    names = None
    for s in b.subnets:
        compact, full = read_model(b.model_bytes(s)), read_model(b.unpack(s))
        assert compact.metadata is None and len(compact.buffers) == len(full.buffers) - 1
        assert read_metadata(b.unpack(s))["width"] == s.width
        assert not any(t.name for t in compact.subgraphs[0].tensors)
        names = names or [t.name.decode() for t in full.subgraphs[0].tensors]
        assert [t.name.decode() for t in full.subgraphs[0].tensors] == names == b.meta["tensor_names"]
        for tc, tf in zip(compact.subgraphs[0].tensors, full.subgraphs[0].tensors):
            if tf.quantization is not None and len(tf.quantization.scale) > 1:
                assert list(tf.quantization.zeroPoint) == [0] * len(tf.quantization.scale)
                if tf.type == 2:                        # int32: a bias
                    biases += 1
                    assert tc.quantization is None
                else:
                    per_channel += 1
                    assert list(tc.quantization.zeroPoint) == [0] and tc.quantization.scale is None
    assert per_channel >= 2 * len(b.subnets) and biases >= 2 * len(b.subnets)   # conv and fc, at least
    with pytest.raises((ValueError, RuntimeError), match="quantization"):
        LiteRT(b.model_bytes(b.subnets[0]), reference=True)
    # one model region: every model 16-byte aligned, starting with its root offset and "TFL3",
    # and the parts they share written once (what each adds is far less than it alone)
    assert all(s.model_offset % 16 == 0 and b.data[s.model_offset + 4:s.model_offset + 8] == b"TFL3" for s in b.subnets)
    alone = sum(len(pack(blob_form(b.model(s)))) for s in b.subnets)
    private = b.private_bytes()
    assert sum(p["model"] for p in private) < alone / 2
    # what each subnet adds, and everything before the model region, make up the whole file;
    # every stored plan and its padding is counted, and the plans lie back to back
    assert min(s.model_offset for s in b.subnets) + sum(p["total"] for p in private) == len(b.data)
    plans = sorted((s.plan_offset, s.plan_size + s.least_plan_size) for s in b.subnets if s.plan_offset)
    assert len(plans) == len(b.subnets) and all(o + n == o2 for (o, n), (o2, _) in zip(plans, plans[1:]))
    assert sum(p["plan"] for p in private) == len(b.data) - plans[0][0]
    models = [pack(standalone_form(b.model(s))) for s in b.subnets]   # the full form
    rows = [dict(width=s.width, resolution=s.resolution, classes=s.classes, channels=s.channels, macs=s.macs,
                 params=s.params, arena_bytes=s.arena_bytes, float_acc=s.float_acc, int8_acc=s.int8_acc,
                 model=mb, refs=[(t, b.pool[p].name, o, i) for t, p, o, i in s.refs])
            for s, mb in zip(b.subnets, models)]
    old = pack_blob({e.name: b.pool_array(k) for k, e in enumerate(b.pool)}, rows, b.spec, b.meta, b.window,
                    b.axes, b.classes, b.arch)
    assert len(old) > len(b.data)
    assert repack(Blob(old)) == repack(b)


def test_weight_scales_leave_only_where_the_table_gives_them_back(exported):
    """drop_weight_scales keeps a tensor's scales when one multiplier does not lead back to its
    scale exactly; restoring needs the whole table; a blob whose table is cut short is refused."""
    from slimhar.quantize.tflite_io import weighted_ops, drop_weight_scales, restore_weight_scales
    b = Blob.open(exported["dir"] / "model.blob")
    s = b.subnets[-1]
    mult, shift = b.multipliers(s)
    kept = lambda m: [w.quantization.scale is not None and len(w.quantization.scale) > 0 for _x, w, _y, _n in weighted_ops(m)]
    assert not any(kept(drop_weight_scales(b.model(s), mult, shift)))
    off = mult.copy()
    off[1] += 1 << 12                                  # channel 1 of the first conv: another scale
    assert kept(drop_weight_scales(b.model(s), off, shift)) == [True] + [False] * (len(kept(b.model(s))) - 1)
    with pytest.raises(ValueError, match="multiplier table"):
        restore_weight_scales(read_model(b.model_bytes(s)), mult[:-1], shift[:-1])
    data = bytearray(b.data)
    table_off = HEADER.unpack_from(data, 0)[6]
    struct.pack_into("<I", data, table_off + 64 * (len(b.subnets) - 1) + 56, s.mult_count - 1)
    cut = Blob(_recrc(data))
    with pytest.raises(BlobError, match="cannot restore its weight scales"):
        cut.unpack(cut.subnets[-1])


def _weights(tfl: bytes) -> dict[str, np.ndarray]:
    m = read_model(tfl)
    out = {}
    for t in m.subgraphs[0].tensors:
        name = t.name.decode()
        if name.endswith(".w"):
            out[name] = np.frombuffer(bytes(m.buffers[t.buffer].data), np.int8).reshape([int(v) for v in t.shape])
    return out


def test_subnet_weights_are_slices_of_one_pool(exported):
    b = Blob.open(exported["dir"] / "model.blob")
    pool = {e.name: b.pool_array(k) for k, e in enumerate(b.pool)}
    wide = _weights((exported["dir"] / "subnets" / "w100_t100.tflite").read_bytes())
    for s in b.subnets:
        ws = _weights((exported["dir"] / "subnets" / f"{s.name}.tflite").read_bytes())
        assert len(ws) == len(s.refs) > 0
        for t, p, o, i in s.refs:
            name = b.model(s).subgraphs[0].tensors[t].name.decode()
            got = ws[name]
            sl = pool[b.pool[p].name][:o, ..., :i]
            np.testing.assert_array_equal(got.reshape(sl.shape), sl)
            # and the same bytes as the widest subnet's tensor, sliced
            np.testing.assert_array_equal(got.reshape(sl.shape), wide[name].reshape(pool[b.pool[p].name].shape)[:o, ..., :i])


def test_lowered_graph_macs_match_the_model(exported):
    from slimhar.quantize.graph import lower_subnet
    from slimhar.quantize.shared import build_pool
    ck = exported["ckpt"]
    model = ckpt.build_model(ck)
    pool = build_pool(ck["model"], ck["spec"])
    keys = ["input", "logits"] + [f"b{b}.{k}" for b in range(3) for k in ("mid", "main", "short", "out")]
    ranges = {k: (-1.0, 1.0) for k in keys}
    for w, r in [(0.1, 70), (1.0, 100), (0.35, 80)]:
        g = lower_subnet(ck["model"], ck["spec"], pool, w, r, ranges, model.subnet_index(w, r))
        assert macs_check(g) == model.cost(w, r)["macs"]


# -- bad blobs ----------------------------------------------------------------------------------
def _recrc(buf: bytearray) -> bytes:
    struct.pack_into("<I", buf, CRC_OFFSET, crc32_of(buf))
    return bytes(buf)


@pytest.fixture(scope="module")
def blob_bytes(tmp_path_factory):
    cfg = load_config("basicmotions_cnn")
    cfg.update(epochs=1, widths=[0.1, 1.0], resolutions=[100, 60])
    d = tmp_path_factory.mktemp("blob")
    res = train(cfg, d / "run", progress=False, log=lambda *_: None)
    quantize_checkpoint(res["checkpoint"], d / "q", progress=False, verify=1)
    return (d / "q" / "model.blob").read_bytes()


def test_bad_blobs_give_clear_errors(blob_bytes):
    good = blob_bytes
    Blob(good)
    cases = []
    cases.append((good[:len(good) // 2], "size mismatch"))
    cases.append((good[:40], "truncated"))
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40
    cases.append((bytes(flipped), "CRC mismatch"))
    b = bytearray(good)
    b[0:8] = b"NOTABLOB"
    cases.append((_recrc(b), "not a slimhar blob"))
    b = bytearray(good)
    struct.pack_into("<H", b, 8, 9)
    cases.append((_recrc(b), "blob version 9"))
    b = bytearray(good)
    struct.pack_into("<I", b, 24, len(good) + 4096)          # subnet table offset past the end
    cases.append((_recrc(b), "outside the file"))
    h = HEADER.unpack_from(good, 0)
    b = bytearray(good)
    struct.pack_into("<I", b, h[8] + 16 + 12, 60000)          # pool tensor 0: absurd dim
    cases.append((_recrc(b), "pool tensor 0"))
    b = bytearray(good)
    struct.pack_into("<H", b, 56, 0)                          # window 0
    cases.append((_recrc(b), "absurd model shape"))
    entry = h[6] + PLAN_FIELD                                 # subnet 0's stored plan
    b = bytearray(good)
    struct.pack_into("<I", b, entry, len(good) - 2)           # its size field past the end
    cases.append((_recrc(b), "stored plan at .* outside the file"))
    b = bytearray(good)
    struct.pack_into("<I", b, entry, len(good) - 16)          # its size runs past the end
    cases.append((_recrc(b), "stored plan"))
    b = bytearray(good)
    struct.pack_into("<H", b, struct.unpack_from("<I", good, entry)[0] + 2, 20)
    cases.append((_recrc(b), "stored plan of 20 bytes"))
    flags = h[6] + FLAGS_FIELD                                # subnet 0's entry flags
    b = bytearray(good)
    struct.pack_into("<H", b, flags, 2)
    cases.append((_recrc(b), "entry flags 0x2"))
    last = h[6] + SUBNET_ENTRY.size * (h[5] - 1)              # the last subnet: its plan ends the file
    b = bytearray(good)
    struct.pack_into("<H", b, last + FLAGS_FIELD, LEAST_PLAN_FOLLOWS)
    cases.append((_recrc(b), "least-RAM plan at .* outside the file"))
    b = bytearray(good)
    struct.pack_into("<H", b, last + FLAGS_FIELD, LEAST_PLAN_FOLLOWS)
    struct.pack_into("<I", b, last + PLAN_FIELD, 0)
    cases.append((_recrc(b), "only with a stored plan"))
    for data, msg in cases:
        with pytest.raises(BlobError, match=msg):
            Blob(data, "x.blob")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzz_reader_never_crashes(blob_bytes, data):
    """Random byte edits, with and without a fixed-up CRC (so the parser is driven past the
    checksum into every structural check): a BlobError or a valid parse, nothing else."""
    buf = bytearray(blob_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        buf = bytearray(buf[:data.draw(st.integers(0, len(buf)))])
    if len(buf) >= HEADER.size and data.draw(st.booleans()):
        buf = bytearray(_recrc(buf))
    try:
        b = Blob(bytes(buf))
    except BlobError:
        return
    for s in b.subnets:
        try:
            b.unpack(s)
        except BlobError:
            pass
    try:
        b.info()                       # what `slimhar blob info` prints, private bytes included
    except BlobError:
        pass


def test_blob_cli(blob_bytes, tmp_path):
    p = tmp_path / "m.blob"
    p.write_bytes(blob_bytes)
    run = lambda *a: subprocess.run([sys.executable, "-m", "slimhar", *map(str, a)], capture_output=True, text=True)
    r = run("blob", "info", p)
    assert r.returncode == 0 and "w100_t100" in r.stdout and "pool" in r.stdout
    # which subnets carry a least-RAM plan: those whose fastest arena + scratch passes the blob's least-RAM arena
    from slimhar.quantize.arena import memory_plan
    from slimhar.quantize.plan import least_ram_limit
    b = Blob(blob_bytes)
    fastest = {s.name: memory_plan(b, s) for s in b.subnets}
    over = [n for n, m in fastest.items() if m.arena_bytes + m.scratch_bytes > least_ram_limit(b)]
    assert over and f"stored engine plans: {len(b.subnets)} of {len(b.subnets)} subnets" in r.stdout
    assert f"where its tiles differ: {', '.join(over)}" in r.stdout, r.stdout
    r = run("blob", "verify", p)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr
    r = run("blob", "unpack", p, "--subnet", "w010_t60", "-o", tmp_path / "s.tflite")
    assert r.returncode == 0 and Tflm((tmp_path / "s.tflite").read_bytes()) is not None
    r = run("blob", "unpack", p, "--subnet", "w999_t1", "-o", tmp_path / "s.tflite")
    assert r.returncode == 1 and "no subnet 'w999_t1'" in r.stderr
    (tmp_path / "bad.blob").write_bytes(blob_bytes[:-16])
    r = run("blob", "verify", tmp_path / "bad.blob")
    assert r.returncode == 1 and "size mismatch" in r.stderr and "Traceback" not in r.stderr


def test_export_c_compiles_to_the_same_bytes(blob_bytes, tmp_path):
    from slimhar.quantize.c_export import export_c
    h, c = export_c(blob_bytes, tmp_path / "gen", "slimhar_blob")
    main = tmp_path / "main.c"
    main.write_text('#include <stdio.h>\n#include "slimhar_blob.h"\n'
                    "int main(void) { if (((uintptr_t)slimhar_blob & 15u) != 0) return 2;\n"
                    "  fwrite(slimhar_blob, 1, SLIMHAR_BLOB_SIZE, stdout); return 0; }\n")
    exe = tmp_path / "dump"
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-I", str(tmp_path / "gen"), str(main), c, "-o", str(exe)],
                   check=True)
    out = subprocess.run([str(exe)], capture_output=True, check=True).stdout
    assert out == blob_bytes
    with pytest.raises(BlobError, match="CRC mismatch"):
        export_c(blob_bytes[:100] + bytes([blob_bytes[100] ^ 1]) + blob_bytes[101:], tmp_path / "bad")


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_nncf_ranges_cover_every_activation(arch):
    """NNCF's post-training quantization places one activation quantizer per tensor we
    quantize (the logits excepted); every one maps to our tensor keys, with a valid range."""
    from slimhar.quantize.calibrate import activation_ranges, nncf_ranges
    from slimhar.quantize.graph import range_keys
    from slimhar.train.bn_calib import calibrate
    from slimhar.train.models import build_model
    from slimhar.train.models.reference import dense_subnet
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    m = build_model(arch, 100, 6, 4, [0.5, 1.0], [100, 80])
    X = torch.randn(64, 1, 100, 6)
    calibrate(m, X, m.spec.subnets, 16)
    d = dense_subnet(m, 0.5, 80).eval()
    xr = resize(X, 80)
    nn_ranges = nncf_ranges(d, xr, 16)
    assert set(nn_ranges) == set(range_keys(arch, 3)) - {"logits"}
    for k, (lo, hi) in nn_ranges.items():
        assert lo <= 0 <= hi and hi > lo, k
    allr = activation_ranges(d, xr, "nncf")
    assert set(allr) == set(range_keys(arch, 3))


def test_qat_finetune_keeps_the_pool_shared_and_exports(tmp_path):
    """--qat-epochs: the fine-tuned supernet still exports one shared pool, TFLM-runnable,
    and the quantizer in the loop is exactly the pool's rounding."""
    import torch
    from slimhar.train.models.slim_ops import fake_quant_shared
    from slimhar.quantize.shared import build_pool
    cfg = load_config("basicmotions_cnn")
    cfg.update(epochs=6, widths=[0.25, 1.0], resolutions=[100, 70])
    res = train(cfg, tmp_path / "run", progress=False, log=lambda *_: None)
    rep = quantize_checkpoint(res["checkpoint"], tmp_path / "q", progress=False, qat_epochs=2, verify=4)
    assert rep["qat_epochs"] == 2 and len(rep["rows"]) == 4
    qck = ckpt.load(tmp_path / "q" / "qat_checkpoint.pt")
    assert not torch.equal(qck["model"]["fc.weight"], ckpt.load(res["checkpoint"])["model"]["fc.weight"])
    b = Blob.open(tmp_path / "q" / "model.blob")
    for s in b.subnets:
        assert Tflm(b.unpack(s)).run(np.zeros((1, s.resolution, 6, 1), np.int8)).shape == (1, 4)
    # the training-time weight quantizer reproduces the pool's int8 values exactly
    pool = build_pool(qck["model"], qck["spec"])
    w = qck["model"]["blocks.1.conv1.weight"]
    g = qck["model"]["blocks.1.bn1.weight"]
    sign = torch.where(g < 0, -1.0, 1.0)
    wq = fake_quant_shared(w, sign) * sign.view(-1, 1, 1)
    q = torch.round(wq / torch.from_numpy(pool["blocks.1.conv1"].delta).float().view(-1, 1, 1))
    np.testing.assert_array_equal(q.numpy().astype(np.int8), pool["blocks.1.conv1"].q[:, :, 0, :].transpose(0, 2, 1))
    assert rep["int8_loss_pp"]["mean"] <= 5.0


def test_mse_range_clips_outliers_and_keeps_zero():
    from slimhar.quantize.calibrate import mse_range
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.normal(size=200_000), [60.0, -45.0]])   # two outliers
    lo, hi = mse_range(a)
    assert lo < 0 < hi
    assert hi < 60 and lo > -45            # the outliers are clipped ...
    assert hi > 3 and lo < -3              # ... the bulk is not
    relu = np.abs(rng.normal(size=10_000))
    lo, hi = mse_range(relu)
    assert lo == 0.0 and 0 < hi <= relu.max()
