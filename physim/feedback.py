"""Feedback on long work: the numba compile notice and progress bars, always on stderr.

numba compiles physim's kernels on first use and caches them on disk (``cache=True``). A cold
cache costs about a minute of silence, so :func:`compile_notice` prints one line before it
happens — and nothing when the cache is warm. Whether it is cold is read from the index files
numba keeps per kernel: an index that is missing, from another numba version or older than its
source file loads as empty, which is exactly when numba would compile.

Progress bars (:func:`progress`) are tqdm bars on stderr, so that ``--json`` keeps stdout pure.
"""

from __future__ import annotations

import sys
from typing import TextIO

#: measured: `physim gradcheck lc-ladder-8 --steps 50` with an empty NUMBA_CACHE_DIR took
#: 59.6 s of CPU (2.5 s warm) on this project's 2-core machine
COLD_COMPILE_SECONDS = 60.0


def _core_dispatchers() -> list:
    """The kernels every simulating command compiles (integrator, echoes, adjoint)."""
    from physim.kernels import adjoint, leapfrog

    return [
        leapfrog.forward_inputs,
        leapfrog.echo_inputs,
        adjoint.adjoint_inputs,
    ]


def _is_cached(dispatcher) -> bool:
    """True when numba's on-disk index holds a fresh entry for ``dispatcher``."""
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    # caching disabled, or a numba whose cache internals differ: stay silent rather than wrong
    load = getattr(cache_file, "_load_index", None)
    if load is None:
        return True
    try:
        return bool(load())
    except Exception:  # an unreadable index is recompiled by numba too
        return False


def cold_kernels() -> float:
    """Fraction of the core kernels that numba would compile now (0 when the cache is warm)."""
    disp = _core_dispatchers()
    return sum(not _is_cached(d) for d in disp) / len(disp)


def compile_notice(stream: TextIO | None = None) -> bool:
    """Print ``compiling kernels (first run only, about N s)…`` if the cache is cold.

    Returns whether it printed. Cheap: reads a few small index files.
    """
    cold = cold_kernels()
    if cold == 0:
        return False
    seconds = max(10, int(round(COLD_COMPILE_SECONDS * cold, -1)))
    print(
        f"compiling kernels (first run only, about {seconds} s)…",
        file=stream or sys.stderr,
        flush=True,
    )
    return True


#: a bar appears only once the work has taken this long: short runs stay quiet
PROGRESS_DELAY_S = 2.0


def progress(total: int, desc: str, *, enable: bool = True, unit: str = "it", initial: int = 0):
    """A tqdm bar on stderr that shows up only for work longer than :data:`PROGRESS_DELAY_S`.

    Create it *after* the first unit of work (``initial=1``) so that its rate and ETA leave out
    numba's compile time, which the first unit pays.
    """
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        file=sys.stderr,
        disable=not enable,
        delay=PROGRESS_DELAY_S,
        dynamic_ncols=True,
    )
