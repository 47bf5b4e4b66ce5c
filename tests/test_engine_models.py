"""The C++ engine on hand-made one-op TFLite models: what it must refuse (a geometry whose DSP
scratch would not fit 32 bits, input counts, options, quantization it cannot run as TFLM does)
and what it must run exactly as TFLM does (a CONV_2D without a bias). Each model goes through
engine_check on the host (portable kernels, ASan + UBSan) and in QEMU with both kernel
flavours; the statuses are Prepare's own."""
from __future__ import annotations

import shutil
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from slimhar.quantize.oracle import Tflm
from slimhar.tools import engine_check as ec

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (REPO / ".pio-venv" / "bin" / "pio").exists() or shutil.which("qemu-system-arm") is None,
                                reason="needs `make setup` (PlatformIO, QEMU)")
KINDS = ("host", "dsp", "portable")
OK, BAD_MODEL, UNSUPPORTED, BAD_TENSOR, TOO_LARGE = 0, 2, 3, 4, 6   # engine.h EngineStatus


@pytest.fixture(scope="module")
def programs():
    return {kind: ec.build(kind) for kind in KINDS}


def _tensor(shape, dtype, scale=None, zp=None, buffer=0, qdim=0):
    t = fb.TensorT()
    t.shape, t.type, t.buffer = list(shape), dtype, buffer
    if scale is not None:
        q = fb.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = list(scale), list(zp), qdim
        t.quantization = q
    return t


def _model(buffers: list, tensors: list, op, builtin: int, version: int, inputs: list[int], outputs: list[int]) -> bytes:
    """A one-op, one-subgraph TFLite model (buffer 0 the empty sentinel) packed to bytes."""
    m = fb.ModelT()
    m.version = 3
    m.buffers = [fb.BufferT()]
    for data in buffers:
        b = fb.BufferT()
        if data is not None:
            b.data = np.frombuffer(data, np.uint8)
        m.buffers.append(b)
    sg = fb.SubGraphT()
    sg.tensors, sg.operators, sg.inputs, sg.outputs = tensors, [op], inputs, outputs
    op.opcodeIndex = 0
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = version
    m.operatorCodes = [code]
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def conv_model(x_shape, w: np.ndarray, bias: np.ndarray | None, *, stride=1, padding=fb.Padding.SAME,
               act=fb.ActivationFunctionType.RELU, bias_slot=True, w_qdim=0, x_scales=1, options_type=None,
               extra_inputs=0) -> bytes:
    """One CONV_2D: input x_shape [1, H, W, C] int8, weights w [O, kh, 1, C] int8 (per-channel
    scales), optional int32 bias. bias=None with bias_slot=True writes input index -1 (TFLite's
    optional input); bias_slot=False leaves the input list at 2."""
    O, kh, H = w.shape[0], w.shape[1], x_shape[1]
    ho = -(-H // stride) if padding == fb.Padding.SAME else (H - kh) // stride + 1
    w_scale = [0.01 + 0.001 * o for o in range(O)]
    tensors = [
        _tensor(x_shape, fb.TensorType.INT8, [0.05] * x_scales, [3] * x_scales),
        _tensor(w.shape, fb.TensorType.INT8, w_scale, [0] * O, buffer=1, qdim=w_qdim),
        _tensor([O], fb.TensorType.INT32, [0.05 * s for s in w_scale], [0] * O, buffer=2),
        _tensor([1, ho, x_shape[2], O], fb.TensorType.INT8, [0.1], [-5]),
    ]
    op = fb.OperatorT()
    op.inputs = [0, 1] + ([2 if bias is not None else -1] if bias_slot else []) + [0] * extra_inputs
    op.outputs = [3]
    o = fb.Conv2DOptionsT()
    o.padding, o.strideH, o.strideW = padding, stride, 1
    o.dilationHFactor = o.dilationWFactor = 1
    o.fusedActivationFunction = act
    op.builtinOptionsType = fb.BuiltinOptions.Conv2DOptions if options_type is None else options_type
    op.builtinOptions = o
    bias_bytes = None if bias is None else np.ascontiguousarray(bias, "<i4").tobytes()
    return _model([np.ascontiguousarray(w, np.int8).tobytes(), bias_bytes], tensors, op, fb.BuiltinOperator.CONV_2D, 3,
                  [0], [3])


def pad_model(constant_values: bool) -> bytes:
    """One PAD of [1, 8, 3, 4] by one row each side; with a third input (constant values) when asked."""
    tensors = [_tensor([1, 8, 3, 4], fb.TensorType.INT8, [0.05], [3]),
               _tensor([4, 2], fb.TensorType.INT32, buffer=1),
               _tensor([1, 10, 3, 4], fb.TensorType.INT8, [0.05], [3]),
               _tensor([1], fb.TensorType.INT8, [0.05], [3], buffer=2)]
    op = fb.OperatorT()
    op.inputs = [0, 1, 3] if constant_values else [0, 1]
    op.outputs = [2]
    op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.PadOptions, fb.PadOptionsT()
    return _model([np.array([[0, 0], [1, 1], [0, 0], [0, 0]], "<i4").tobytes(), np.array([7], np.int8).tobytes()],
                  tensors, op, fb.BuiltinOperator.PAD, 2, [0], [2])


def _engine(programs, tmp_path, model: bytes, xq: np.ndarray | None = None) -> dict:
    """Prepare status (and outputs, when windows are given) of `model` on every kernel flavour."""
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    records = [(0, xq if xq is not None else np.zeros((0, 1), np.int8))]
    return {k: ec.run(k, programs[k], path, records, timeout=120).records[0] for k in KINDS}


def _weights(rng, O, kh, C):
    return rng.integers(-127, 128, size=(O, kh, 1, C), dtype=np.int8)


def test_dsp_scratch_that_wrapped_32_bits_is_sized_exactly(programs, tmp_path):
    """Review finding: kh 255 rows of SAME padding on a 1 x 32897 x 256 input pass every shape
    check, and the DSP flavour's widened input -- 255 rows x 32897 columns x 256 channels x 2
    bytes -- is 2^32 + 65,024 bytes: in 32 bits it wrapped to 65 KB, so Invoke accepted an
    arena 4 GB too small. Sizes are 64-bit and bounded since, and the DSP kernels now widen one
    tile of columns under the scratch budget (scratch.h): the plan must ask for exactly one
    column's widened input (255 x 256 x 2, more than the budget) plus two channels' weights --
    computed here from the geometry, not by the engine -- and the portable flavours for none."""
    w = _weights(np.random.default_rng(0), 1, 255, 256)
    model = conv_model([1, 1, 32897, 256], w, np.zeros(1, np.int32))
    recs = _engine(programs, tmp_path, model)
    up16 = lambda v: (v + 15) // 16 * 16
    rows, i4 = 1 + 254, 256                      # the input row plus 254 rows of SAME padding
    assert rows * 32897 * i4 * 2 > 2 ** 32       # the whole-input size that used to wrap
    one_column = up16(4 * rows * (i4 // 2)) + up16(4 * 2 * 255 * (i4 // 2))
    assert {k: r.prepare_status for k, r in recs.items()} == {k: OK for k in KINDS}
    assert recs["dsp"].scratch_bytes == one_column
    assert recs["host"].scratch_bytes == 0 and recs["portable"].scratch_bytes == 0


def test_dsp_scratch_within_bounds_still_runs(programs, tmp_path):
    """The same geometry, small: accepted, and bit-exact with TFLM on every flavour."""
    rng = np.random.default_rng(1)
    w = _weights(rng, 5, 7, 12)
    model = conv_model([1, 3, 5, 12], w, rng.integers(-3000, 3000, 5).astype(np.int32))
    xq = rng.integers(-128, 128, size=(3, 3, 5, 12), dtype=np.int8)
    ref = Tflm(model).run(xq).reshape(len(xq), -1)
    for k, r in _engine(programs, tmp_path, model, xq).items():
        assert r.prepare_status == OK, k
        assert np.array_equal(r.outputs, ref), k


@pytest.mark.parametrize("bias_slot", [True, False], ids=["bias-index-minus-1", "two-inputs"])
@pytest.mark.parametrize("channels", [1, 6], ids=["one-channel", "six-channels"])
def test_conv_without_bias_runs_as_tflm(programs, tmp_path, bias_slot, channels):
    """TFLite's bias is an optional input of CONV_2D; TFLM runs such a model with a zero bias."""
    rng = np.random.default_rng(2 + channels)
    w = _weights(rng, 7, 6, channels)
    model = conv_model([1, 20, 3, channels], w, None, stride=3, bias_slot=bias_slot)
    xq = rng.integers(-128, 128, size=(4, 20, 3, channels), dtype=np.int8)
    ref = Tflm(model).run(xq).reshape(len(xq), -1)
    for k, r in _engine(programs, tmp_path, model, xq).items():
        assert r.prepare_status == OK, k
        assert np.array_equal(r.outputs, ref), k


def _conv(**kw) -> bytes:
    rng = np.random.default_rng(3)
    return conv_model([1, 12, 3, 4], _weights(rng, 6, 6, 4), np.zeros(6, np.int32), **kw)


@pytest.mark.parametrize("model,status", [
    (lambda: _conv(act=fb.ActivationFunctionType.RELU6), UNSUPPORTED),        # a clamp the kernels do not apply
    (lambda: _conv(w_qdim=3), UNSUPPORTED),                                   # per-channel along the input axis
    (lambda: _conv(x_scales=2), BAD_TENSOR),                                  # two scales on an activation
    (lambda: _conv(options_type=fb.BuiltinOptions.AddOptions), BAD_MODEL),    # options of another op
    (lambda: _conv(extra_inputs=1), UNSUPPORTED),                             # four inputs
    (lambda: pad_model(constant_values=True), UNSUPPORTED),                   # PAD with a constant-value input
    (lambda: pad_model(constant_values=False), OK),
], ids=["relu6", "quantized-dimension-3", "per-channel-activation", "wrong-options-type", "four-inputs",
        "pad-constant-values", "pad"])
def test_prepare_refuses_what_it_cannot_run_as_tflm(programs, tmp_path, model, status):
    recs = _engine(programs, tmp_path, model())
    assert {k: r.prepare_status for k, r in recs.items()} == {k: status for k in KINDS}


def test_op_table_agrees_with_the_tflite_schema():
    """ops.def -- the one op table the C++ enum, Prepare and the Python side take their ops from
    -- names each op's builtin code and options union tag as TFLite's own schema does."""
    options = {"PAD": "PadOptions", "CONV_2D": "Conv2DOptions", "ADD": "AddOptions", "GATHER": "GatherOptions",
               "MAXIMUM": "MaximumMinimumOptions", "RESHAPE": "ReshapeOptions",
               "FULLY_CONNECTED": "FullyConnectedOptions"}
    assert sorted(r["name"] for r in ec.OP_TABLE) == sorted(options)
    for r in ec.OP_TABLE:
        assert r["code"] == getattr(fb.BuiltinOperator, r["name"]), r
        assert r["options"] == getattr(fb.BuiltinOptions, options[r["name"]]), r
        assert 1 <= r["min_in"] <= r["max_in"] <= 3
