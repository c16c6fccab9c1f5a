"""Error budget of a chip: which non-ideality costs what, how much of each it tolerates, and ε.

Every number comes from one evaluation path: a *point* (device, protocol and non-ideality spec
JSON, replicate seeds) run by the study engine's pure task :func:`physim.study.task.run_point`,
either in this process or through any ``concurrent.futures.Executor`` (the study engine's local
pool or dask). A replicate is a chip: its seeds come from :func:`physim.seeding.replicate_chip`,
exactly as in a study and in ``export-spice --replicate``, so replicate r is the same chip at
every point.

The error of a measured gradient is taken against the *as-built* twin (the chip as made,
mismatch and drift applied), so that mismatch, which does not bias in-situ RHEL, shows as the
model error it is rather than as measurement error.

* :func:`attribution` — error with each source alone, with all but one, and with all;
* :func:`tolerances` — per source, the level (Q, bits, σ, …) where the cosine vs the as-built
  twin crosses the target, by a bracketing search on a log scale per replicate;
* :func:`eps_curve` — error vs ε with every source on, and its minimum.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

import numpy as np

from physim.device import Device
from physim.instrument.sources import SOURCES, Level, source_label
from physim.instrument.sources.dissipation import TEMPERATURE  # noqa: F401 (re-exported)
from physim.instrument.specs import NonidealSpec
from physim.protocol.specs import ProtocolSpec
from physim.seeding import replicate_chip
from physim.study.engine import run_tasks
from physim.study.point import PointTask
from physim.study.task import run_point

#: bracketing stops when the bracket is narrower than this factor (continuous levels)
LEVEL_RESOLUTION = 1.05
#: each expansion step of the bracket multiplies (or divides) the level by this factor
EXPAND_FACTOR = 10.0


#: "kind" or "kind/target" → the searchable knob, from each source class's declared levels
LEVELS: dict[str, Level] = {
    (f"{kind}/{t}" if t else kind): lv
    for kind, cls in SOURCES.items()
    for t, lv in cls.levels.items()
}


def level_of(source) -> Level | None:
    """The searchable knob of a source (``None`` when it has none, e.g. the numerics mode)."""
    return SOURCES.get(source.kind).level_of(source)


def _value(source, lv: Level) -> float:
    v = getattr(source, lv.field)
    return float(v if not isinstance(v, list) else np.min(v) if lv.worse < 0 else np.max(v))


# ---------------------------------------------------------------------------- one evaluation path
Runner = Callable[[list[PointTask]], list[dict]]


def make_runner(executor: Executor | None = None) -> Runner:
    """Run a batch of point tasks through ``executor`` (or here, in order) and return results."""

    def run(tasks: list[PointTask]) -> list[dict]:
        if executor is None:
            return [run_point(t) for t in tasks]
        # the study engine's submission loop; results arrive in any order, keyed by index
        out: list[dict | None] = [None] * len(tasks)

        def keep(r: dict) -> None:
            out[r["index"]] = r

        run_tasks(executor, [t.with_(index=i) for i, t in enumerate(tasks)], keep)
        return out

    return run


def point_task(
    device: Device, protocol: ProtocolSpec, nonideal: NonidealSpec, replicate: int, seed: int = 0
) -> PointTask:
    """The study task of one point (the record ``physim.study.expand.Plan.task`` builds)."""
    non, inst_seed = replicate_chip(nonideal, replicate, seed)
    return PointTask(
        index=replicate,
        device=device.spec.model_dump_json(),
        protocol=protocol.model_dump_json(),
        nonideal=non.model_dump_json(),
        measure=json.dumps({"kind": "gradient"}),
        seed=inst_seed,
    )


def _metric(r: dict, name: str) -> float:
    return float(r["metrics"].get(name, math.nan)) if not r["error"] else math.nan


def with_sources(nonideal: NonidealSpec, keep: Sequence[int], name: str) -> NonidealSpec:
    return nonideal.model_copy(
        update={"name": name, "sources": [nonideal.sources[i] for i in keep]}
    )


# ---------------------------------------------------------------------------- (a) attribution
def attribution(
    device: Device,
    protocol: ProtocolSpec,
    nonideal: NonidealSpec,
    *,
    replicates: int = 3,
    seed: int = 0,
    run: Runner | None = None,
) -> list[dict]:
    """Gradient error vs the as-built twin with all sources, each alone and all but each.

    Returns one row per configuration: ``config`` ("all", "alone", "all_but"), ``source``,
    mean and std over replicates of ``rel_error`` and ``cosine``, and the mean relative error
    per parameter group.
    """
    run = run or make_runner()
    n = len(nonideal.sources)
    configs: list[tuple[str, str, list[int]]] = [("all", "all", list(range(n)))]
    for i, s in enumerate(nonideal.sources):
        configs.append(("alone", source_label(s), [i]))
        if n > 1:
            configs.append(("all_but", source_label(s), [j for j in range(n) if j != i]))
    tasks = [
        point_task(device, protocol, with_sources(nonideal, keep, f"{c}:{lab}"), r, seed)
        for c, lab, keep in configs
        for r in range(replicates)
    ]
    res = run(tasks)
    groups = list(device.slices())
    rows = []
    for k, (c, lab, _) in enumerate(configs):
        part = res[k * replicates : (k + 1) * replicates]
        err = np.array([_metric(r, "rel_error_as_built") for r in part])
        cos = np.array([_metric(r, "cosine_as_built") for r in part])
        rows.append(
            {
                "config": c,
                "source": lab,
                "rel_error": float(np.mean(err)),
                "rel_error_std": float(np.std(err)),
                "cosine": float(np.mean(cos)),
                "cosine_vs_nominal": float(np.mean([_metric(r, "cosine") for r in part])),
                "groups": {
                    g: float(np.mean([_metric(r, f"rel_error_as_built_{g}") for r in part]))
                    for g in groups
                },
                "errors": sorted({r["error"] for r in part if r["error"]}),
            }
        )
    return rows


# ---------------------------------------------------------------------------- (b) tolerances
def _with_level(source, lv: Level, value: float):
    v = int(round(value)) if lv.integer else float(value)
    return source.model_copy(update={lv.field: v})


def _passes(r: dict, target: float) -> bool:
    c = _metric(r, "cosine_as_built")
    return bool(np.isfinite(c) and c >= target)


def tolerance(
    device: Device,
    protocol: ProtocolSpec,
    nonideal: NonidealSpec,
    index: int,
    *,
    target: float = 0.99,
    replicates: int = 3,
    seed: int = 0,
    run: Runner | None = None,
    level: Level | None = None,
) -> dict:
    """The level of source ``index`` (alone) at which the cosine vs the as-built twin crosses
    ``target``: the worst level that still passes, found per replicate by expanding a bracket
    on a log scale from the preset level and bisecting it in log space.

    Every replicate advances in lockstep, so each step is one batch of ``replicates`` points.
    ``level`` overrides the source's knob (e.g. :data:`TEMPERATURE` of a dissipation source).
    """
    run = run or make_runner()
    src = nonideal.sources[index]
    lv = level or level_of(src)
    label = source_label(src) + (f"/{lv.field}" if level is not None else "")
    if lv is None:
        return {
            "source": label,
            "level": None,
            "unit": "",
            "spread": None,
            "limiting": False,
            "note": f"no level to search ({src.kind} has none)",
        }
    start = min(max(_value(src, lv), lv.lo), lv.hi)
    if start <= 0:
        start = lv.lo if lv.worse > 0 else lv.hi

    def evaluate(levels: list[float]) -> list[bool]:
        tasks = [
            point_task(
                device,
                protocol,
                nonideal.model_copy(
                    update={"name": f"{label}={v:g}", "sources": [_with_level(src, lv, v)]}
                ),
                r,
                seed,
            )
            for r, v in enumerate(levels)
        ]
        return [_passes(x, target) for x in run(tasks)]

    # state per replicate: good = a passing level, bad = a failing level (None: not yet seen)
    good: list[float | None] = [None] * replicates
    bad: list[float | None] = [None] * replicates
    cur = [start] * replicates
    edge = [False] * replicates  # hit the search bound without the status flipping
    for _ in range(64):
        active = [
            r
            for r in range(replicates)
            if not edge[r]
            and (good[r] is None or bad[r] is None or not _narrow(good[r], bad[r], lv))
        ]
        if not active:
            break
        ok = evaluate([cur[r] for r in range(replicates)])
        for r in active:
            if ok[r]:
                good[r] = cur[r]
            else:
                bad[r] = cur[r]
            if good[r] is not None and bad[r] is not None:
                cur[r] = _midpoint(good[r], bad[r], lv)
                continue
            # expand towards the other status: worse if passing, better if failing
            direction = lv.worse if ok[r] else -lv.worse
            nxt = cur[r] + 4 * direction if lv.integer else cur[r] * EXPAND_FACTOR**direction
            nxt = min(max(nxt, lv.lo), lv.hi)
            if nxt == cur[r]:
                edge[r] = True
            cur[r] = nxt
    levels, notes = [], set()
    for r in range(replicates):
        if good[r] is not None and bad[r] is not None:
            levels.append(good[r])
        elif good[r] is not None:
            levels.append(math.nan)
            notes.add(f"meets the target out to the search bound {cur[r]:g}")
        else:
            levels.append(math.nan)
            notes.add(f"fails even at the search bound {cur[r]:g}")
    arr = np.array(levels, dtype=float)
    fin = arr[np.isfinite(arr)]
    level = float(np.exp(np.median(np.log(fin)))) if fin.size else None
    if level is not None and lv.integer:  # the median replicate, rounded to the safe side
        med = float(np.median(fin))
        level = float(math.ceil(med) if lv.worse < 0 else math.floor(med))
    return {
        "source": label,
        "field": lv.field,
        "level": level,
        "unit": lv.unit,
        "spread": [float(np.min(fin)), float(np.max(fin))] if fin.size else None,
        "per_replicate": [None if not np.isfinite(x) else float(x) for x in arr],
        "preset": _value(src, lv),
        "limiting": bool(fin.size) and _worse_than(_value(src, lv), level, lv),
        "note": "; ".join(sorted(notes)),
    }


def _narrow(a: float, b: float, lv: Level) -> bool:
    if lv.integer:
        return abs(a - b) <= 1
    return max(a, b) / min(a, b) <= LEVEL_RESOLUTION


def _midpoint(a: float, b: float, lv: Level) -> float:
    if lv.integer:
        return float(math.floor((a + b) / 2) if abs(a - b) > 1 else a)
    return math.sqrt(a * b)


def _worse_than(value: float, level: float | None, lv: Level) -> bool:
    """Whether the preset is beyond its tolerance (the source breaks the target)."""
    if level is None:
        return False
    return value > level if lv.worse > 0 else value < level


def tolerances(
    device: Device,
    protocol: ProtocolSpec,
    nonideal: NonidealSpec,
    *,
    target: float = 0.99,
    replicates: int = 3,
    seed: int = 0,
    run: Runner | None = None,
) -> list[dict]:
    """:func:`tolerance` of every source of ``nonideal``, and of the bath temperature of a
    dissipation source at T > 0 (searched at the source's own Q)."""
    out = []
    for i, src in enumerate(nonideal.sources):
        kw = dict(target=target, replicates=replicates, seed=seed, run=run)
        out.append(tolerance(device, protocol, nonideal, i, **kw))
        # further knobs of the source (a dissipation source's bath temperature at T > 0)
        for extra in SOURCES.get(src.kind).extra_levels(src):
            out.append(tolerance(device, protocol, nonideal, i, level=extra, **kw))
    return out


# ---------------------------------------------------------------------------- (c) best ε
def eps_curve(
    device: Device,
    protocol: ProtocolSpec,
    nonideal: NonidealSpec,
    *,
    eps: Sequence[float] | None = None,
    replicates: int = 3,
    seed: int = 0,
    run: Runner | None = None,
) -> dict:
    """Measured error vs ε (every source on) and its minimum, refined by a parabola in
    log–log through the best grid point and its neighbours."""
    run = run or make_runner()
    grid = np.asarray(eps if eps is not None else np.logspace(-8, 0, 17), dtype=float)
    tasks = [
        point_task(device, protocol.model_copy(update={"eps": float(e)}), nonideal, r, seed)
        for e in grid
        for r in range(replicates)
    ]
    res = run(tasks)
    err = np.array([_metric(r, "rel_error_as_built") for r in res]).reshape(len(grid), replicates)
    mean = np.nanmean(np.where(np.isfinite(err), err, np.nan), axis=1)
    k = int(np.nanargmin(mean))
    best = float(grid[k])
    if 0 < k < len(grid) - 1 and np.all(np.isfinite(mean[k - 1 : k + 2])):
        x, y = np.log(grid[k - 1 : k + 2]), np.log(mean[k - 1 : k + 2])
        a, b, _ = np.polyfit(x, y, 2)
        if a > 0:
            best = float(np.exp(np.clip(-b / (2 * a), x[0], x[-1])))
    return {
        "eps": grid.tolist(),
        "rel_error": mean.tolist(),
        "rel_error_std": np.nanstd(err, axis=1).tolist(),
        "best_eps": best,
        "best_rel_error": float(mean[k]),
        "relative_eps": protocol.relative_eps,
    }


# ---------------------------------------------------------------------------- energy per update
def energy_per_update(
    device: Device,
    protocol: ProtocolSpec,
    nonideal: NonidealSpec,
    *,
    replicates: int = 3,
    seed: int = 0,
    run: Runner | None = None,
) -> dict:
    """Joules and seconds of one gradient update on the chip as specified (every source),
    mean over the replicate chips: per study metric of
    :data:`physim.study.measures.gradient.ENERGY_METRICS`, ``value`` (``None`` when
    unavailable: a dimensionless device, a figure the preset lacks) and ``unit``."""
    from physim.study.measures.gradient import ENERGY_METRICS

    run = run or make_runner()
    tasks = [point_task(device, protocol, nonideal, r, seed) for r in range(replicates)]
    res = run(tasks)
    out: dict = {}
    for name, (unit, long_name, _) in ENERGY_METRICS.items():
        vals = np.array([_metric(r, name) for r in res])
        known = bool(vals.size) and bool(np.all(np.isfinite(vals)))
        out[name] = {
            "value": float(np.mean(vals)) if known else None,
            "unit": unit,
            "long_name": long_name,
        }
    out["errors"] = sorted({r["error"] for r in res if r["error"]})
    return out
