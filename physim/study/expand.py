"""Expand a study into points, validate every point through its target spec's own model, seed it.

Paths name fields of the base specs: ``device.dt``, ``device.elements.3.C`` (list index),
``protocol.eps``, ``protocol.task.n_steps`` (or ``task.n_steps``), ``measure.epochs`` and
``nonideal.<kind>[.<target>].<field>``, e.g. ``nonideal.dissipation.quality_factor`` or
``nonideal.adc.accumulator.bits`` (the target may be left out when there is one source of that
kind). A non-ideality source that the base does not have is added with its defaults.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, TypeAdapter, ValidationError

from physim import memory
from physim._version import __version__
from physim.instrument.sources import SOURCES
from physim.instrument.specs import NonidealSpec, load_nonideal, parse_nonideal
from physim.protocol.specs import load_protocol, parse_protocol
from physim.seeding import replicate_chip
from physim.spec_base import SpecError, format_validation_error
from physim.specs import load_spec, parse_spec
from physim.study.measures import metric_info
from physim.study.point import PointTask
from physim.study.spec import MEASURE_KINDS, MeasureSpec, StudyError, StudySpec

ROOTS = ("device", "protocol", "nonideal", "measure")
#: source kind → its spec model, and every converter target, from the source registry
SOURCE_MODELS: dict[str, type[BaseModel]] = {k: cls.spec_class for k, cls in SOURCES.items()}
TARGETS = tuple(dict.fromkeys(t for _, cls in SOURCES.items() for t in cls.targets if t))
_MEASURE: TypeAdapter = TypeAdapter(MeasureSpec)
# SeedSequence spawn key of the random/LHS sampling stream, apart from every replicate's keys
_SAMPLING_KEY = 2**32 - 1


def _resolve_base(spec: StudySpec) -> dict[str, dict]:
    b = spec.base
    dev = load_spec(b.device) if isinstance(b.device, str) else parse_spec(b.device, "base.device")
    pro = (
        load_protocol(b.protocol)
        if isinstance(b.protocol, str)
        else parse_protocol(b.protocol, "base.protocol")
    )
    if b.nonideal is None:
        non = NonidealSpec()
    elif isinstance(b.nonideal, str):
        non = load_nonideal(b.nonideal)
    else:
        non = parse_nonideal(b.nonideal, "base.nonideal")
    return {
        "device": dev.model_dump(),
        "protocol": pro.model_dump(),
        "nonideal": non.model_dump(),
        "measure": spec.measure.model_dump(),
    }


def _fields_msg(model: type[BaseModel]) -> str:
    names = [f for f in model.model_fields if f != "kind"]
    return ", ".join(names) if names else "none (it takes no options)"


def _other_measures_with(field: str) -> str:
    """``; ...`` naming the measure kinds that have ``field`` (a path into another measure)."""
    from physim.study.measures import MEASURES

    kinds = [k for k in MEASURES.names() if field in MEASURES.get(k).spec_class.model_fields]
    if not kinds:
        return ""
    return f"; {field} is an option of the {' and '.join(kinds)} measure: set [measure] kind first"


def _segments(path: str) -> list[str]:
    segs = path.split(".")
    if segs[0] == "task":
        segs = ["protocol", *segs]
    if segs[0] not in ROOTS or len(segs) < 2 or any(not s for s in segs):
        raise StudyError(
            f"path {path!r}: must start with one of {', '.join(ROOTS)} (or task.) and name a "
            "field, e.g. nonideal.adc.bits or protocol.eps"
        )
    return segs


def _model_of(obj: Any) -> type[BaseModel] | None:
    return type(obj) if isinstance(obj, BaseModel) else None


def locate(trees: dict[str, dict], objs: dict[str, Any], path: str) -> tuple[Any, Any, str]:
    """Walk ``path`` in the dict trees, checking each part against the pydantic models.

    Returns ``(container, key, description)``: ``container[key]`` is the field to set and
    ``description`` its field description (for units). Raises :class:`StudyError` listing the
    valid fields at the first unknown part.
    """
    segs = _segments(path)
    root = segs[0]
    node: Any = trees[root]
    obj: Any = objs[root]
    rest = segs[1:]
    if root == "nonideal":
        kind = rest[0]
        if kind not in SOURCE_MODELS:
            raise StudyError(
                f"path {path!r}: {kind!r} is not a non-ideality source; valid kinds: "
                f"{', '.join(SOURCE_MODELS)}"
            )
        target = rest[1] if len(rest) > 2 and rest[1] in TARGETS else None
        rest = rest[2:] if target else rest[1:]
        sources = node["sources"]
        idx = [
            i
            for i, s in enumerate(sources)
            if s["kind"] == kind and (target is None or s.get("target") == target)
        ]
        if len(idx) > 1:
            raise StudyError(
                f"path {path!r}: the base has {len(idx)} {kind} sources; name the target, e.g. "
                f"nonideal.{kind}.{sources[idx[0]].get('target')}.{rest[-1] if rest else 'bits'}"
            )
        if not idx:
            fields = SOURCE_MODELS[kind].model_fields
            defaults = {
                n: f.get_default(call_default_factory=True)
                for n, f in fields.items()
                if not f.is_required()
            }
            new = {**defaults, "kind": kind, **({"target": target} if target else {})}
            # the swept field gets the axis' values; any other field without a default is missing
            swept = rest[0] if rest else None
            missing = [n for n, f in fields.items() if f.is_required() and n not in new]
            missing = [n for n in missing if n != swept]
            if missing:
                targets = [t for t in SOURCES.get(kind).targets if t]
                fix = (
                    "name its target in the path: "
                    + " or ".join(f"nonideal.{kind}.{t}.{swept or '<field>'}" for t in targets)
                    if missing == ["target"] and targets
                    else f"add a {kind} source with {', '.join(missing)} to the base's nonideal"
                )
                raise StudyError(
                    f"path {path!r}: the base has no {kind} source, and a new one needs "
                    f"{', '.join(missing)}; {fix}"
                )
            sources.append(new)
            idx = [len(sources) - 1]
            node, obj = new, None
        else:
            node, obj = sources[idx[0]], obj.sources[idx[0]] if obj is not None else None
        model: type[BaseModel] | None = SOURCE_MODELS[kind]
        if not rest:
            raise StudyError(
                f"path {path!r}: name a field of the {kind} source; valid fields: "
                f"{_fields_msg(SOURCE_MODELS[kind])}"
            )
    else:
        model = _model_of(obj)
    desc = ""
    for k, seg in enumerate(rest):
        last = k == len(rest) - 1
        where = ".".join(segs[: len(segs) - len(rest) + k]) or root
        if isinstance(node, list):
            if not seg.isdigit() or int(seg) >= len(node):
                raise StudyError(
                    f"path {path!r}: {where} is a list of {len(node)}; use an index 0..{len(node) - 1}"
                )
            key: Any = int(seg)
            child_obj = obj[key] if obj is not None else None
        else:
            if model is None or seg not in model.model_fields:
                valid = _fields_msg(model) if model is not None else "(none)"
                hint = _other_measures_with(seg) if root == "measure" else ""
                raise StudyError(
                    f"unknown path {path!r}: {where} has no field {seg!r}; valid fields: "
                    f"{valid}{hint}"
                )
            key = seg
            desc = model.model_fields[seg].description or ""
            child_obj = getattr(obj, seg, None) if obj is not None else None
        if last:
            return node, key, desc
        if node[key] is None:
            raise StudyError(f"path {path!r}: {where}.{seg} is not set in the base; set it first")
        node, obj = node[key], child_obj
        model = _model_of(obj) or model
    raise AssertionError("unreachable")


def units_of(description: str) -> str:
    """The unit at the end of a field description ("bath temperature T, K" → "K")."""
    d = description.strip()
    if d.endswith("(1)"):
        return "1"
    if "," in d:
        tail = d.rsplit(",", 1)[1].strip()
        if tail and len(tail.split()) <= 2:
            return tail
    return "1"


def _long_name(description: str, dim: str) -> str:
    """The first clause of a field description, without its unit."""
    d = description.split(";")[0].split(",")[0].replace("(1)", "").strip()
    return d or dim


def axis_values(axis, spec: StudySpec) -> list:
    """The values of one grid/zip axis (raises on an empty axis)."""
    if axis.values is not None:
        vals = list(axis.values)
    elif axis.linspace is not None:
        vals = np.linspace(*axis.linspace).tolist()
    elif axis.logspace is not None:
        a, b, n = axis.logspace
        if not (a > 0 and b > 0):
            raise StudyError(
                f"axis {axis.path!r}: logspace start and stop must be > 0 (values, not "
                f"exponents), got ({a}, {b}); use linspace for values <= 0"
            )
        vals = np.logspace(math.log10(a), math.log10(b), n).tolist()
        if vals:  # the endpoints as written (10**log10(400) is 400.0000000000001)
            vals[0], vals[-1] = (float(a), float(b)) if n > 1 else (float(a), float(a))
    else:
        start, stop, *step = axis.range
        st = step[0] if step else 1
        if st == 0:
            raise StudyError(f"axis {axis.path!r}: range step must not be 0")
        vals = list(range(start, stop + (1 if st > 0 else -1), st))
    if not vals:
        raise StudyError(
            f"axis {axis.path!r} has no values; give at least one (values = [...], "
            "linspace/logspace with num >= 1, or a range whose stop is reachable)"
        )
    return vals


def _length(axis) -> int:
    if axis.linspace is not None or axis.logspace is not None:
        return int((axis.linspace or axis.logspace)[2])
    if axis.range is not None:
        start, stop, *step = axis.range
        st = step[0] if step else 1
        return max(0, len(range(start, stop + (1 if st > 0 else -1), st))) if st else 0
    return len(axis.values)


def count_points(spec: StudySpec) -> int:
    """Points of the study (combinations × replicates), without expanding it."""
    if spec.combine in ("random", "latin-hypercube"):
        n = spec.n_samples or 0
    elif spec.combine == "zip":
        n = _length(spec.axes[0]) if spec.axes else 1
    else:
        n = math.prod(_length(a) for a in spec.axes)
    return n * spec.replicates


def _sampled(spec: StudySpec, is_int: list[bool]) -> list[tuple]:
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(_SAMPLING_KEY,)))
    n = spec.n_samples
    cols = []
    for axis, integer in zip(spec.axes, is_int, strict=True):
        if spec.combine == "latin-hypercube":
            u = (rng.permutation(n) + rng.random(n)) / n
        else:
            u = rng.random(n)
        if axis.loguniform is not None:
            lo, hi = axis.loguniform
            if not (lo > 0 and hi > 0):
                raise StudyError(f"axis {axis.path!r}: loguniform bounds must be > 0, got {lo, hi}")
            x = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
        else:
            lo, hi = axis.uniform
            x = lo + u * (hi - lo)
        cols.append([int(round(v)) for v in x] if integer else x.tolist())
    return list(zip(*cols, strict=True))


@dataclass(frozen=True)
class AxisInfo:
    dim: str
    path: str
    units: str
    long_name: str
    log_scale: bool
    values: list | None  # grid/zip values; None for sampled axes


@dataclass(frozen=True)
class Plan:
    """An expanded, validated study. Point ``i`` is combination ``i // R``, replicate ``i % R``."""

    spec: StudySpec
    axes: tuple[AxisInfo, ...]
    combos: tuple[tuple, ...]
    payloads: tuple[dict[str, str], ...]  # per combination: device/protocol/nonideal/measure JSON
    fingerprint: str
    n_groups: tuple[str, ...]

    @property
    def n_points(self) -> int:
        return len(self.combos) * self.spec.replicates

    @property
    def grid(self) -> bool:
        return self.spec.combine == "grid"

    def coords(self, i: int) -> dict[str, Any]:
        c = self.combos[i // self.spec.replicates]
        out = {a.dim: v for a, v in zip(self.axes, c, strict=True)}
        out["replicate"] = i % self.spec.replicates
        return out

    def task(self, i: int) -> PointTask:
        """The task input of point ``i``: spec JSON with every seed resolved."""
        spec = self.spec
        rep = i % spec.replicates
        pl = self.payloads[i // spec.replicates]
        non = NonidealSpec.model_validate_json(pl["nonideal"])
        non, seed = replicate_chip(non, rep, spec.seed)
        return PointTask(
            index=i,
            device=pl["device"],
            protocol=pl["protocol"],
            nonideal=non.model_dump_json(),
            measure=pl["measure"],
            seed=seed,
        )


def _validate(root: str, tree: dict):
    if root == "device":
        return parse_spec(tree, "(point)")
    if root == "protocol":
        return parse_protocol(tree, "(point)")
    if root == "nonideal":
        return parse_nonideal(tree, "(point)")
    try:
        return _MEASURE.validate_python(tree)
    except ValidationError as err:
        raise SpecError(
            format_validation_error(err, "measure", "(point)", tags={"kind": MEASURE_KINDS})
        ) from None


def _detail(err: Exception) -> str:
    lines = [ln.strip() for ln in str(err).splitlines()]
    return "; ".join(ln for ln in lines[1:] or lines if ln)


#: memory a study holds per point while it expands and runs, bytes: ~0.9 KiB expanding
#: (measured) plus its journal entry and its row of every metric array, rounded up
BYTES_PER_POINT = 4096


def expand(spec: StudySpec) -> Plan:
    """Expand and validate every point of ``spec`` before anything runs."""
    if spec.seeding != "sequence":
        raise StudyError(
            f"study {spec.name!r}: seeding = {spec.seeding!r} is no longer run (it gave every "
            "noise source the same seed, seed + replicate); delete the line 'seeding = "
            f"{spec.seeding!r}' from the study file: replicate r is then physim.seeding."
            "replicate_chip(seed, r), the same chip as in `physim budget` and `physim "
            "export-spice --replicate r`"
        )
    n = count_points(spec)
    if n > spec.max_points:
        raise StudyError(
            f"study {spec.name!r} has {n:,} points (axes {' × '.join(str(_length(a)) for a in spec.axes)}"
            f" × {spec.replicates} replicates), over max_points = {spec.max_points:,}; shorten "
            "the axes or raise max_points in the study file"
        )
    # the combinations and their payload references (~0.9 KiB a point, measured with
    # tracemalloc on a 20,000-point grid), then the journal and result arrays of every point
    memory.check(
        n * BYTES_PER_POINT,
        f"study {spec.name!r} of {n:,} points",
        "shorten the axes, fewer replicates, or split the study",
    )
    base = _resolve_base(spec)
    objs = {
        "device": parse_spec(base["device"]),
        "protocol": parse_protocol(base["protocol"]),
        "nonideal": parse_nonideal(base["nonideal"]),
        "measure": spec.measure,
    }
    for path, value in spec.base.set.items():
        node, key, _ = locate(base, objs, path)
        node[key] = value
    for root in ROOTS:
        try:
            objs[root] = _validate(root, base[root])
        except SpecError as err:
            raise StudyError(f"base.set makes the {root} spec invalid: {_detail(err)}") from None
    infos, roots, is_int = [], [], []
    for axis in spec.axes:
        probe = copy.deepcopy(base)
        node, key, desc = locate(probe, objs, axis.path)
        # (a field of a source the axis adds has no value yet: its values say what it is)
        probe_value = node[key] if not isinstance(node, dict) or key in node else None
        if probe_value is None and axis.values is not None:
            probe_value = axis.values[0]
        is_int.append(isinstance(probe_value, int) and not isinstance(probe_value, bool))
        roots.append(_segments(axis.path)[0])
        infos.append(
            AxisInfo(
                axis.dim,
                axis.path,
                axis.units or units_of(desc),
                axis.long_name or _long_name(desc, axis.dim),
                axis.log_scale,
                None if axis.sampled else axis_values(axis, spec),
            )
        )
    if spec.combine == "grid":
        combos = list(itertools.product(*(a.values for a in infos)))
    elif spec.combine == "zip":
        lens = {a.dim: len(a.values) for a in infos}
        if len(set(lens.values())) > 1:
            raise StudyError(f"combine = 'zip' needs axes of equal length, got {lens}")
        combos = list(zip(*(a.values for a in infos), strict=True))
    else:
        combos = _sampled(spec, is_int)
    cache: dict[tuple, str] = {}
    payloads = []
    for ci, combo in enumerate(combos):
        trees = copy.deepcopy(base)
        for axis, v in zip(spec.axes, combo, strict=True):
            node, key, _ = locate(trees, objs, axis.path)
            node[key] = v
        pl = {}
        for root in ROOTS:
            mine = [
                (a.path, v) for a, r, v in zip(spec.axes, roots, combo, strict=True) if r == root
            ]
            ck = (root, json.dumps(mine, default=str))
            if ck not in cache:
                try:
                    cache[ck] = _validate(root, trees[root]).model_dump_json()
                except SpecError as err:
                    at = ", ".join(f"{a.dim} = {v!r}" for a, v in zip(infos, combo, strict=True))
                    vals = ", ".join(f"{p} = {v!r}" for p, v in mine)
                    raise StudyError(
                        f"point {ci} of {len(combos)} ({at}): {vals} is rejected by the {root} "
                        f"spec: {_detail(err)}; change the axis values"
                    ) from None
            pl[root] = cache[ck]
        payloads.append(pl)
    h = hashlib.sha256(
        json.dumps(
            [spec.model_dump_json(exclude={"executor"}), payloads[0] if payloads else base],
            default=str,
        ).encode()
    ).hexdigest()
    groups = (
        tuple(parse_spec(json.loads(payloads[0]["device"])).build().slices()) if payloads else ()
    )
    taken = set(metric_info(spec.measure.kind, groups)) | {"failed", "error", "seconds", "point"}
    clash = sorted({a.dim for a in infos} & taken)
    if clash:
        raise StudyError(
            f"axis name(s) {', '.join(clash)} clash with result variables of the same name; set "
            f"name = '...' on those axes (e.g. name = 'L' for task.n_steps)"
        )
    return Plan(spec, tuple(infos), tuple(combos), tuple(payloads), h, groups)


def describe(plan: Plan, n_first: int = 5) -> str:
    """Point count and the first points, for ``--dry-run``."""
    s = plan.spec
    lines = [
        f"study {s.name!r}: {plan.n_points:,} points = {len(plan.combos):,} combinations "
        f"({s.combine}) × {s.replicates} replicates; measure = {s.measure.kind}; physim {__version__}"
    ]
    for a in plan.axes:
        vals = a.values if a.values is not None else "(sampled)"
        lines.append(f"  axis {a.dim} [{a.units}] = {a.path}: {vals}")
    for i in range(min(n_first, plan.n_points)):
        lines.append(f"  point {i}: {plan.coords(i)}")
    return "\n".join(lines)
