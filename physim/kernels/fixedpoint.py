"""Bit-reversible fixed-point leapfrog (Levesque–Verlet style).

Positions and momenta live on integer grids, ``q = QI · lq`` and ``p = PI · lp`` (int64). Each
sub-step of drift–kick–drift adds a *rounded* increment computed from the other variable only:

    QI += rint((δ/2) ∇_p T(PI·lp) / lq);   PI −= rint(δ ∇_q V(QI·lq; s) / lp);   QI += …

Each sub-step is undone exactly by subtracting the same integer, and ``rint`` and ∇_p T are odd,
so flipping ``PI`` and replaying the drive backwards returns the initial integers bit for bit:
round-off no longer breaks the echo, which separates numerical error from physics. Gradients of
the half-step Hamiltonian are accumulated in float64 from the dequantised state. Kicks are
rounded onto the momentum grid.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from physim.kernels import dispatch as hk


@njit(cache=True)
def _drift(QI, PI, lq, lp, half_dt, fam, prm, work, x, g):
    n = QI.shape[0]
    for i in range(n):
        x[i] = PI[i] * lp
    hk.grad_T(fam, x, prm, work, g)
    for i in range(n):
        QI[i] += np.int64(np.rint(half_dt * g[i] / lq))


@njit(cache=True)
def _kick(QI, PI, lq, lp, dt, s, fam, prm, work, x, g):
    n = QI.shape[0]
    for i in range(n):
        x[i] = QI[i] * lq
    hk.grad_V(fam, x, s, prm, work, g)
    for i in range(n):
        PI[i] -= np.int64(np.rint(dt * g[i] / lp))


@njit(cache=True, parallel=True)
def forward_chunk(fam, prm, dt, n_work, QI, PI, lq, lp, S, Qrec, Prec):
    """Fixed-point twin of :func:`physim.kernels.leapfrog.forward_chunk`; records are float."""
    nk = S.shape[0]
    nb = QI.shape[0]
    n = QI.shape[1]
    rec_q = Qrec.shape[0] > 0
    rec_p = Prec.shape[0] > 0
    for b in prange(nb):
        work = np.empty(n_work)
        g = np.empty(n)
        x = np.empty(n)
        for k in range(nk):
            _drift(QI[b], PI[b], lq, lp, 0.5 * dt, fam, prm, work, x, g)
            _kick(QI[b], PI[b], lq, lp, dt, S[k, b], fam, prm, work, x, g)
            _drift(QI[b], PI[b], lq, lp, 0.5 * dt, fam, prm, work, x, g)
            if rec_q:
                for i in range(n):
                    Qrec[k, b, i] = QI[b, i] * lq
            if rec_p:
                for i in range(n):
                    Prec[k, b, i] = PI[b, i] * lp


@njit(cache=True, parallel=True)
def echo_chunk(fam, prm, dt, n_work, QI, PI, lq, lp, S, E, kicks, weights, GW, DS, Qrec):
    """Fixed-point twin of :func:`physim.kernels.langevin.echo_chunk` without the bath."""
    nt = QI.shape[0]
    nk = S.shape[0]
    nb = QI.shape[1]
    n = QI.shape[2]
    nw = GW.shape[1]
    rec_s = DS.shape[0] > 0
    rec_q = Qrec.shape[0] > 0
    for b in prange(nb):
        work = np.empty(n_work)
        g = np.empty(n)
        x = np.empty(n)
        pf = np.empty(n)
        qf = np.empty(n)
        v = np.empty(n)
        acc = np.empty(nw)
        dacc = np.empty(n)
        for k in range(nk - 1, -1, -1):
            acc[:] = 0.0
            dacc[:] = 0.0
            s = S[k, b]
            for t in range(nt):
                qi = QI[t, b]
                pi = PI[t, b]
                wt = weights[t]
                for i in range(n):
                    pf[i] = pi[i] * lp
                hk.acc_dT_dw(fam, pf, prm, work, 0.5 * wt, acc)
                _drift(qi, pi, lq, lp, 0.5 * dt, fam, prm, work, x, g)
                for i in range(n):
                    qf[i] = qi[i] * lq
                hk.acc_dV_dw(fam, qf, s, prm, work, wt, acc)
                if rec_s:
                    hk.dV_ds(fam, qf, s, prm, work, v)
                    for i in range(n):
                        dacc[i] += wt * v[i]
                _kick(qi, pi, lq, lp, dt, s, fam, prm, work, x, g)
                for i in range(n):
                    pf[i] = pi[i] * lp
                hk.acc_dT_dw(fam, pf, prm, work, 0.5 * wt, acc)
                _drift(qi, pi, lq, lp, 0.5 * dt, fam, prm, work, x, g)
                for i in range(n):
                    pi[i] += np.int64(np.rint(kicks[t] * E[k, b, i] / lp))
                if rec_q:
                    for i in range(n):
                        Qrec[k, t, b, i] = qi[i] * lq
            for j in range(nw):
                GW[b, j] += acc[j]
            if rec_s:
                DS[k, b, :] = dacc
