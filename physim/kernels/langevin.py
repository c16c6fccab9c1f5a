"""Langevin splitting around the leapfrog: O · (drift–kick–drift) · O.

Each step of length δ is

    p ← A p + N ξ₁                  (O: exact Ornstein–Uhlenbeck half step, friction + noise)
    q½ = q + (δ/2) ∇_p T(p);  p ← p − δ ∇_q V(q½; s);  q ← q½ + (δ/2) ∇_p T(p)
    p ← A p + N ξ₂                  (O: second half step)

with ``A = exp(−G δ/2)`` and ``N Nᵀ = k_B T M (1 − exp(−G δ))`` in mass-weighted form (see
:mod:`physim.instrument.bath`), so that the Gibbs distribution is preserved by each O step.
With zero friction ``A = I`` and ``N = 0`` and the scheme is the leapfrog of
:mod:`physim.kernels.leapfrog`; the drivers call those kernels directly in that case, so a
lossless instrument reproduces the ideal run bit for bit. The drift–kick–drift block below uses
the same operation order as the leapfrog kernels.

Noise ``ξ`` is drawn by the caller (seeded numpy generators) and passed in: ``XI`` has shape
(n_steps, [n_traj,] batch, 2, n). Kernels trust their inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from physim.kernels.leapfrog import _axpy, _echo_step, _step


@njit(cache=True)
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


@njit(cache=True, parallel=True)
def forward_chunk(fam, prm, dt, n_work, Q, P, S, A, N, XI, Qrec, Prec):
    """Advance ``Q, P`` (nb, n) through the drive ``S`` (nk, nb, n) with O steps around each
    leapfrog step; records as :func:`physim.kernels.leapfrog.forward_chunk`."""
    nk = S.shape[0]
    nb = Q.shape[0]
    n = Q.shape[1]
    rec_q = Qrec.shape[0] > 0
    rec_p = Prec.shape[0] > 0
    for b in prange(nb):
        work = np.empty(n_work)
        g = np.empty(n)
        tmp = np.empty(n)
        q = Q[b]
        p = P[b]
        for k in range(nk):
            _ostep(p, A, N, XI[k, b, 0], tmp)
            _step(fam, prm, dt, q, p, S[k, b], work, g)
            _ostep(p, A, N, XI[k, b, 1], tmp)
            if rec_q:
                Qrec[k, b, :] = q
            if rec_p:
                Prec[k, b, :] = p


@njit(cache=True, parallel=True)
def echo_chunk(fam, prm, dt, n_work, Q, P, S, E, kicks, weights, A, N, XI, GW, DS, Qrec):
    """Langevin twin of :func:`physim.kernels.leapfrog.echo_chunk` (same arguments) plus the
    O-step matrices ``A, N``, the noise ``XI`` (nk, nt, nb, 2, n) and an optional record of
    positions ``Qrec`` (nk, nt, nb, n) after each step and its kick (empty: no record).

    ∂H/∂w is accumulated over the Hamiltonian (drift–kick–drift) part of each step only: the
    bath does not depend on θ.
    """
    nt = Q.shape[0]
    nk = S.shape[0]
    nb = Q.shape[1]
    n = Q.shape[2]
    nw = GW.shape[1]
    rec_s = DS.shape[0] > 0
    rec_q = Qrec.shape[0] > 0
    for b in prange(nb):
        work = np.empty(n_work)
        g = np.empty(n)
        v = np.empty(n)
        tmp = np.empty(n)
        acc = np.empty(nw)
        dacc = np.empty(n)
        for k in range(nk - 1, -1, -1):
            acc[:] = 0.0
            dacc[:] = 0.0
            # trajectories are independent: the O steps of each may run before and after the
            # shared echo step without changing any trajectory's operation order
            for t in range(nt):
                _ostep(P[t, b], A, N, XI[k, t, b, 0], tmp)
            _echo_step(
                fam,
                prm,
                dt,
                Q,
                P,
                b,
                S[k, b],
                E[k, b],
                False,
                kicks,
                weights,
                work,
                g,
                v,
                acc,
                rec_s,
                dacc,
            )
            for t in range(nt):
                _ostep(P[t, b], A, N, XI[k, t, b, 1], tmp)
                _axpy(P[t, b], kicks[t], E[k, b])
                if rec_q:
                    Qrec[k, t, b, :] = Q[t, b]
            _axpy(GW[b], 1.0, acc)
            if rec_s:
                DS[k, b, :] = dacc
