"""Which subnets a device gets: all of them, the Pareto front of validation int8 accuracy against
cost on the M4, a list, or the best set that fits a flash budget together with the firmware
(`slimhar quantize --subnets`, `slimhar blob select`).

Cost: the subnet's latency measured on the board when a table is given (`slimhar bench engine
--json`, or `slimhar device bench --json`), else an estimate of one instruction per MAC -- what
the DSP kernels take on the widest subnets (docs/results.md §4; narrow subnets take more per
MAC, so the estimate favours them slightly) -- and it is said so.

"Best set under a flash budget": the accuracy the policy can reach at a latency budget is a
staircase over the chosen front (the most accurate chosen subnet at or under the budget); the
set kept maximizes the area under that staircase over log-cost, from the cheapest front subnet
(always kept: the policy's fallback) to the dearest. Subnets are dropped greedily, each time the
one whose removal loses the least area per byte it saves, until blob + firmware fit (the bytes a
subnet saves are those it adds to the packed blob; the models share parts of their flatbuffers,
so the size is packed again whenever the running estimate says it fits).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .blob import REF_ENTRY, SUBNET_ENTRY, Blob, BlobError, repack

FIRMWARE_BYTES = 80896   # the emulated board's firmware without its blob: 80,344 B measured (slimhar bench engine, 2026-12-08, the micro-kernel's own requantization), rounded up to 79 KiB; tests/test_device.py checks it covers the firmware as built


def costs(blob: Blob, latency_json=None) -> tuple[dict[int, float], str]:
    """subnet index -> cost, and what the cost is."""
    if latency_json:
        try:
            d = json.loads(Path(latency_json).read_text())
        except (OSError, ValueError) as e:
            raise BlobError(f"{latency_json}: not a latency table ({e})") from None
        rows = d.get("rows", d) if isinstance(d, dict) else d
        by_name = {}
        for r in rows if isinstance(rows, list) else []:
            name = r.get("name") or r.get("subnet")
            val = r.get("instructions") or r.get("per_run") or r.get("dsp_instructions") or r.get("us")
            if isinstance(name, str) and isinstance(val, (int, float)) and val > 0:
                by_name[name] = float(val)
        missing = [s.name for s in blob.subnets if s.name not in by_name]
        if missing:
            raise BlobError(f"{latency_json}: no latency for {', '.join(missing[:4])}"
                            f"{' ...' if len(missing) > 4 else ''}")
        return {i: by_name[s.name] for i, s in enumerate(blob.subnets)}, f"measured ({Path(latency_json).name})"
    return {i: float(s.macs) for i, s in enumerate(blob.subnets)}, "estimated: 1 instruction per MAC"


def pareto(blob: Blob, cost: dict[int, float]) -> list[int]:
    """The subnets no other beats on both validation int8 accuracy and cost, cheapest first."""
    order = sorted(range(len(blob.subnets)), key=lambda i: (cost[i], -blob.subnets[i].int8_acc, blob.subnets[i].name))
    front, best = [], -1.0
    for i in order:
        if blob.subnets[i].int8_acc > best:
            front.append(i)
            best = blob.subnets[i].int8_acc
    return front


def staircase_area(blob: Blob, chosen: list[int], cost: dict[int, float], lo: float, hi: float) -> float:
    """Area under 'best accuracy reachable at budget c' over log c in [lo, hi]."""
    pts = sorted(chosen, key=lambda i: cost[i])
    area, best = 0.0, 0.0
    for k, i in enumerate(pts):
        best = max(best, blob.subnets[i].int8_acc)
        c0 = max(lo, cost[i])
        c1 = min(hi, cost[pts[k + 1]]) if k + 1 < len(pts) else hi
        if c1 > c0:
            area += best * (math.log(c1) - math.log(c0))
    return area


def _p16(n: int, align: int = 16) -> int:
    """n rounded up to a multiple of `align` (a section's end, docs/blob-format.md)."""
    return n + (-n) % align


def _region(blob: Blob, chosen: list[int]) -> tuple[int, int, dict[int, int]]:
    """The model region the chosen subnets' flatbuffers make together (tflite_io.pack_region):
    its length, the length of the metadata that goes with it (whose tensor_names are the list the
    chosen models share, not necessarily the source blob's), and the bytes each model adds (from
    its start to the next one's)."""
    from .blob import blob_metadata, blob_rules, common_names
    from .tflite_io import pack_region, read_model
    models = [read_model(blob.packed_model(blob.subnets[i])) for i in chosen]   # as pack_blob gets them
    names = common_names(models)
    for i, m in zip(chosen, models):                                           # then drops the same
        s = blob.subnets[i]
        blob_rules(m, *blob.multipliers(s), names, s.width, s.resolution, s.classes, blob.arch)
    region, starts = pack_region(models)
    order = sorted(range(len(chosen)), key=lambda k: starts[k])
    adds = {chosen[k]: (starts[order[j + 1]] if j + 1 < len(order) else len(region)) - starts[k]
            for j, k in enumerate(order)}
    return len(region), len(blob_metadata(blob.meta, names)), adds


def _plan_sizes(blob: Blob, i: int) -> tuple[int, int, int]:
    """Subnet i's stored plan in a repacked blob (quantize/plan.py): its size, which depends on
    the ops and their tensors only, not on where the region or the pool put them (the size the
    blob stores, or, for a blob written before stored plans, computed once), and its arena +
    scratch with the fastest tiles and at the least -- whether the least-RAM plan follows it
    depends on the set of subnets packed together (plan.stored_plans)."""
    from .arena import memory_plan
    from .plan import NoStoredPlan, stored_plan
    cache = blob.__dict__.setdefault("_plan_sizes", {})
    if i not in cache:
        s = blob.subnets[i]
        size = s.plan_size
        if not size:
            try:
                size = len(stored_plan(blob, s))
            except NoStoredPlan:
                size = 0
        fast, least = memory_plan(blob, s), memory_plan(blob, s, ram_limit=1)
        cache[i] = (size, fast.arena_bytes + fast.scratch_bytes, least.arena_bytes + least.scratch_bytes)
    return cache[i]


def blob_bytes(blob: Blob, chosen: list[int], region: tuple[int, int] | None = None) -> int:
    """len(repack(blob, chosen, trim=True)) without writing it: the 64-byte header, then the
    sections as docs/blob-format.md aligns them, the pool cut to the slices in use, the
    chosen models' region and metadata (`region`: their lengths, _region's first two, when known)."""
    from .blob import POOL_ENTRY
    from .input_spec import pack as pack_spec
    used: dict[int, tuple[int, int]] = {}
    for i in chosen:
        for _t, p, o, n in blob.subnets[i].refs:
            uo, ui = used.get(p, (0, 0))
            used[p] = (max(uo, o), max(ui, n))
    pool = 0
    for p, (o, n) in used.items():
        dims = blob.pool[p].shape
        pool += _p16(o * math.prod(dims[1:-1]) * n if len(dims) > 1 else o)
    region, meta = _region(blob, chosen)[:2] if region is None else region
    plans = {i: _plan_sizes(blob, i) for i in chosen}
    least_limit = max(least for _, _, least in plans.values())      # plan.least_ram_limit of the set
    # after the region: each subnet's references and multiplier table (4-byte aligned), the
    # table, then the stored plans one after another (pack_blob)
    tables = sum(_p16(REF_ENTRY.size * len(blob.subnets[i].refs) + 5 * blob.subnets[i].mult_count, 4) for i in chosen)
    stored = sum(size * (2 if size and fast > least_limit else 1) for size, fast, _ in plans.values())
    return (64 + _p16(len(pack_spec(blob.spec))) + _p16(meta) + pool + _p16(POOL_ENTRY.size * len(used)) + _p16(region)
            + _p16(tables) + SUBNET_ENTRY.size * len(chosen) + _p16(stored))


def fit(blob: Blob, candidates: list[int], cost: dict[int, float], flash_budget: int,
        firmware_bytes: int = FIRMWARE_BYTES) -> list[int]:
    """The best subset of `candidates` whose trimmed blob + firmware fit `flash_budget`."""
    chosen = sorted(candidates, key=lambda i: cost[i])
    cheapest = chosen[0]
    lo, hi = cost[cheapest], max(cost[i] for i in chosen) * 1.0001

    def measure(ch):           # in the order repack packs them: by index
        region, meta, adds = _region(blob, sorted(ch))
        return blob_bytes(blob, sorted(ch), (region, meta)), adds

    size, adds = measure(chosen)
    estimate = size
    while size + firmware_bytes > flash_budget:
        if len(chosen) == 1:
            raise BlobError(f"even the cheapest subnet ({blob.subnets[cheapest].name}: blob {size:,} B) and the "
                            f"firmware ({firmware_bytes:,} B) exceed the flash budget of {flash_budget:,} B")
        area = staircase_area(blob, chosen, cost, lo, hi)
        best = None
        for i in chosen:
            if i == cheapest:
                continue
            rest = [j for j in chosen if j != i]
            # what dropping it saves: its references, multipliers and the region bytes it adds
            # (models share parts, so this is measured again once the estimate fits)
            saves = (adds[i] + _p16(REF_ENTRY.size * len(blob.subnets[i].refs)) + _p16(5 * blob.subnets[i].mult_count)
                     + SUBNET_ENTRY.size)
            loss = (area - staircase_area(blob, rest, cost, lo, hi)) / max(1, saves)
            if best is None or (loss, -saves) < (best[0], -best[2]):   # ties: the one that saves the most
                best = (loss, i, saves)
        _, drop, saves = best
        chosen.remove(drop)
        estimate -= saves
        if estimate + firmware_bytes <= flash_budget or len(chosen) == 1:
            size, adds = measure(chosen)
            estimate = size
        else:
            adds.pop(drop)
    return sorted(chosen)


def resolve(blob: Blob, which: str, cost: dict[int, float]) -> list[int]:
    """all | pareto | a comma-separated list of subnet names (w010_t96) or indices."""
    if which == "all":
        return list(range(len(blob.subnets)))
    if which == "pareto":
        return sorted(pareto(blob, cost))
    names = {s.name: i for i, s in enumerate(blob.subnets)}
    out = []
    for tok in which.split(","):
        tok = tok.strip()
        if tok in names:
            out.append(names[tok])
        elif tok.isdigit() and int(tok) < len(blob.subnets):
            out.append(int(tok))
        else:
            raise BlobError(f"{blob.source}: no subnet {tok!r} (names like {blob.subnets[0].name}, or indices "
                            f"0..{len(blob.subnets) - 1}; or all, pareto)")
    if len(set(out)) != len(out):
        raise BlobError(f"{blob.source}: a subnet is listed twice in {which!r}")
    return sorted(out)


def select(blob: Blob, which: str = "all", flash_budget: int | None = None, latency_json=None,
           firmware_bytes: int = FIRMWARE_BYTES) -> tuple[bytes, dict]:
    """The selected blob's bytes and what was chosen."""
    cost, how = costs(blob, latency_json)
    chosen = resolve(blob, which, cost)
    if flash_budget is not None:
        chosen = fit(blob, chosen, cost, flash_budget, firmware_bytes)
    data = repack(blob, chosen, trim=True)
    front = set(pareto(blob, cost))
    info = {"source": blob.source, "which": which, "cost": how, "flash_budget": flash_budget,
            "firmware_bytes": firmware_bytes, "blob_bytes": len(data), "full_blob_bytes": len(blob.data),
            "subnets": [{"name": blob.subnets[i].name, "macs": blob.subnets[i].macs, "cost": cost[i],
                         "val_int8_acc": blob.subnets[i].int8_acc, "pareto": i in front} for i in chosen]}
    return data, info
