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

#: an O step sums over the union of the nonzeros of A and N row by row when it holds at most
#: this fraction of the n² entries (a LinHRU layer's per-mode bath: 2 of 256 per row); denser
#: matrices take the dense product, column by column (SIMD across rows)
SPARSE_FRACTION = 0.25


class LangevinSteps(NamedTuple):
    """The bath of a lossy run, as the kernels take it (:func:`langevin_steps`): the O-step
    matrices ``A, N`` (n, n) either in compressed rows over the union of their nonzero entries
    (``ptr``, ``col``, ``a``, ``nn``; ``AT``, ``NT`` then have no entries) or transposed and
    dense (``AT``, ``NT``; ``ptr`` then has no entries), and the chunk's noise ``XI`` (see
    module docstring)."""

    ptr: np.ndarray
    col: np.ndarray
    a: np.ndarray
    nn: np.ndarray
    AT: np.ndarray
    NT: np.ndarray
    XI: np.ndarray


def o_step_matrices(A: np.ndarray, N: np.ndarray) -> tuple:
    """The first six fields of :class:`LangevinSteps` for the O-step matrices ``A, N``.

    Either form sums, for every row i, the terms A[i, j] p[j] + N[i, j] ξ[j] in column order
    one after the other — the dense product's arithmetic: the compressed rows skip only terms
    0 · p + 0 · ξ, which add nothing to a finite sum; the dense form runs the rows as the inner
    loop, which SIMD-vectorises without reordering any row's sum.
    """
    n = A.shape[0]
    nz = (A != 0.0) | (N != 0.0)
    none2 = np.zeros((0, 0))
    if nz.sum() > SPARSE_FRACTION * n * n:
        return (
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0),
            np.zeros(0),
            np.ascontiguousarray(A.T, dtype=np.float64),
            np.ascontiguousarray(N.T, dtype=np.float64),
        )
    rows, cols = np.nonzero(nz)  # row-major order: columns ascending within a row
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=ptr[1:])
    return (
        ptr,
        cols.astype(np.int64),
        np.ascontiguousarray(A[rows, cols], dtype=np.float64),
        np.ascontiguousarray(N[rows, cols], dtype=np.float64),
        none2,
        none2,
    )


@njit(cache=True, inline="always")
def _ostep(p, ptr, col, a, nn, AT, NT, xi, tmp):
    """p ← A p + N ξ, with A and N as :func:`o_step_matrices` gives them."""
    n = p.shape[0]
    if ptr.shape[0] == 0:
        for i in range(n):
            tmp[i] = 0.0
        for j in range(n):
            pj = p[j]
            xj = xi[j]
            aj = AT[j]
            nj = NT[j]
            for i in range(n):
                tmp[i] += aj[i] * pj + nj[i] * xj
    else:
        for i in range(n):
            acc = 0.0
            for r in range(ptr[i], ptr[i + 1]):
                j = col[r]
                acc += a[r] * p[j] + nn[r] * xi[j]
            tmp[i] = acc
    for i in range(n):
        p[i] = tmp[i]


@njit(cache=True, inline="always")
def o_step(steps, p, xi, tmp):
    """p ← A p + N ξ for the bath ``steps`` (a :class:`LangevinSteps`)."""
    _ostep(p, steps.ptr, steps.col, steps.a, steps.nn, steps.AT, steps.NT, xi, tmp)
