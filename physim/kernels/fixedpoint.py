"""Bit-reversible fixed-point leapfrog (Levesque–Verlet style).

Positions and momenta live on integer grids, ``q = QI · lq`` and ``p = PI · lp`` (int64). Each
sub-step of drift–kick–drift adds a *rounded* increment computed from the other variable only:

    QI += rint((δ/2) ∇_p T(PI·lp) / lq);   PI −= rint(δ ∇_q V(QI·lq; s) / lp);   QI += …

Each sub-step is undone exactly by subtracting the same integer, and ``rint`` and ∇_p T are odd,
so flipping ``PI`` and replaying the drive backwards returns the initial integers bit for bit:
round-off no longer breaks the echo, which separates numerical error from physics. Gradients of
the half-step Hamiltonian are accumulated in float64 from the dequantised state. Kicks are
rounded onto the momentum grid.

This module holds the fixed-point steps only; the integrator's kernels
(:mod:`physim.kernels.leapfrog`) run them in place of the float step when they are handed a
:class:`FixedPointSteps` and integer states (see :mod:`physim.kernels.steps`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from physim.kernels import dispatch as hk


class FixedPointSteps(NamedTuple):
    """The grid steps of the fixed-point integrator: q = QI · lq, p = PI · lp."""

    lq: float
    lp: float


@njit(cache=True, inline="always")
def _drift(QI, PI, lq, lp, half_dt, fam, prm, work, x, g):
    n = QI.shape[0]
    for i in range(n):
        x[i] = PI[i] * lp
    hk.grad_T(fam, x, prm, work, g)
    for i in range(n):
        QI[i] += np.int64(np.rint(half_dt * g[i] / lq))


@njit(cache=True, inline="always")
def _kick(QI, PI, lq, lp, dt, s, fam, prm, work, x, g):
    n = QI.shape[0]
    for i in range(n):
        x[i] = QI[i] * lq
    hk.grad_V(fam, x, s, prm, work, g)
    for i in range(n):
        PI[i] -= np.int64(np.rint(dt * g[i] / lp))


@njit(cache=True, inline="always")
def fixed_step(fam, prm, dt, qi, pi, lq, lp, s, work, x, g):
    """One drift–kick–drift step of the integer state (qi, pi) under the drive s."""
    _drift(qi, pi, lq, lp, 0.5 * dt, fam, prm, work, x, g)
    _kick(qi, pi, lq, lp, dt, s, fam, prm, work, x, g)
    _drift(qi, pi, lq, lp, 0.5 * dt, fam, prm, work, x, g)


@njit(cache=True, inline="always")
def fixed_echo_step(
    fam, prm, dt, QI, PI, b, s, e, kick, kicks, weights, lq, lp, work, x, g, v, pf, acc, want_ds, d
):
    """One fixed-point echo step of every trajectory t of batch element b: adds
    Σ_t weights[t] ∂H½/∂w (from the dequantised states) to ``acc``, writes Σ_t weights[t]
    ∂V/∂s at q½ to ``d`` when ``want_ds``, then, when ``kick``, p += kicks[t] · e rounded onto
    the momentum grid. ``pf`` is an (n,) float scratch."""
    n = QI.shape[2]
    if want_ds:
        for i in range(n):
            d[i] = 0.0
    for t in range(QI.shape[0]):
        qi = QI[t, b]
        pi = PI[t, b]
        wt = weights[t]
        for i in range(n):
            pf[i] = pi[i] * lp
        hk.acc_dT_dw(fam, pf, prm, work, 0.5 * wt, acc)
        _drift(qi, pi, lq, lp, 0.5 * dt, fam, prm, work, x, g)
        for i in range(n):
            pf[i] = qi[i] * lq
        hk.acc_dV_dw(fam, pf, s, prm, work, wt, acc)
        if want_ds:
            hk.dV_ds(fam, pf, s, prm, work, v)
            for i in range(n):
                d[i] += wt * v[i]
        _kick(qi, pi, lq, lp, dt, s, fam, prm, work, x, g)
        for i in range(n):
            pf[i] = pi[i] * lp
        hk.acc_dT_dw(fam, pf, prm, work, 0.5 * wt, acc)
        _drift(qi, pi, lq, lp, 0.5 * dt, fam, prm, work, x, g)
        if kick:
            for i in range(n):
                pi[i] += np.int64(np.rint(kicks[t] * e[i] / lp))
