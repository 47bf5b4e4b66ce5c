"""Writing a :class:`QGraph` as a TFLite flatbuffer with the schema's own object API (the
bindings that ship in the ``tflite-micro`` package), and reading one back."""
from __future__ import annotations

import json

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from .graph import QGraph

_TYPES = {"int8": fb.TensorType.INT8, "int32": fb.TensorType.INT32}
_OPS = {
    "CONV_2D": (fb.BuiltinOperator.CONV_2D, 3),
    "PAD": (fb.BuiltinOperator.PAD, 2),
    "ADD": (fb.BuiltinOperator.ADD, 2),
    "GATHER": (fb.BuiltinOperator.GATHER, 2),
    "MAXIMUM": (fb.BuiltinOperator.MAXIMUM, 2),
    "RESHAPE": (fb.BuiltinOperator.RESHAPE, 1),
    "FULLY_CONNECTED": (fb.BuiltinOperator.FULLY_CONNECTED, 4),
}
_ACT = {False: fb.ActivationFunctionType.NONE, True: fb.ActivationFunctionType.RELU}
METADATA_NAME = "slimhar"
META_KEYS = ("width", "resolution", "classes", "arch")


def _options(op):
    o = op.options
    if op.kind == "CONV_2D":
        t = fb.Conv2DOptionsT()
        t.padding = fb.Padding.SAME if o["padding"] == "SAME" else fb.Padding.VALID
        t.strideH, t.strideW = o["stride"], 1
        t.dilationHFactor = t.dilationWFactor = 1
        t.fusedActivationFunction = _ACT[o["relu"]]
        return fb.BuiltinOptions.Conv2DOptions, t
    if op.kind == "ADD":
        t = fb.AddOptionsT()
        t.fusedActivationFunction = _ACT[o["relu"]]
        return fb.BuiltinOptions.AddOptions, t
    if op.kind == "GATHER":
        t = fb.GatherOptionsT()
        t.axis, t.batchDims = o["axis"], 0
        return fb.BuiltinOptions.GatherOptions, t
    if op.kind == "PAD":
        return fb.BuiltinOptions.PadOptions, fb.PadOptionsT()
    if op.kind == "MAXIMUM":
        return fb.BuiltinOptions.MaximumMinimumOptions, fb.MaximumMinimumOptionsT()
    if op.kind == "RESHAPE":
        return fb.BuiltinOptions.ReshapeOptions, fb.ReshapeOptionsT()   # shape comes from input 1
    if op.kind == "FULLY_CONNECTED":
        t = fb.FullyConnectedOptionsT()
        t.fusedActivationFunction = fb.ActivationFunctionType.NONE
        t.keepNumDims = False
        return fb.BuiltinOptions.FullyConnectedOptions, t
    raise ValueError(op.kind)


def to_model(g: QGraph, with_weights: bool = True) -> fb.ModelT:
    """with_weights=False leaves pool-backed weight buffers empty (to_tflite then writes the
    blob's form, see blob_form)."""
    m = fb.ModelT()
    m.version = 3
    m.buffers = [fb.BufferT()]                       # buffer 0: the empty sentinel
    sg = fb.SubGraphT()
    sg.tensors = []
    for t in g.tensors:
        ft = fb.TensorT()
        ft.name = t.name
        ft.shape = list(t.shape)
        ft.type = _TYPES[t.dtype]
        ft.buffer = 0
        if t.data is not None:
            b = fb.BufferT()
            if with_weights or t.pool_ref is None:
                b.data = np.frombuffer(np.ascontiguousarray(t.data).astype(t.data.dtype.newbyteorder("<")).tobytes(),
                                       np.uint8)
            m.buffers.append(b)
            ft.buffer = len(m.buffers) - 1
        if t.scale is not None:
            q = fb.QuantizationParametersT()
            q.scale = [float(s) for s in t.scale]
            q.zeroPoint = [int(z) for z in t.zero_point]
            q.quantizedDimension = t.axis
            ft.quantization = q
        sg.tensors.append(ft)
    codes, index = [], {}
    sg.operators = []
    for op in g.ops:
        if op.kind not in index:
            code, ver = _OPS[op.kind]
            oc = fb.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = ver
            index[op.kind] = len(codes)
            codes.append(oc)
        fo = fb.OperatorT()
        fo.opcodeIndex = index[op.kind]
        fo.inputs, fo.outputs = list(op.inputs), list(op.outputs)
        fo.builtinOptionsType, fo.builtinOptions = _options(op)
        sg.operators.append(fo)
    sg.inputs, sg.outputs = list(g.inputs), list(g.outputs)
    m.operatorCodes = codes
    m.subgraphs = [sg]
    meta = fb.BufferT()
    keep = {k: g.meta[k] for k in META_KEYS if k in g.meta}      # the rest lives in the blob's table
    meta.data = np.frombuffer(metadata_json(keep), np.uint8)
    m.buffers.append(meta)
    md = fb.MetadataT()
    md.name = METADATA_NAME
    md.buffer = len(m.buffers) - 1
    m.metadata = [md]
    return m


class _SharedQuant:
    """Stands in for a QuantizationParametersT while packing, so that identical quantization
    tables -- and identical scale / zero-point vectors (the all-zero per-channel zero points
    above all) -- are written once and referenced by offset (a flatbuffer is a DAG)."""

    def __init__(self, q, cache: dict):
        self.q, self.cache = q, cache

    def _vec(self, builder, arr: np.ndarray):
        key = (arr.dtype.str, arr.tobytes())
        if key not in self.cache:
            self.cache[key] = builder.CreateNumpyVector(arr)
        return self.cache[key]

    def Pack(self, builder):
        scale = np.asarray(self.q.scale if self.q.scale is not None else [], "<f4")
        zp = np.asarray(self.q.zeroPoint if self.q.zeroPoint is not None else [], "<i8")
        key = ("table", scale.tobytes(), zp.tobytes(), int(self.q.quantizedDimension))
        if key not in self.cache:
            sv, zv = self._vec(builder, scale), self._vec(builder, zp)
            fb.QuantizationParametersStart(builder)
            fb.QuantizationParametersAddScale(builder, sv)
            fb.QuantizationParametersAddZeroPoint(builder, zv)
            fb.QuantizationParametersAddQuantizedDimension(builder, int(self.q.quantizedDimension))
            self.cache[key] = fb.QuantizationParametersEnd(builder)
        return self.cache[key]


def pack(model: fb.ModelT) -> bytes:
    """Serialize; quantization tables and their vectors are deduplicated (see _SharedQuant).
    Both the exporter and Blob.unpack pack through here, so their bytes agree."""
    cache: dict = {}
    for sg in model.subgraphs or []:
        for t in sg.tensors or []:
            if t.quantization is not None and not isinstance(t.quantization, _SharedQuant):
                t.quantization = _SharedQuant(t.quantization, cache)
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


_WITH_BIAS = (fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.FULLY_CONNECTED)


def _conv_fc_ops(model: fb.ModelT):
    """(subgraph, op) of every CONV_2D / FULLY_CONNECTED, in operator order."""
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes or []]
    for sg in model.subgraphs or []:
        for op in sg.operators or []:
            if codes[op.opcodeIndex] in _WITH_BIAS:
                yield sg, op


def _biased_ops(model: fb.ModelT):
    """(input, weights, bias) tensors of every CONV_2D / FULLY_CONNECTED that has a bias."""
    for sg, op in _conv_fc_ops(model):
        ins = list(op.inputs)
        if len(ins) >= 3 and ins[2] >= 0:
            yield tuple(sg.tensors[i] for i in ins[:3])


def _per_channel(model: fb.ModelT):
    """Every quantization with more than one scale that has zero points."""
    for sg in model.subgraphs or []:
        for t in sg.tensors or []:
            q = t.quantization
            if q is not None and q.scale is not None and q.zeroPoint is not None and len(q.scale) > 1:
                yield q


def blob_form(model: fb.ModelT) -> fb.ModelT:
    """The form a subnet's flatbuffer takes in the blob (docs/blob-format.md), in place -- the
    rules that need only the model (pack_blob adds those that need the blob: drop_weight_scales,
    drop_names, drop_metadata):
    - a per-channel quantization's zero points (all equal: 0 for int8 weights) stored once
      instead of once per channel (8 bytes a channel);
    - a CONV_2D / FULLY_CONNECTED bias without its quantization: its scales are input scale x
      weight scale by construction (graph.py), which TFLM's int8 kernels never read (4 bytes a
      channel); stripped only where they are exactly that, so standalone_form restores them;
    - such a bias stored as int16 when every value fits (2 bytes a channel).
    The engine runs this form; TFLite's interpreters do not, so standalone_form undoes it
    exactly (Blob.unpack: the same bytes as the .tflite `slimhar quantize` writes)."""
    for x, w, b in _biased_ops(model):
        q = b.quantization
        if q is None or q.scale is None or w.quantization is None or x.quantization is None:
            continue
        zero = q.zeroPoint is None or not any(int(z) for z in q.zeroPoint)
        if zero and np.array_equal(_bias_scale(x, w, len(q.scale)), np.asarray(q.scale, np.float32)):
            b.quantization = None
    for q in _per_channel(model):
        if len(q.zeroPoint) == len(q.scale) and len(set(int(z) for z in q.zeroPoint)) == 1:
            q.zeroPoint = [int(q.zeroPoint[0])]
    for _x, _w, b in _biased_ops(model):
        v = _bias_values(model, b)
        if (b.quantization is None and b.type == fb.TensorType.INT32 and v is not None and v.size
                and np.all(np.abs(v.astype(np.int64)) < 1 << 15)):
            b.type = fb.TensorType.INT16
            model.buffers[b.buffer].data = np.frombuffer(v.astype("<i2").tobytes(), np.uint8)
    return model


def _bias_values(model: fb.ModelT, b) -> np.ndarray | None:
    """A bias tensor's values, None when it has no data of its type's size."""
    if not 0 < b.buffer < len(model.buffers) or model.buffers[b.buffer].data is None:
        return None
    raw = bytes(model.buffers[b.buffer].data)
    dt = {fb.TensorType.INT32: "<i4", fb.TensorType.INT16: "<i2"}.get(b.type)
    if dt is None or len(raw) % np.dtype(dt).itemsize:
        return None
    return np.frombuffer(raw, dt)


def _bias_scale(x, w, n: int) -> np.ndarray:
    """graph.py's bias scales: float32(float64(input scale) x float64(weight scale[o]))."""
    sw = np.asarray(w.quantization.scale, np.float32).astype(np.float64)
    if len(sw) == 1:
        sw = np.repeat(sw, n)
    return (np.float64(np.float32(x.quantization.scale[0])) * sw[:n]).astype(np.float32)


def standalone_form(model: fb.ModelT) -> fb.ModelT:
    """blob_form undone, in place: every bias int32 and its quantization, every scale its zero point."""
    for _x, _w, b in _biased_ops(model):
        v = _bias_values(model, b)
        if b.quantization is None and b.type == fb.TensorType.INT16 and v is not None:   # narrowed by blob_form
            b.type = fb.TensorType.INT32
            model.buffers[b.buffer].data = np.frombuffer(v.astype("<i4").tobytes(), np.uint8)
    for q in _per_channel(model):
        if len(q.zeroPoint) == 1:
            q.zeroPoint = [int(q.zeroPoint[0])] * len(q.scale)
    for x, w, b in _biased_ops(model):
        if b.quantization is None and w.quantization is not None and x.quantization is not None:
            n = int(b.shape[0])
            q = fb.QuantizationParametersT()
            q.scale = [float(v) for v in _bias_scale(x, w, n)]
            q.zeroPoint = [0] * n
            q.quantizedDimension = 0
            b.quantization = q
    return model


def weighted_ops(model: fb.ModelT):
    """(input, weights, output, channels) of every CONV_2D / FULLY_CONNECTED in operator order:
    the order of a subnet's multiplier table (requant.py)."""
    for sg, op in _conv_fc_ops(model):
        w = sg.tensors[op.inputs[1]]
        yield sg.tensors[op.inputs[0]], w, sg.tensors[op.outputs[0]], int(w.shape[0])


def _no_scales(q) -> bool:
    return q is not None and (q.scale is None or len(q.scale) == 0)


def drop_weight_scales(model: fb.ModelT, mult: np.ndarray, shift: np.ndarray) -> fb.ModelT:
    """The blob's third rule, in place: a per-channel weight quantization loses its scales where
    the subnet's multiplier table (the same scales, requantized: requant.py) gives every one of
    them back exactly (requant.weight_scales); only the device reads a blob's flatbuffer, and it
    needs the multipliers, not the scales (4 bytes a channel)."""
    from .requant import weight_scales
    k = 0
    for x, w, y, n in weighted_ops(model):
        q = w.quantization
        if q is not None and q.scale is not None and len(q.scale) == n > 1 and k + n <= len(mult):
            back = weight_scales(_act_scale(x), _act_scale(y), mult[k:k + n], shift[k:k + n])
            if np.array_equal(back.view(np.uint32), np.asarray(q.scale, np.float32).view(np.uint32)):
                q.scale = None
        k += n
    return model


def restore_weight_scales(model: fb.ModelT, mult: np.ndarray, shift: np.ndarray) -> fb.ModelT:
    """drop_weight_scales undone, in place. ValueError when the table does not cover them."""
    from .requant import weight_scales
    k = 0
    for x, w, y, n in weighted_ops(model):
        if _no_scales(w.quantization):
            if k + n > len(mult):
                raise ValueError(f"the multiplier table ({len(mult)} channels) ends before the weights' scales")
            w.quantization.scale = [float(v) for v in weight_scales(_act_scale(x), _act_scale(y),
                                                                     mult[k:k + n], shift[k:k + n])]
        k += n
    return model


def _act_scale(t) -> float:
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) != 1:
        raise ValueError("an activation of a conv / fc op has no per-tensor scale")
    return float(np.float32(q.scale[0]))


def drop_names(model: fb.ModelT, names: list[bytes]) -> fb.ModelT:
    """The blob's fourth rule, in place: tensor names equal to the blob's common list (carried
    once, in its metadata) are left out of the subnet's flatbuffer."""
    tensors = model.subgraphs[0].tensors
    if [bytes(t.name or b"") for t in tensors] == list(names):
        for t in tensors:
            t.name = None
    return model


def restore_names(model: fb.ModelT, names: list[bytes]) -> fb.ModelT:
    """drop_names undone: a subgraph without any tensor name, as long as the common list."""
    tensors = model.subgraphs[0].tensors
    if names and len(tensors) == len(names) and not any(t.name for t in tensors):
        for t, n in zip(tensors, names):
            t.name = n
    return model


def metadata_json(keep: dict) -> bytes:
    """The bytes of a subnet's `slimhar` metadata entry."""
    return json.dumps(keep, sort_keys=True, separators=(",", ":")).encode()


def drop_metadata(model: fb.ModelT, expected: bytes) -> fb.ModelT:
    """The blob's fifth rule, in place: the `slimhar` metadata entry leaves the flatbuffer when
    it is exactly `expected` (what the blob's subnet table and header give back) and its buffer
    is the last one."""
    md, bufs = model.metadata or [], model.buffers or []
    if (len(md) == 1 and _name(md[0].name) == METADATA_NAME and md[0].buffer == len(bufs) - 1
            and bufs[-1].data is not None and bytes(bufs[-1].data) == expected):
        model.metadata = None
        model.buffers = bufs[:-1]
    return model


def restore_metadata(model: fb.ModelT, data: bytes) -> fb.ModelT:
    """drop_metadata undone: a model without metadata gets the entry back as its last buffer."""
    if not model.metadata:
        b = fb.BufferT()
        b.data = np.frombuffer(data, np.uint8)
        model.buffers = list(model.buffers or []) + [b]
        md = fb.MetadataT()
        md.name = METADATA_NAME
        md.buffer = len(model.buffers) - 1
        model.metadata = [md]
    return model


def _name(n) -> str:
    return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)


def tensor_names(model: fb.ModelT) -> list[bytes]:
    return [bytes(t.name or b"") for t in model.subgraphs[0].tensors]


def to_tflite(g: QGraph, with_weights: bool = True) -> bytes:
    """The standalone .tflite, or (with_weights=False) the blob's form of it."""
    m = to_model(g, with_weights)
    return pack(m if with_weights else blob_form(m))


def read_model(data: bytes) -> fb.ModelT:
    return fb.ModelT.InitFromPackedBuf(bytearray(data), 0)


def read_metadata(data: bytes) -> dict:
    m = read_model(data)
    for md in m.metadata or []:
        if _name(md.name) == METADATA_NAME:
            return json.loads(bytes(m.buffers[md.buffer].data).decode())
    return {}


# -- the blob's model region: every subnet's flatbuffer in one, equal parts written once ---------
class _DedupBuilder(flatbuffers.Builder):
    """A builder that writes each distinct scalar vector and string once (offsets are forward
    references, so any later table may point at one written earlier)."""

    def __init__(self):
        super().__init__(1 << 16)
        self._seen: dict = {}

    def CreateNumpyVector(self, x):
        key = ("v", x.dtype.str, x.tobytes())
        if key not in self._seen:
            self._seen[key] = super().CreateNumpyVector(x)
        return self._seen[key]

    def CreateString(self, s, encoding="utf-8", errors="strict"):
        key = ("s", s if isinstance(s, bytes) else s.encode(encoding, errors))
        if key not in self._seen:
            self._seen[key] = super().CreateString(s, encoding, errors)
        return self._seen[key]


class _Once:
    """Stands in for an object-API table while a region is packed: equal tables (same type,
    same fields, equal children) are written once."""

    def __init__(self, obj, memo: dict):
        self.obj, self.memo = obj, memo
        self.key = (type(obj).__name__,) + tuple((k, _content_key(v)) for k, v in sorted(vars(obj).items()))

    def Pack(self, builder):
        if self.key not in self.memo:
            self.memo[self.key] = self.obj.Pack(builder)
        return self.memo[self.key]


def _content_key(v):
    if isinstance(v, _Once):
        return v.key
    if isinstance(v, np.ndarray):
        return ("nd", v.dtype.str, v.tobytes())
    if isinstance(v, list):
        return ("l",) + tuple(_content_key(e) for e in v)
    return (type(v).__name__, repr(v))        # repr: 0.0 and -0.0 stay apart


def _share(x, memo: dict):
    if isinstance(x, list):
        return [_share(v, memo) for v in x]
    if hasattr(x, "Pack") and not isinstance(x, (_Once, _SharedQuant)):
        for k, v in list(vars(x).items()):
            setattr(x, k, _share(v, memo))
        return _Once(x, memo)
    return x


def pack_region(models: list[fb.ModelT]) -> tuple[bytes, list[int]]:
    """Several models in one flatbuffer region: (its bytes, where each model starts). Each model
    starts with its own root offset and the "TFL3" identifier, 16-byte aligned (the region's
    length is a multiple of 16), and reads as a standalone flatbuffer from there to the region's
    end: every offset in a flatbuffer points forward, and a model packed later (earlier in the
    region) points at the equal vectors and tables of those packed before it instead of writing
    them again (shapes, quantization tables, op codes and options, constant buffers, vtables).
    The models are consumed (their tables are wrapped)."""
    b, memo = _DedupBuilder(), {}
    ends = [0] * len(models)
    for i in reversed(range(len(models))):
        root = _share(models[i], memo).Pack(b)
        b.Prep(16, 8)                                   # root offset + identifier end on 16 bytes
        for c in reversed(b"TFL3"):
            b.PrependByte(c)
        b.PrependUOffsetTRelative(root)
        ends[i] = b.Offset()
    data = bytes(b.Bytes[b.Head():])
    return data, [len(data) - e for e in ends]
