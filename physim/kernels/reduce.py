"""Streaming passes over sequence-sized arrays: the MSE error and a finiteness check.

Each runs once over its arrays on all numba threads. Sums are formed over a fixed number of
contiguous pieces (:data:`N_PIECES`, whatever the thread count) and the piece sums added in
order afterwards, so a result does not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: pieces a pass is split into (fixed: the result must not depend on the thread count)
N_PIECES = 64
_MAX = np.finfo(np.float64).max


@njit(cache=True, parallel=True)
def mse_error(y, target, scale, out, partial):
    """out = scale · (y − target) and partial[c] = Σ (y − target)² over piece c (flat arrays).

    Four interleaved partial sums per piece (element i to sum i mod 4 in the unrolled body,
    the tail to sum 0): additions in one chain wait on each other, four keep the adder busy.

    ``out`` may be ``y`` itself. Non-finite entries propagate into ``partial``.
    """
    n = y.shape[0]
    npc = partial.shape[0]
    for c in prange(npc):
        lo = c * n // npc
        hi = (c + 1) * n // npc
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
        partial[c] = (a0 + a1) + (a2 + a3)


@njit(cache=True, parallel=True)
def all_finite(x, flags):
    """flags[c] = 1 when every entry of piece c of the flat array ``x`` is finite, else 0."""
    n = x.shape[0]
    npc = flags.shape[0]
    for c in prange(npc):
        # |x| <= max float is False for ±inf and NaN; an integer AND over the piece (no
        # branch per entry) vectorises
        ok = 1
        for i in range(c * n // npc, (c + 1) * n // npc):
            ok &= np.abs(x[i]) <= _MAX
        flags[c] = ok


@njit(cache=True, parallel=True)
def max_abs(x, partial):
    """partial[c] = max |x| over piece c of the flat array ``x`` (NaN when the piece has one)."""
    n = x.shape[0]
    npc = partial.shape[0]
    for c in prange(npc):
        m = 0.0
        nan = False
        for i in range(c * n // npc, (c + 1) * n // npc):
            a = np.abs(x[i])
            if a > m:
                m = a
            nan |= a != a
        partial[c] = np.nan if nan else m
