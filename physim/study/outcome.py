"""What a finished study tells its caller beyond the numbers: failures and worker warnings.

A point's warnings are raised in a worker process, where Python would print them raw (file,
line, source) without saying which point they concern. :func:`physim.study.task.run_point`
records them in the point's result instead; the client summarises them here once, one line
per distinct message in physim's format, naming the points (their coordinates) that raised
it. A study whose every point failed is not a result: :func:`check_outcome` raises, and
otherwise says how many points failed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

from physim.study.spec import StudyError
from physim.warnings import PhysimWarning

#: a warning names at most this many of the points that raised it, then counts the rest (each
#: point's warnings are in its result, ``warnings`` in the study folder's journal)
MAX_NAMED_POINTS = 4
#: a failure of the worker process rather than of the point (run_tasks's message)
WORKER_FAILED = "worker failed"
#: why every spawned worker of a script fails, and the fix
MAIN_GUARD_HINT = (
    'in a script, call run_study under `if __name__ == "__main__":` (the local pool spawns '
    "workers that import the script again)"
)

Where = Callable[[int], str]


def point_namer(plan) -> Where:
    """``i -> "point 3 (Q=100, bits=8, replicate=0)"`` for a :class:`physim.study.expand.Plan`."""

    def where(i: int) -> str:
        coords = ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in plan.coords(i).items()
        )
        return f"point {i} ({coords})"

    return where


def report(plan, done: Mapping[int, Mapping[str, Any]]) -> int:
    """What the client says once a study's points are all done: each warned point's warnings,
    then the failures (:func:`check_outcome`, which raises when nothing is a result)."""
    where = point_namer(plan)
    summarise_warnings(done, where)
    return check_outcome(plan.n_points, done, where)


def catch_point_warnings() -> warnings.catch_warnings:
    """A context that records every warning (instead of printing it) for one point. Like
    :class:`warnings.catch_warnings` it is not thread-safe: one point at a time per process,
    as in the process pools and dask workers with one thread each."""
    return warnings.catch_warnings(record=True)


def warning_texts(caught: list[warnings.WarningMessage]) -> list[str]:
    """Distinct warning messages in order of first appearance; a warning that is not physim's
    keeps its category name (``RuntimeWarning: overflow …``)."""
    out: list[str] = []
    for w in caught:
        text = " ".join(str(w.message).split())
        if not issubclass(w.category, PhysimWarning):
            text = f"{w.category.__name__}: {text}"
        if text not in out:
            out.append(text)
    return out


def summarise_warnings(done: Mapping[int, Mapping[str, Any]], where: Where) -> int:
    """Issue one :class:`PhysimWarning` per distinct warning message, naming the points that
    raised it (the first :data:`MAX_NAMED_POINTS`, then a count); returns the number of points
    that warned."""
    by_text: dict[str, list[int]] = {}
    for i, r in sorted(done.items()):
        for text in r.get("warnings") or ():
            by_text.setdefault(text, []).append(i)
    for text, points in by_text.items():
        named = "; ".join(where(i) for i in points[:MAX_NAMED_POINTS])
        more = len(points) - MAX_NAMED_POINTS
        named += f"; and {more} more point(s)" if more > 0 else ""
        warnings.warn(f"{text} [at {named}]", PhysimWarning, stacklevel=4)
    return len({i for points in by_text.values() for i in points})


def check_outcome(n_points: int, done: Mapping[int, Mapping[str, Any]], where: Where) -> int:
    """Raise :class:`StudyError` when every point failed (or a worker process failed, which
    says nothing about the chip); warn with the count when some points failed. Returns the
    number of failed points."""
    failed = [(i, r["error"]) for i, r in sorted(done.items()) if r.get("error")]
    if not failed:
        return 0
    first_i, first_msg = failed[0]
    first = f"the first, {where(first_i)}: {first_msg}"
    workers = [i for i, msg in failed if msg.startswith(WORKER_FAILED)]
    if workers:
        raise StudyError(
            f"{len(workers)} of {n_points} points failed because their worker process failed "
            f"(the first, {where(workers[0])}: {done[workers[0]]['error']}); these are no "
            f"result of the chip; {MAIN_GUARD_HINT}, or check the workers' memory and logs"
        )
    if len(failed) == n_points:
        raise StudyError(
            f"every one of the {n_points} points failed (point {first_i}: {first_msg}); the "
            "study has no result: fix the base or the axes (physim sweep status DIR lists the "
            "failures) and rerun with --restart"
        )
    warnings.warn(
        f"{len(failed)} of {n_points} points failed ({first}): their metrics are NaN; "
        "physim sweep status DIR lists the failures",
        PhysimWarning,
        stacklevel=4,
    )
    return len(failed)
