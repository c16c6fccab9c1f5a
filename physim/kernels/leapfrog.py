"""The one integrator: drift–kick–drift leapfrog with the force at the half-step position.

    q½      = q_k + (δ/2) ∇_p T(p_k)
    p_{k+1} = p_k − δ ∇_q V(q½; s_k)
    q_{k+1} = q½ + (δ/2) ∇_p T(p_{k+1})

It is exactly reversible in exact arithmetic (flip p, replay the drive backwards, and the state
returns) and second-order accurate. The kernels below run one chunk of steps for a batch of
independent trajectories; the Python drivers in :mod:`physim.simulate`, :mod:`physim.rhel`
and :mod:`physim.bptt` loop over chunks so that memory does not grow with sequence length.
Kernels trust their inputs: shapes, dtypes and contiguity are checked by the drivers.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from physim.kernels import dispatch as hk


@njit(cache=True)
def _axpy(y, a, x):
    for i in range(y.shape[0]):
        y[i] += a * x[i]


@njit(cache=True, parallel=True)
def forward_chunk(fam, prm, dt, n_work, Q, P, S, Qrec, Prec):
    """Advance states ``Q, P`` (nb, n) through the drive ``S`` (nk, nb, n) in place.

    Positions after each step go to ``Qrec`` (nk, nb, n) and momenta to ``Prec`` unless the
    record array has length 0 along time.
    """
    nk = S.shape[0]
    nb = Q.shape[0]
    n = Q.shape[1]
    rec_q = Qrec.shape[0] > 0
    rec_p = Prec.shape[0] > 0
    for b in prange(nb):
        work = np.empty(n_work)
        g = np.empty(n)
        q = Q[b]
        p = P[b]
        for k in range(nk):
            hk.grad_T(fam, p, prm, work, g)
            _axpy(q, 0.5 * dt, g)
            hk.grad_V(fam, q, S[k, b], prm, work, g)
            _axpy(p, -dt, g)
            hk.grad_T(fam, p, prm, work, g)
            _axpy(q, 0.5 * dt, g)
            if rec_q:
                Qrec[k, b, :] = q
            if rec_p:
                Prec[k, b, :] = p


@njit(cache=True, parallel=True)
def echo_chunk(fam, prm, dt, n_work, Q, P, S, E, kicks, weights, GW, DS):
    """Run ``nt`` echo trajectories in lockstep backwards through one chunk of the drive.

    ``Q, P`` (nt, nb, n) hold the echo states and are updated in place. ``S`` (nk, nb, n) is
    the drive in forward time order; step ``k`` of the chunk is replayed from ``nk − 1`` down to
    0, and after it trajectory ``t`` receives the kick ``p += kicks[t] · E[k]``. Along each step
    the parameter gradient of the half-step Hamiltonian H½ = ½(H[q½, p_before] + H[q½,
    p_after]) is combined over trajectories as Σ_t weights[t] ∂H½/∂w and added to ``GW`` (nb,
    nw); combining before accumulating keeps the difference of the echoes exact to round-off
    of one step rather than of the whole sum. ``DS`` (nk, nb, n), unless empty, receives Σ_t
    weights[t] ∂V/∂s at q½ for each step.
    """
    nt = Q.shape[0]
    nk = S.shape[0]
    nb = Q.shape[1]
    n = Q.shape[2]
    nw = GW.shape[1]
    rec_s = DS.shape[0] > 0
    for b in prange(nb):
        work = np.empty(n_work)
        g = np.empty(n)
        v = np.empty(n)
        acc = np.empty(nw)
        dacc = np.empty(n)
        for k in range(nk - 1, -1, -1):
            acc[:] = 0.0
            dacc[:] = 0.0
            s = S[k, b]
            for t in range(nt):
                q = Q[t, b]
                p = P[t, b]
                wt = weights[t]
                hk.acc_dT_dw(fam, p, prm, work, 0.5 * wt, acc)
                hk.grad_T(fam, p, prm, work, g)
                _axpy(q, 0.5 * dt, g)
                hk.acc_dV_dw(fam, q, s, prm, work, wt, acc)
                if rec_s:
                    hk.dV_ds(fam, q, s, prm, work, v)
                    _axpy(dacc, wt, v)
                hk.grad_V(fam, q, s, prm, work, g)
                _axpy(p, -dt, g)
                hk.acc_dT_dw(fam, p, prm, work, 0.5 * wt, acc)
                hk.grad_T(fam, p, prm, work, g)
                _axpy(q, 0.5 * dt, g)
                _axpy(p, kicks[t], E[k, b])
            _axpy(GW[b], 1.0, acc)
            if rec_s:
                DS[k, b, :] = dacc


@njit(cache=True, parallel=True)
def energy_chunk(fam, prm, Q, P, S, out):
    """Total energy H(q, p; s) of stored states ``Q, P`` (nk, nb, n) into ``out`` (nk, nb)."""
    nk = Q.shape[0]
    nb = Q.shape[1]
    n = Q.shape[2]
    for b in prange(nb):
        work = np.empty(4 * n + 4)
        for k in range(nk):
            out[k, b] = hk.kinetic(fam, P[k, b], prm, work) + hk.potential(
                fam, Q[k, b], S[k, b], prm, work
            )
