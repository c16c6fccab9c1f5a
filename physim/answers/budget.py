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
from dataclasses import dataclass

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
class BudgetPointError(RuntimeError):
    """A budget point failed for a reason that says nothing about the chip (a crash, a
    missing package, a worker that died): the budget stops instead of reading it as a level
    that fails."""


#: failures that are the chip's own at that level: its dynamics blew up, the programming DAC
#: or the fabrication spread made an element value the device cannot have, or the chip's θ
#: as programmed is beyond the integrator's stability limit. Every other failure is an error.
CHIP_FAILURES = ("NumericalFault", "ChipFailure", "UnstableStepError")


Runner = Callable[[list[PointTask]], list[dict]]


class PointWarnings:
    """The warnings of every point a runner ran (each point's are in its result, not printed
    by the worker): how many points warned, and each distinct message with its count."""

    def __init__(self) -> None:
        self.n_points = 0
        self.n_warned = 0
        self.messages: dict[str, int] = {}

    def add(self, results: Sequence[dict]) -> None:
        for r in results:
            self.n_points += 1
            texts = r.get("warnings") or []
            self.n_warned += bool(texts)
            for t in texts:
                self.messages[t] = self.messages.get(t, 0) + 1

    def summary(self) -> dict:
        return {"points": self.n_points, "warned": self.n_warned, "messages": self.messages}


def make_runner(executor: Executor | None = None, warned: PointWarnings | None = None) -> Runner:
    """Run a batch of point tasks through ``executor`` (or here, in order) and return results;
    ``warned`` gathers the points' warnings."""

    def run(tasks: list[PointTask]) -> list[dict]:
        if executor is None:
            out = [run_point(t) for t in tasks]
        else:
            # the study engine's submission loop; results arrive in any order, keyed by index
            out = [None] * len(tasks)

            def keep(r: dict) -> None:
                out[r["index"]] = r

            run_tasks(executor, [t.with_(index=i) for i, t in enumerate(tasks)], keep)
        if warned is not None:
            warned.add(out)
        return out

    return run


def point_task(
    device: Device,
    protocol: ProtocolSpec,
    nonideal: NonidealSpec,
    replicate: int,
    seed: int = 0,
    measure: dict | None = None,
) -> PointTask:
    """The study task of one point (the record ``physim.study.expand.Plan.task`` builds);
    ``measure`` is the study measure table (default: ``gradient``)."""
    non, inst_seed = replicate_chip(nonideal, replicate, seed)
    return PointTask(
        index=replicate,
        device=device.spec.model_dump_json(),
        protocol=protocol.model_dump_json(),
        nonideal=non.model_dump_json(),
        measure=json.dumps(measure or {"kind": "gradient"}),
        seed=inst_seed,
    )


def _metric(r: dict, name: str, what: str | None = None) -> float:
    """A point's metric; NaN when the chip itself failed there (:data:`CHIP_FAILURES`); a
    failure that is not the chip's raises :class:`BudgetPointError` naming the point
    (``what``, default its index)."""
    err = r.get("error")
    if err:
        if err.split(":", 1)[0] in CHIP_FAILURES:
            return math.nan
        raise BudgetPointError(f"budget point {what or r.get('index')} failed: {err}")
    return float(r["metrics"].get(name, math.nan))


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
                "cosine_per_replicate": cos.tolist(),
                "cosine_vs_nominal": float(np.mean([_metric(r, "cosine") for r in part])),
                "groups": {
                    g: float(np.mean([_metric(r, f"rel_error_as_built_{g}") for r in part]))
                    for g in groups
                },
                "errors": sorted({r["error"] for r in part if r["error"]}),
            }
        )
        if c == "all":  # the chip as specified: what one update costs, from the same runs
            rows[-1]["energy"] = energy_summary(part)
    return rows


# ---------------------------------------------------------------------------- (b) tolerances
@dataclass(frozen=True)
class Criterion:
    """What "the chip still works" means for a tolerance: a study measure, one of its metrics
    and the bound that metric must meet.

    * :func:`gradient_criterion` — the θ-scaled cosine vs the as-built twin reaches a target
      (the unit-free fidelity of :mod:`physim.fidelity`);
    * :func:`train_criterion` — in-situ training through the chip ends within ``factor`` × the
      ideal chip's final loss (the ``train`` measure's ``loss_ratio``).
    """

    by: str
    measure: dict
    metric: str
    bound: float
    higher_is_better: bool

    def passes(self, value: float) -> bool:
        if not np.isfinite(value):
            return False
        return value >= self.bound if self.higher_is_better else value <= self.bound

    def describe(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        if self.by == "train":
            m = self.measure
            return (
                f"in-situ training ({m['epochs']} epochs, lr {m['lr']:g}) ends at a loss "
                f"{op} {self.bound:g} x the ideal chip's"
            )
        return f"θ-scaled cosine vs the as-built twin {op} {self.bound:g}"


def _with_level(source, lv: Level, value: float):
    v = int(round(value)) if lv.integer else float(value)
    return source.model_copy(update={lv.field: v})


def gradient_criterion(target: float = 0.99) -> Criterion:
    return Criterion("gradient", {"kind": "gradient"}, "cosine_as_built", target, True)


def train_criterion(factor: float = 2.0, epochs: int = 20, lr: float = 1e-2) -> Criterion:
    return Criterion(
        "train", {"kind": "train", "epochs": epochs, "lr": lr}, "loss_ratio", factor, False
    )


def _outcome(r: dict, crit: Criterion, what: str) -> tuple[bool, str | None]:
    """(passes, why it failed as a chip) of one point; raises for a failure that is not the
    chip's (see :data:`CHIP_FAILURES`)."""
    value = _metric(r, crit.metric, what)
    return crit.passes(value), r.get("error") or None


#: replicate chips are added (up to :data:`MAX_REPLICATES`) until the tolerance's 90 %
#: confidence interval spans at most this factor (continuous levels) or one step (bits)
CI_FACTOR = 2.0
MAX_REPLICATES = 12
#: two-sided 90 % Student t quantiles by degrees of freedom (1 … 11)
_T90 = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796)


def _interval(levels: np.ndarray, lv: Level) -> tuple[float, float, float]:
    """(estimate, low, high): the mean with a 90 % t interval, in log space for continuous
    levels (a geometric mean) and linear for integer ones."""
    x = levels if lv.integer else np.log(levels)
    m = float(np.mean(x))
    if x.size < 2:
        half = math.inf
    else:
        half = _T90[min(x.size - 2, len(_T90) - 1)] * float(np.std(x, ddof=1)) / math.sqrt(x.size)
    if lv.integer:
        return m, m - half, m + half
    return math.exp(m), math.exp(m - half), math.exp(m + half)


def _pinned(lo: float, hi: float, lv: Level) -> bool:
    if lv.integer:
        return hi - lo <= 2.0  # ± one bit
    return lo > 0 and hi / lo <= CI_FACTOR


def tolerance(
    device: Device,
    protocol: ProtocolSpec,
    nonideal: NonidealSpec,
    index: int,
    *,
    target: float = 0.99,
    replicates: int = 3,
    max_replicates: int = MAX_REPLICATES,
    seed: int = 0,
    run: Runner | None = None,
    level: Level | None = None,
    criterion: Criterion | None = None,
) -> dict:
    """The level of source ``index`` (alone) at which ``criterion`` (default: the θ-scaled
    cosine vs the as-built twin reaches ``target``) stops holding: per replicate chip the
    worst level that still passes, found by expanding a bracket on a log scale from the preset
    level and bisecting it in log space.

    Replicates start at ``replicates`` and are added, up to ``max_replicates``, until the 90 %
    confidence interval of the tolerance spans at most :data:`CI_FACTOR` (one bit either way
    for bits); the report gives the interval and says when it is not pinned down. A point
    that fails for a reason that is not the chip's raises :class:`BudgetPointError`.
    ``level`` overrides the source's knob (e.g. :data:`TEMPERATURE` of a dissipation source).
    """
    run = run or make_runner()
    crit = criterion or gradient_criterion(target)
    src = nonideal.sources[index]
    lv = level or level_of(src)
    label = source_label(src) + (f"/{lv.field}" if level is not None else "")
    if lv is None:
        return {
            "source": label,
            "by": crit.by,
            "level": None,
            "unit": "",
            "spread": None,
            "interval": None,
            "limiting": False,
            "note": f"no level to search ({src.kind} has none)",
        }
    start = min(max(_value(src, lv), lv.lo), lv.hi)
    if start <= 0:
        start = lv.lo if lv.worse > 0 else lv.hi

    def search(reps: list[int]) -> tuple[dict[int, float | None], set[str], set[str]]:
        """Per replicate: the worst passing level (None: not bracketed), with notes."""
        good: dict[int, float | None] = dict.fromkeys(reps)
        bad: dict[int, float | None] = dict.fromkeys(reps)
        cur = dict.fromkeys(reps, start)
        edge = dict.fromkeys(reps, False)
        notes: set[str] = set()
        chip: set[str] = set()
        for _ in range(64):
            active = [
                r
                for r in reps
                if not edge[r]
                and (good[r] is None or bad[r] is None or not _narrow(good[r], bad[r], lv))
            ]
            if not active:
                break
            tasks = [
                point_task(
                    device,
                    protocol,
                    nonideal.model_copy(
                        update={
                            "name": f"{label}={cur[r]:g}",
                            "sources": [_with_level(src, lv, cur[r])],
                        }
                    ),
                    r,
                    seed,
                    measure=crit.measure,
                )
                for r in active
            ]
            for r, res in zip(active, run(tasks), strict=True):
                ok, why = _outcome(res, crit, f"{label}={cur[r]:g} (replicate {r})")
                if why:
                    chip.add(why)
                if ok:
                    good[r] = cur[r]
                else:
                    bad[r] = cur[r]
                if good[r] is not None and bad[r] is not None:
                    cur[r] = _midpoint(good[r], bad[r], lv)
                    continue
                # expand towards the other status: worse if passing, better if failing
                direction = lv.worse if ok else -lv.worse
                nxt = cur[r] + 4 * direction if lv.integer else cur[r] * EXPAND_FACTOR**direction
                nxt = min(max(nxt, lv.lo), lv.hi)
                if nxt == cur[r]:
                    edge[r] = True
                cur[r] = nxt
        out: dict[int, float | None] = {}
        for r in reps:
            if good[r] is not None and bad[r] is not None:
                out[r] = good[r]
            elif good[r] is not None:
                out[r] = None
                notes.add(f"meets the criterion out to the search bound {cur[r]:g}")
            else:
                out[r] = None
                why = (
                    f" (the source's {lv0.field} = {_value(src, lv0):g} alone misses it)"
                    if level is not None and (lv0 := level_of(src)) is not None
                    else ""
                )
                notes.add(f"fails even at the search bound {cur[r]:g}{why}")
        return out, notes, chip

    found, notes, chip = search(list(range(replicates)))
    n = replicates
    while True:
        fin = np.array([v for v in found.values() if v is not None], dtype=float)
        est, lo, hi = _interval(fin, lv) if fin.size else (math.nan, math.nan, math.nan)
        if fin.size >= 2 and _pinned(lo, hi, lv) or n >= max_replicates or fin.size == 0:
            break
        # add replicate chips: double, up to the cap
        more = list(range(n, min(max_replicates, 2 * n)))
        part, nt, ch = search(more)
        found.update(part)
        notes |= nt
        chip |= ch
        n += len(more)
    pinned = fin.size >= 2 and _pinned(lo, hi, lv)
    level = None
    if fin.size:
        level = est
        if lv.integer:  # the estimate, rounded to the safe side
            level = float(math.ceil(est - 1e-9) if lv.worse < 0 else math.floor(est + 1e-9))
    if fin.size and not pinned:
        notes.add(
            f"not pinned down: the 90 % interval [{lo:.3g}, {hi:.3g}] over {fin.size} replicate "
            f"chips is wider than {'one bit either way' if lv.integer else f'{CI_FACTOR:g}x'}"
        )
    if chip:
        notes.add("the chip itself fails at some levels: " + sorted(chip)[0][:200])
    arr = [found[r] for r in range(n)]
    return {
        "source": label,
        "by": crit.by,
        "criterion": crit.describe(),
        "field": lv.field,
        "worse": lv.worse,
        "level": level,
        "unit": lv.unit,
        "spread": [float(np.min(fin)), float(np.max(fin))] if fin.size else None,
        "interval": [lo, hi] if fin.size >= 2 else None,
        "pinned": bool(pinned),
        "replicates": n,
        "per_replicate": arr,
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
    criterion: Criterion | None = None,
    max_replicates: int = MAX_REPLICATES,
) -> list[dict]:
    """:func:`tolerance` of every source of ``nonideal``, and of the bath temperature of a
    dissipation source at T > 0 (searched at the source's own Q)."""
    out = []
    for i, src in enumerate(nonideal.sources):
        kw = dict(
            target=target,
            replicates=replicates,
            max_replicates=max(max_replicates, replicates),
            seed=seed,
            run=run,
            criterion=criterion,
        )
        out.append(tolerance(device, protocol, nonideal, i, **kw))
        # further knobs of the source (a dissipation source's bath temperature at T > 0)
        for extra in SOURCES.get(src.kind).extra_levels(src):
            out.append(tolerance(device, protocol, nonideal, i, level=extra, **kw))
    return out


# ---------------------------------------------------------------------------- overall verdict
def overall(
    device: Device,
    protocol: ProtocolSpec,
    nonideal: NonidealSpec,
    criterion: Criterion,
    *,
    replicates: int = 3,
    seed: int = 0,
    run: Runner | None = None,
    values: Sequence[float] | None = None,
) -> dict:
    """The chip as specified (every source at its preset) against ``criterion``, per replicate
    chip: ``values`` when already measured (the attribution's "all" row), else measured here.
    ``meets`` is True when every replicate chip meets the criterion."""
    if values is None:
        run = run or make_runner()
        tasks = [
            point_task(device, protocol, nonideal, r, seed, measure=criterion.measure)
            for r in range(replicates)
        ]
        values = [_metric(r, criterion.metric) for r in run(tasks)]
    v = np.asarray(values, dtype=float)
    ok = [criterion.passes(x) for x in v]
    worst = (
        float(np.nanmin(v) if criterion.higher_is_better else np.nanmax(v))
        if np.any(np.isfinite(v))
        else math.nan
    )
    meets = all(ok)
    op = (
        (">=" if criterion.higher_is_better else "<=")
        if meets
        else ("<" if criterion.higher_is_better else ">")
    )
    what = "cosine" if criterion.by == "gradient" else "final loss / ideal chip's"
    line = (
        f"this chip as specified {'meets' if meets else 'MISSES'} the target "
        f"({criterion.by}): {what} {worst:.4g} {op} {criterion.bound:g} on its worst of "
        f"{v.size} replicate chips ({sum(ok)} of {v.size} meet it)"
    )
    return {
        "by": criterion.by,
        "criterion": criterion.describe(),
        "metric": criterion.metric,
        "values": v.tolist(),
        "worst": worst,
        "passing": int(sum(ok)),
        "meets": bool(meets),
        "line": line,
    }


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
    if not np.isfinite(err).any():
        # the chip failed at every ε (or the protocol reports no error to minimise)
        why = next((r["error"] for r in res if r.get("error")), "no rel_error_as_built measured")
        raise BudgetPointError(
            f"every point of the eps curve failed, at every eps in {grid[0]:.3g}..{grid[-1]:.3g} "
            f"(the first: {why}); the chip as specified cannot be budgeted"
        )
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
    run = run or make_runner()
    return energy_summary(
        run([point_task(device, protocol, nonideal, r, seed) for r in range(replicates)])
    )


def energy_summary(results: list[dict]) -> dict:
    """The energy metrics of ``gradient`` points (replicate chips of one configuration): per
    metric the mean ``value`` (``None`` unless known on every chip) and its ``unit``."""
    from physim.study.measures.gradient import ENERGY_METRICS

    out: dict = {}
    for name, (unit, long_name, _) in ENERGY_METRICS.items():
        vals = np.array([_metric(r, name) for r in results])
        known = bool(vals.size) and bool(np.all(np.isfinite(vals)))
        out[name] = {
            "value": float(np.mean(vals)) if known else None,
            "unit": unit,
            "long_name": long_name,
        }
    out["errors"] = sorted({r["error"] for r in results if r["error"]})
    return out
