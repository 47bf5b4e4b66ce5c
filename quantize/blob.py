"""The blob: one shared int8 weight pool + every subnet, in one file (spec: docs/blob-format.md).

Little-endian, 16-byte aligned sections, CRC-32 over the whole file (with the CRC field read
as zero). Each subnet is a TFLite flatbuffer whose pool-backed weight tensors have empty
buffers, plus a table of references (tensor index -> pool tensor, out-channels, in-channels)
that ``unpack`` materializes into a standalone .tflite.

The reader checks everything before it trusts it -- magic, version, sizes, CRC, every offset
and size in bounds, shapes sane, references inside their pool tensor -- and raises
:class:`BlobError` with a clear message; it never indexes outside the buffer.
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from .input_spec import InputSpec, SpecError
from .input_spec import pack as pack_spec
from .input_spec import unpack as unpack_spec
from .requant import subnet_multipliers

MAGIC = b"SLIMHAR\0"
VERSION = 3          # 2: the input spec section replaced the bare normalization section; 3: references,
                     # multiplier tables and stored plans packed closer (4-, 4-, 1-byte aligned), plan format 3
ALIGN = 16
HEADER = struct.Struct("<8sHHIIIIIIIIIIIHHHBB")      # 64 bytes
POOL_ENTRY = struct.Struct("<16sIII4II")             # 48 bytes
SUBNET_ENTRY = struct.Struct("<fHH3HHIIIffIIIIIII")   # 64 bytes
REF_ENTRY = struct.Struct("<HHHH")                    # 8 bytes
PLAN_FIELD = 60                                        # the subnet entry's stored-plan offset
FLAGS_FIELD = 14                                       # the subnet entry's flags (u16)
LEAST_PLAN_FOLLOWS = 1                                 # flag: the least-RAM plan follows the stored plan
PLAN_HEADER_BYTES = 26                                 # a stored plan's fixed part (quantize/plan.py HEADER)
CRC_OFFSET = 16
ARCHS = {"cnn": 0, "resnet": 1}
MAX_SUBNETS, MAX_POOL, MAX_DIM = 4096, 256, 1 << 16
MAX_CHANNELS = 1 << 16       # output channels of one subnet's conv / fc ops together (its multiplier table)
assert HEADER.size == 64 and POOL_ENTRY.size == 48 and SUBNET_ENTRY.size == 64


class BlobError(ValueError):
    pass


@dataclass
class PoolEntry:
    name: str
    shape: tuple[int, ...]
    offset: int          # absolute, in the file
    size: int


@dataclass
class SubnetEntry:
    width: float
    resolution: int
    classes: int
    channels: tuple[int, int, int]
    macs: int
    params: int
    arena_bytes: int
    float_acc: float
    int8_acc: float
    model_offset: int
    model_size: int
    refs: list[tuple[int, int, int, int]]   # (tensor index, pool index, out, in)
    mult_offset: int = 0                    # the precomputed multipliers: int32[n] then int8 shifts[n]
    mult_count: int = 0                     # 0: none (the device computes them)
    plan_offset: int = 0                    # the stored engine plan (quantize/plan.py); 0: none
    plan_size: int = 0
    least_plan_offset: int = 0              # its plan for the least-RAM firmware, where that differs; 0: none
    least_plan_size: int = 0
    refs_offset: int = 0

    @property
    def name(self) -> str:
        return subnet_name(self.width, self.resolution)


def subnet_name(width: float, resolution: int) -> str:
    return f"w{round(width * 100):03d}_t{resolution}"


def subnet_metadata(width: float, resolution: int, classes: int, arch: str) -> bytes:
    """A subnet's `slimhar` metadata entry as its table entry and the header give it back (the
    width through float32, as the table stores it)."""
    from .tflite_io import metadata_json
    return metadata_json({"width": round(float(np.float32(width)), 6), "resolution": int(resolution),
                          "classes": int(classes), "arch": arch})


def blob_rules(m, mult, shift, names, width: float, resolution: int, classes: int, arch: str):
    """The blob's rules for a subnet's flatbuffer that need more than the model itself
    (docs/blob-format.md; tflite_io.blob_form has the others), in place: its weight scales left
    to its multiplier table, its tensor names to the blob's common list, its metadata entry to
    its subnet entry."""
    from .tflite_io import drop_metadata, drop_names, drop_weight_scales
    drop_metadata(m, subnet_metadata(width, resolution, classes, arch))
    return drop_names(drop_weight_scales(m, mult, shift), list(names))


def common_names(models) -> list[bytes]:
    """The tensor-name list most of `models` share (all of them, for one architecture; the first
    such list on a tie): pack_blob writes it once, into the blob's metadata, and a subnet with
    exactly those names carries none (tflite_io.drop_names)."""
    from .tflite_io import tensor_names
    lists = [tuple(tensor_names(m)) for m in models]
    return list(max(lists, key=lambda n: (lists.count(n), -lists.index(n)))) if lists else []


def blob_metadata(meta: dict, names: list[bytes]) -> bytes:
    """The blob's metadata section: `meta` with `names` (common_names) as its tensor_names."""
    meta = {k: v for k, v in meta.items() if k != "tensor_names"}
    if names:
        meta["tensor_names"] = [n.decode("utf-8") for n in names]
    return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()


def _pad(n: int) -> int:
    return (-n) % ALIGN


def crc32_of(buf: bytes | bytearray | memoryview) -> int:
    b = memoryview(buf)
    c = zlib.crc32(b[:CRC_OFFSET])
    c = zlib.crc32(b"\0\0\0\0", c)
    return zlib.crc32(b[CRC_OFFSET + 4:], c) & 0xFFFFFFFF


# -- writing ----------------------------------------------------------------------------------
def pack_blob(pool: dict[str, np.ndarray], subnets: list[dict], spec: InputSpec, meta: dict,
              window: int, axes: int, classes: int, arch: str) -> bytes:
    """pool: name -> int8 array (full tensor). subnets: dicts with the SubnetEntry fields
    (except offsets) plus 'model' (flatbuffer bytes without pool weights) and 'refs' as
    (tensor index, pool name, out, in). spec: the model's input spec (quantize/input_spec.py)."""
    if (spec.window, len(spec.channels), len(spec.class_names)) != (window, axes, classes):
        raise BlobError(f"input spec ({spec.window} samples, {len(spec.channels)} channels, "
                        f"{len(spec.class_names)} classes) does not match the model ({window}, {axes}, {classes})")
    pool_names = list(pool)
    out = bytearray(HEADER.size)

    def section(data: bytes, align: int = ALIGN) -> int:
        out.extend(b"\0" * ((-len(out)) % align))
        off = len(out)
        out.extend(data)
        return off

    from .tflite_io import pack_region, read_model
    models = [read_model(s["model"]) for s in subnets]
    names = common_names(models)
    spec_off = section(pack_spec(spec))
    meta_bytes = blob_metadata(meta, names)
    meta_off = section(meta_bytes)
    # pool data: each tensor 16-byte aligned
    out.extend(b"\0" * _pad(len(out)))
    pool_data_off = len(out)
    pool_entries = []
    for n in pool_names:
        a = np.ascontiguousarray(pool[n], np.int8)
        off = section(a.tobytes())
        dims = list(a.shape) + [0] * (4 - a.ndim)
        pool_entries.append(POOL_ENTRY.pack(n.encode()[:16], off, a.nbytes, a.ndim, *dims, 0))
    pool_data_size = len(out) - pool_data_off
    pool_dir_off = section(b"".join(pool_entries))
    ref_offs, mult_offs, mult_counts, tables = [], [], [], []
    for s, m in zip(subnets, models):
        mult, shift = subnet_multipliers(s["model"])     # TFLM's Prepare, done once here
        blob_rules(m, mult, shift, names, s["width"], s["resolution"], s["classes"], arch)
        tables.append((mult, shift))
    # every flatbuffer in one region, the parts they have in common written once
    region, starts = pack_region(models)
    region_off = section(region)
    model_offs = [region_off + st for st in starts]
    model_sizes = [len(region) - st for st in starts]
    for s, (mult, shift) in zip(subnets, tables):
        refs = b"".join(REF_ENTRY.pack(t, pool_names.index(p), o, i) for t, p, o, i in s["refs"])
        ref_offs.append(section(refs, 4))         # read byte by byte
        mult_offs.append(section(mult.tobytes() + shift.tobytes(), 4))   # int32 read in place
        mult_counts.append(len(mult))
    table = b"".join(SUBNET_ENTRY.pack(
        s["width"], s["resolution"], s["classes"], *s["channels"], 0, s["macs"], s["params"], s["arena_bytes"],
        s["float_acc"], s["int8_acc"], mo, ms, ro, len(s["refs"]), qo, qn, 0)
        for s, mo, ms, ro, qo, qn in zip(subnets, model_offs, model_sizes, ref_offs, mult_offs, mult_counts))
    table_off = section(table)

    def seal() -> None:
        out.extend(b"\0" * _pad(len(out)))
        HEADER.pack_into(out, 0, MAGIC, VERSION, HEADER.size, len(out), 0, len(subnets), table_off, len(pool_names),
                         pool_dir_off, pool_data_off, pool_data_size, spec_off, meta_off, len(meta_bytes),
                         window, axes, classes, ARCHS[arch], 0)
        struct.pack_into("<I", out, CRC_OFFSET, crc32_of(out))

    seal()
    # each subnet's engine plan, computed from the blob as written so far (quantize/plan.py), after
    # the subnet table; its entry points at it. Where a firmware sized for the least RAM
    # (`export-c --least-ram`) prepares the subnet with other tiles, that plan follows, flagged.
    # Plans are read byte by byte: no padding between them.
    from .plan import NoStoredPlan, least_ram_limit, stored_plans
    first = Blob(bytes(out), "(being written)")
    least_limit = least_ram_limit(first)
    for k, s in enumerate(first.subnets):
        try:
            plan, least = stored_plans(first, s, least_limit)
        except NoStoredPlan:
            continue
        entry = table_off + k * SUBNET_ENTRY.size
        struct.pack_into("<I", out, entry + PLAN_FIELD, section(plan + least, 1))
        struct.pack_into("<H", out, entry + FLAGS_FIELD, LEAST_PLAN_FOLLOWS if least else 0)
    seal()
    return bytes(out)


def repack(blob: "Blob", subnets: list[int] | None = None, int8_acc: dict[int, float] | None = None,
           trim: bool = False, spec: InputSpec | None = None) -> bytes:
    """A new blob of `blob`'s subnets (all, or those indices, in that order) over the same pool;
    `int8_acc` replaces the table's int8 accuracy of some (index -> fraction). trim: keep only
    the pool tensors the chosen subnets use, each cut to the out / in channels they use (the
    weights stay the real ones, only their strides shrink). spec: another input spec (same
    window, channels and classes). The models are re-emitted in the current blob form
    (tflite_io.blob_form). Same bytes for the same arguments."""
    keep = list(range(len(blob.subnets))) if subnets is None else list(subnets)
    bad = [i for i in keep if not 0 <= i < len(blob.subnets)]
    if bad or not keep:
        raise BlobError(f"{blob.source}: no subnet index {bad[0] if bad else '(none chosen)'} "
                        f"(it has {len(blob.subnets)})")
    used = {p: (e.shape[0], e.shape[-1]) for p, e in enumerate(blob.pool)}
    if trim:
        used = {}
        for i in keep:
            for _t, p, o, n in blob.subnets[i].refs:
                uo, ui = used.get(p, (0, 0))
                used[p] = (max(uo, o), max(ui, n))
    tensors = sorted(used)
    pool = {blob.pool[p].name: np.ascontiguousarray(blob.pool_array(p)[:used[p][0], ..., :used[p][1]]) for p in tensors}
    rows = []
    for i in keep:
        s = blob.subnets[i]
        rows.append(dict(width=s.width, resolution=s.resolution, classes=s.classes, channels=s.channels, macs=s.macs,
                         params=s.params, arena_bytes=s.arena_bytes, float_acc=s.float_acc,
                         int8_acc=(int8_acc or {}).get(i, s.int8_acc), model=blob.packed_model(s),
                         refs=[(t, blob.pool[p].name, o, n) for t, p, o, n in s.refs]))
    return pack_blob(pool, rows, spec or blob.spec, blob.meta, blob.window, blob.axes, blob.classes,
                     blob.arch)


# -- reading ----------------------------------------------------------------------------------
class Blob:
    """A validated blob. Construction raises BlobError for anything malformed."""

    def __init__(self, data: bytes, source: str = "blob"):
        self.data = bytes(data)
        self.source = source
        self._parse()

    @classmethod
    def open(cls, path) -> "Blob":
        with open(path, "rb") as f:
            return cls(f.read(), str(path))

    def _err(self, msg: str) -> BlobError:
        return BlobError(f"{self.source}: {msg}")

    def _range(self, off: int, size: int, what: str) -> None:
        if off < HEADER.size or size < 0 or off + size > len(self.data):
            raise self._err(f"{what} at offset {off} size {size} lies outside the file ({len(self.data)} bytes)")

    def _parse(self) -> None:
        d = self.data
        if len(d) < HEADER.size:
            raise self._err(f"truncated: {len(d)} bytes, a blob header alone is {HEADER.size}")
        h = HEADER.unpack_from(d, 0)
        (magic, ver, hsize, total, crc, n_sub, table_off, n_pool, pool_dir_off, pool_data_off, pool_data_size,
         spec_off, meta_off, meta_size, window, axes, classes, arch, _) = h
        if magic != MAGIC:
            raise self._err(f"not a slimhar blob (magic {magic!r})")
        if ver != VERSION:
            raise self._err(f"blob version {ver}, this reader reads version {VERSION}")
        if hsize != HEADER.size:
            raise self._err(f"header size {hsize}, expected {HEADER.size}")
        if total != len(d):
            raise self._err(f"size mismatch: header says {total} bytes, file has {len(d)} (truncated or padded)")
        if crc32_of(d) != crc:
            raise self._err(f"CRC mismatch (stored {crc:08x}, computed {crc32_of(d):08x}): the blob is corrupt")
        if not (0 < n_sub <= MAX_SUBNETS and 0 < n_pool <= MAX_POOL):
            raise self._err(f"absurd counts: {n_sub} subnets, {n_pool} pool tensors")
        if not (0 < axes <= 64 and 0 < classes <= 1024 and 0 < window <= 8192 and arch in ARCHS.values()):
            raise self._err(f"absurd model shape: window {window}, axes {axes}, classes {classes}, arch {arch}")
        for off, name in ((table_off, "subnet table"), (pool_dir_off, "pool directory"), (pool_data_off, "pool data"),
                          (spec_off, "input spec"), (meta_off, "metadata")):
            if off % ALIGN:
                raise self._err(f"{name} offset {off} is not {ALIGN}-byte aligned")
        self._range(table_off, n_sub * SUBNET_ENTRY.size, "subnet table")
        self._range(pool_dir_off, n_pool * POOL_ENTRY.size, "pool directory")
        self._range(pool_data_off, pool_data_size, "pool data")
        self._range(meta_off, meta_size, "metadata")
        self.window, self.axes, self.classes = window, axes, classes
        self.table_offset = table_off
        self.arch = {v: k for k, v in ARCHS.items()}[arch]
        if not HEADER.size <= spec_off < len(d):
            raise self._err(f"input spec at offset {spec_off} lies outside the file ({len(d)} bytes)")
        try:
            self.spec = unpack_spec(d, spec_off, min(len(d), meta_off if meta_off > spec_off else len(d)) - spec_off)
        except SpecError as e:
            raise self._err(str(e)) from None
        if (self.spec.window, len(self.spec.channels), len(self.spec.class_names)) != (window, axes, classes):
            raise self._err(f"input spec ({self.spec.window} samples, {len(self.spec.channels)} channels, "
                            f"{len(self.spec.class_names)} classes) does not match the header ({window}, {axes}, {classes})")
        self.norm_mean, self.norm_std = self.spec.mean, self.spec.std
        try:
            self.meta = json.loads(d[meta_off:meta_off + meta_size].decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self._err(f"metadata is not JSON ({e})") from None
        names = self.meta.get("tensor_names", []) if isinstance(self.meta, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise self._err("metadata: tensor_names is not a list of strings")
        self.tensor_names = [n.encode("utf-8") for n in names]
        self.pool: list[PoolEntry] = []
        for k in range(n_pool):
            name, off, size, rank, d0, d1, d2, d3, _ = POOL_ENTRY.unpack_from(d, pool_dir_off + k * POOL_ENTRY.size)
            dims = (d0, d1, d2, d3)[:rank] if 1 <= rank <= 4 else None
            if dims is None or any(x <= 0 or x > MAX_DIM for x in dims):
                raise self._err(f"pool tensor {k}: absurd shape rank {rank} dims {(d0, d1, d2, d3)}")
            if int(np.prod(dims)) != size:
                raise self._err(f"pool tensor {k}: size {size} != product of dims {dims}")
            if off < pool_data_off or off + size > pool_data_off + pool_data_size:
                raise self._err(f"pool tensor {k}: bytes [{off}, {off + size}) outside the pool section")
            self.pool.append(PoolEntry(name.rstrip(b"\0").decode("ascii", "replace"), tuple(dims), off, size))
        self.subnets: list[SubnetEntry] = []
        for k in range(n_sub):
            f = SUBNET_ENTRY.unpack_from(d, table_off + k * SUBNET_ENTRY.size)
            (w, res, cls, c0, c1, c2, flags, macs, params, arena, facc, qacc, moff, msize, roff, nref, qoff, qn, poff) = f
            if not (0 < w <= 1.0 and 0 < res <= window and cls == classes and msize > 8 and nref <= 64):
                raise self._err(f"subnet {k}: absurd entry (width {w}, T' {res}, classes {cls}, "
                                f"model size {msize}, {nref} refs)")
            self._range(moff, msize, f"subnet {k} model")
            self._range(roff, nref * REF_ENTRY.size, f"subnet {k} weight references")
            if moff % ALIGN:
                raise self._err(f"subnet {k} model offset {moff} is not {ALIGN}-byte aligned")
            if qn:
                if qoff % 4 or qn > MAX_CHANNELS:
                    raise self._err(f"subnet {k}: multiplier table at {qoff} ({qn} channels) misaligned or too long")
                self._range(qoff, 5 * qn, f"subnet {k} multipliers")
            psize = 0
            if poff:   # the stored plan: its size (u16 at +2) inside the file
                if poff + 4 > len(d):
                    raise self._err(f"subnet {k}: stored plan at {poff} outside the file")
                psize = struct.unpack_from("<H", d, poff + 2)[0]
                if psize < PLAN_HEADER_BYTES:
                    raise self._err(f"subnet {k}: stored plan of {psize} bytes (at least {PLAN_HEADER_BYTES})")
                self._range(poff, psize, f"subnet {k} stored plan")
            if flags & ~LEAST_PLAN_FOLLOWS or (flags and not poff):
                raise self._err(f"subnet {k}: entry flags {flags:#x} (only bit 0, and only with a stored plan)")
            loff = lsize = 0
            if flags:  # the least-RAM plan: right after the stored plan, as long
                loff, lsize = poff + psize, psize
                self._range(loff, lsize, f"subnet {k} least-RAM plan")
                if struct.unpack_from("<H", d, loff + 2)[0] != psize:
                    raise self._err(f"subnet {k}: least-RAM plan at {loff} is not as long as its stored plan")
            refs = [REF_ENTRY.unpack_from(d, roff + j * REF_ENTRY.size) for j in range(nref)]
            for t, p, o, i in refs:
                if p >= n_pool:
                    raise self._err(f"subnet {k}: reference to pool tensor {p} of {n_pool}")
                dims = self.pool[p].shape
                if not (0 < o <= dims[0] and 0 < i <= dims[-1]):
                    raise self._err(f"subnet {k}: slice ({o}, {i}) outside pool tensor {p} of shape {dims}")
            w = round(w, 6)         # stored as float32; grid widths have few decimals
            self.subnets.append(SubnetEntry(w, res, cls, (c0, c1, c2), macs, params, arena, facc, qacc,
                                            moff, msize, refs, qoff, qn, poff, psize, loff, lsize, roff))

    # -- access -------------------------------------------------------------------------------
    def pool_array(self, k: int) -> np.ndarray:
        e = self.pool[k]
        return np.frombuffer(self.data, np.int8, e.size, e.offset).reshape(e.shape)

    def find(self, name: str) -> SubnetEntry:
        for s in self.subnets:
            if s.name == name:
                return s
        raise BlobError(f"{self.source}: no subnet {name!r} (have {', '.join(s.name for s in self.subnets[:6])}, ...)")

    def multipliers(self, s: SubnetEntry) -> tuple[np.ndarray, np.ndarray]:
        """The subnet's precomputed (int32 mult[n], int8 shift[n]); empty when it has none."""
        n = s.mult_count
        return (np.frombuffer(self.data, "<i4", n, s.mult_offset).copy(),
                np.frombuffer(self.data, np.int8, n, s.mult_offset + 4 * n).copy())

    def model_bytes(self, s: SubnetEntry) -> bytes:
        """Subnet s's flatbuffer: from its start to the end of the model region it shares."""
        return self.data[s.model_offset:s.model_offset + s.model_size]

    def private_bytes(self) -> list[dict]:
        """What each subnet adds to the file: the model-region bytes from its start to the next
        subnet's (the one packed first -- last in the region -- carries what they share), of
        them its biases; its weight references, multiplier table and stored plans, each to where
        the next part of the file starts (the padding after it); its 64-byte table entry. With the
        header, input spec, metadata and pool they sum to the file."""
        from .tflite_io import _biased_ops
        order = sorted(range(len(self.subnets)), key=lambda i: self.subnets[i].model_offset)
        ends = {}
        for k, i in enumerate(order):
            s = self.subnets[i]
            ends[i] = (self.subnets[order[k + 1]].model_offset if k + 1 < len(order)
                       else s.model_offset + s.model_size + _pad(s.model_offset + s.model_size))
        # every part that follows the model region, by where it starts: what each takes runs to the
        # start of the next one (the subnet table, the file's end)
        table_off, n_sub = self.table_offset, len(self.subnets)
        parts = sorted([(s.refs_offset, 0, i) for i, s in enumerate(self.subnets)]
                       + [(s.mult_offset, 1, i) for i, s in enumerate(self.subnets) if s.mult_count]
                       + [(s.plan_offset, 2, i) for i, s in enumerate(self.subnets) if s.plan_offset]
                       + [(table_off, -1, -1), (table_off + SUBNET_ENTRY.size * n_sub, -1, -1), (len(self.data), -1, -1)])
        span = {(kind, i): parts[j + 1][0] - at for j, (at, kind, i) in enumerate(parts[:-1]) if i >= 0}
        out = []
        for i, s in enumerate(self.subnets):
            m = self.model(s)
            try:
                biases = sum(len(m.buffers[b.buffer].data) for _x, _w, b in _biased_ops(m)
                             if m.buffers[b.buffer].data is not None)
            except (IndexError, TypeError, AttributeError):
                raise self._err(f"subnet {s.name}: a bias names no buffer of its flatbuffer") from None
            row = {"model": ends[i] - s.model_offset, "biases": biases, "refs": span[0, i],
                   "multipliers": span.get((1, i), 0), "plan": span.get((2, i), 0), "entry": SUBNET_ENTRY.size}
            row["total"] = row["model"] + row["refs"] + row["multipliers"] + row["plan"] + row["entry"]
            out.append(row)
        return out

    def model(self, s: SubnetEntry):
        """Subnet s's flatbuffer as a ModelT with what the blob carries once or as multipliers
        given back (tensor names, weight scales: docs/blob-format.md), weights still empty."""
        from .tflite_io import read_model, restore_metadata, restore_names, restore_weight_scales
        try:
            m = read_model(self.model_bytes(s))
            m.subgraphs[0].tensors
        except Exception as e:   # the flatbuffer library raises assorted errors on garbage
            raise self._err(f"subnet {s.name}: flatbuffer does not parse ({type(e).__name__})") from None
        try:
            restore_weight_scales(restore_names(m, self.tensor_names), *self.multipliers(s))
            restore_metadata(m, subnet_metadata(s.width, s.resolution, s.classes, self.arch))
        except (ValueError, IndexError, TypeError, AttributeError) as e:
            raise self._err(f"subnet {s.name}: cannot restore its weight scales ({e})") from None
        return m

    def packed_model(self, s: SubnetEntry) -> bytes:
        """Subnet s's flatbuffer as pack_blob takes it: in the blob form of tflite_io.blob_form,
        its weight scales, names and metadata given back (pack_blob drops them again)."""
        from .tflite_io import blob_form, pack
        return pack(blob_form(self.model(s)))

    def unpack(self, s: SubnetEntry) -> bytes:
        """A standalone .tflite of subnet s: its flatbuffer with the pool slices filled in."""
        from .tflite_io import pack, standalone_form
        m = self.model(s)
        tensors = m.subgraphs[0].tensors
        for t, p, o, i in s.refs:
            if t >= len(tensors):
                raise self._err(f"subnet {s.name}: reference to tensor {t} of {len(tensors)}")
            ft = tensors[t]
            sl = np.ascontiguousarray(self.pool_array(p)[:o, ..., :i])
            shape = [int(x) for x in ft.shape]
            if int(np.prod(shape)) != sl.size or shape[0] != o:
                raise self._err(f"subnet {s.name}: tensor {t} shape {shape} does not match slice {sl.shape}")
            if not (0 < ft.buffer < len(m.buffers)):
                raise self._err(f"subnet {s.name}: tensor {t} has no buffer to fill")
            m.buffers[ft.buffer].data = sl.reshape(-1).view(np.uint8)
        return pack(standalone_form(m))

    def info(self) -> dict:
        return {
            "file_bytes": len(self.data), "version": VERSION, "arch": self.arch, "window": self.window,
            "axes": self.axes, "classes": self.classes, "subnets": len(self.subnets),
            "pool": [{"name": e.name, "shape": list(e.shape), "bytes": e.size} for e in self.pool],
            "pool_bytes": sum(e.size for e in self.pool),
            "table": [{"name": s.name, "width": round(s.width, 4), "resolution": s.resolution,
                       "channels": list(s.channels), "macs": s.macs, "params": s.params,
                       "arena_bytes": s.arena_bytes, "float_acc": s.float_acc, "int8_acc": s.int8_acc,
                       "model_bytes": p["model"], "private_bytes": p["total"], "refs": len(s.refs),
                       # the stored engine plan (docs/blob-format.md): none / "stored" / "stored+least_ram"
                       "plan": ("stored+least_ram" if s.least_plan_size else "stored") if s.plan_size else "none"}
                      for s, p in zip(self.subnets, self.private_bytes())],
            "input_spec": {"sample_rate_hz": self.spec.sample_rate_hz, "window": self.spec.window, "hop": self.spec.hop,
                           "raw": [f"{n} [{u}]" if u else n for n, u in self.spec.raw],
                           "channels": [f"{n} [{u}]" if u else n for n, u in self.spec.channels],
                           "chain": self.spec.describe(), "classes": self.spec.class_names},
            "meta": self.meta,
        }
