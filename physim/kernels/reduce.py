"""Streaming passes over sequence-sized arrays: the MSE error, a finiteness check, max |x|.

Each pass is split into a fixed number of contiguous pieces (:data:`N_PIECES`, or one per
element for tiny arrays) whatever the thread count, and the piece results are combined in order
afterwards, so a result does not depend on the number of threads. Large arrays run the pieces
on all numba threads; below :data:`PARALLEL_MIN` elements the same pieces run serially, since
waking the thread pool costs more than the pass (measured ~8 ms per call on 10⁵ elements on a
busy 2-core machine).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: pieces a pass is split into (fixed: the result must not depend on the thread count)
N_PIECES = 64
#: elements from which a pass runs in parallel (8 MiB of float64: a pass of ≥ 1 ms)
PARALLEL_MIN = 1 << 20
_MAX = np.finfo(np.float64).max


def n_pieces(size: int) -> int:
    """Number of pieces for an array of ``size`` elements."""
    return max(1, min(N_PIECES, size))


# ---------------------------------------------------------------------------- one piece
@njit(cache=True, inline="always")
def _mse_piece(y, target, scale, out, lo, hi):
    # four interleaved partial sums (element i to sum i mod 4 in the unrolled body, the tail to
    # sum 0): additions in one chain wait on each other, four keep the adder busy
    a0 = a1 = a2 = a3 = 0.0
    i = lo
    while i + 4 <= hi:
        d0 = y[i] - target[i]
        d1 = y[i + 1] - target[i + 1]
        d2 = y[i + 2] - target[i + 2]
        d3 = y[i + 3] - target[i + 3]
        a0 += d0 * d0
        a1 += d1 * d1
        a2 += d2 * d2
        a3 += d3 * d3
        out[i] = scale * d0
        out[i + 1] = scale * d1
        out[i + 2] = scale * d2
        out[i + 3] = scale * d3
        i += 4
    while i < hi:
        d0 = y[i] - target[i]
        a0 += d0 * d0
        out[i] = scale * d0
        i += 1
    return (a0 + a1) + (a2 + a3)


@njit(cache=True, inline="always")
def _finite_piece(x, lo, hi):
    # |x| <= max float is False for ±inf and NaN; an integer AND (no branch per entry)
    ok = 1
    for i in range(lo, hi):
        ok &= np.abs(x[i]) <= _MAX
    return ok


@njit(cache=True, inline="always")
def _max_abs_piece(x, lo, hi):
    m = 0.0
    nan = False
    for i in range(lo, hi):
        a = np.abs(x[i])
        if a > m:
            m = a
        nan |= a != a
    return np.nan if nan else m


# ---------------------------------------------------------------------------- all pieces
@njit(cache=True, parallel=True)
def _mse_par(y, target, scale, out, partial):
    n, npc = y.shape[0], partial.shape[0]
    for c in prange(npc):
        partial[c] = _mse_piece(y, target, scale, out, c * n // npc, (c + 1) * n // npc)


@njit(cache=True)
def _mse_ser(y, target, scale, out, partial):
    n, npc = y.shape[0], partial.shape[0]
    for c in range(npc):
        partial[c] = _mse_piece(y, target, scale, out, c * n // npc, (c + 1) * n // npc)


@njit(cache=True, parallel=True)
def _finite_par(x, flags):
    n, npc = x.shape[0], flags.shape[0]
    for c in prange(npc):
        flags[c] = _finite_piece(x, c * n // npc, (c + 1) * n // npc)


@njit(cache=True)
def _finite_ser(x, flags):
    n, npc = x.shape[0], flags.shape[0]
    for c in range(npc):
        flags[c] = _finite_piece(x, c * n // npc, (c + 1) * n // npc)


@njit(cache=True, parallel=True)
def _max_abs_par(x, partial):
    n, npc = x.shape[0], partial.shape[0]
    for c in prange(npc):
        partial[c] = _max_abs_piece(x, c * n // npc, (c + 1) * n // npc)


@njit(cache=True)
def _max_abs_ser(x, partial):
    n, npc = x.shape[0], partial.shape[0]
    for c in range(npc):
        partial[c] = _max_abs_piece(x, c * n // npc, (c + 1) * n // npc)


# ---------------------------------------------------------------------------- entry points
def mse_error(y: np.ndarray, target: np.ndarray, scale: float, out: np.ndarray) -> float:
    """out = scale · (y − target); returns Σ (y − target)² (flat contiguous float64 arrays;
    ``out`` may be ``y``). A non-finite entry makes the sum non-finite."""
    partial = np.empty(n_pieces(y.shape[0]))
    (_mse_par if y.shape[0] >= PARALLEL_MIN else _mse_ser)(y, target, scale, out, partial)
    return float(np.sum(partial))


def all_finite(x: np.ndarray) -> bool:
    """Whether every entry of the flat contiguous float64 array ``x`` is finite."""
    flags = np.empty(n_pieces(x.shape[0]), dtype=np.int64)
    (_finite_par if x.shape[0] >= PARALLEL_MIN else _finite_ser)(x, flags)
    return bool(np.all(flags))


def max_abs(x: np.ndarray) -> float:
    """max |x| of the flat contiguous float64 array ``x`` (0 when empty, NaN if one is NaN)."""
    if not x.shape[0]:
        return 0.0
    partial = np.empty(n_pieces(x.shape[0]))
    (_max_abs_par if x.shape[0] >= PARALLEL_MIN else _max_abs_ser)(x, partial)
    return float(np.nan if np.isnan(partial).any() else np.max(partial))
