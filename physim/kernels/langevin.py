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
    """The bath of a lossy run, as the kernels take it: O-step matrices ``A, N`` (n, n) and the
    chunk's noise ``XI`` (see module docstring)."""

    A: np.ndarray
    N: np.ndarray
    XI: np.ndarray


@njit(cache=True, inline="always")
def _ostep(p, A, N, xi, tmp):
    """p ← A p + N ξ (dense n × n matrices)."""
    n = p.shape[0]
    for i in range(n):
        acc = 0.0
        for j in range(n):
            acc += A[i, j] * p[j] + N[i, j] * xi[j]
        tmp[i] = acc
    for i in range(n):
        p[i] = tmp[i]
