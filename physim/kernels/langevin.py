"""Langevin splitting around the leapfrog: O · (drift–kick–drift) · O.

Each step of length δ is

    p ← A p + N ξ₁                  (O: exact Ornstein–Uhlenbeck half step, friction + noise)
    q½ = q + (δ/2) ∇_p T(p);  p ← p − δ ∇_q V(q½; s);  q ← q½ + (δ/2) ∇_p T(p)
    p ← A p + N ξ₂                  (O: second half step)

with ``A = exp(−G δ/2)`` and ``N Nᵀ = k_B T M (1 − exp(−G δ))`` in mass-weighted form (see
:mod:`physim.instrument.bath`), so that the Gibbs distribution is preserved by each O step.

This module holds the O step only. The integrator's kernels (:mod:`physim.kernels.leapfrog`)
run it around their own drift–kick–drift step when they are handed a :class:`LangevinSteps`
(see :mod:`physim.kernels.steps`): there is one loop whatever the step kind. With zero friction
the drivers hand them no bath at all, so a lossless instrument is the ideal run bit for bit.

Noise ``ξ`` is drawn by the caller (seeded numpy generators) and passed in as ``XI``: shape
(n_steps, batch, 2, n) for a forward run, (n_steps, n_traj, batch, 2, n) for an echo.
Kernels trust their inputs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class LangevinSteps(NamedTuple):
    """The bath of a lossy run, as the kernels take it: the O-step matrices ``A, N`` (n, n) in
    compressed rows over the union of their nonzero entries (:func:`o_step_rows`: ``ptr``,
    ``col``, ``a``, ``nn``) and the chunk's noise ``XI`` (see module docstring)."""

    ptr: np.ndarray
    col: np.ndarray
    a: np.ndarray
    nn: np.ndarray
    XI: np.ndarray


def o_step_rows(
    A: np.ndarray, N: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ptr, col, a, nn): the entries of ``A`` and ``N`` at the positions where either is
    nonzero, row by row in column order (row i is ptr[i] … ptr[i+1] − 1). The O step sums only
    these terms, in the order of the dense sum: a term 0 · p + 0 · ξ adds nothing to a finite
    sum, so the result is the dense product's, at the cost of the nonzeros (a LinHRU layer's
    per-mode bath is 2 per row of 256)."""
    nz = (A != 0.0) | (N != 0.0)
    rows, cols = np.nonzero(nz)  # row-major order: columns ascending within a row
    ptr = np.zeros(A.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=A.shape[0]), out=ptr[1:])
    return (
        ptr,
        cols.astype(np.int64),
        np.ascontiguousarray(A[rows, cols], dtype=np.float64),
        np.ascontiguousarray(N[rows, cols], dtype=np.float64),
    )


@njit(cache=True, inline="always")
def _ostep(p, ptr, col, a, nn, xi, tmp):
    """p ← A p + N ξ, with A and N in the compressed rows of :func:`o_step_rows`."""
    n = p.shape[0]
    for i in range(n):
        acc = 0.0
        for r in range(ptr[i], ptr[i + 1]):
            j = col[r]
            acc += a[r] * p[j] + nn[r] * xi[j]
        tmp[i] = acc
    for i in range(n):
        p[i] = tmp[i]
