"""The BPTT digital twin: the exact discrete adjoint of the leapfrog step.

This is the reference RHEL is verified against, not a hardware protocol: it needs the stored
forward trajectory and the Hessian–vector products of the Hamiltonian. For the step of
:mod:`physim.kernels.leapfrog` with adjoints (λq', λp') of the end state:

    λq½ = λq';          λp' += (δ/2) ∇²T(p') λq';     g_w += (δ/2) (∂∇T(p')/∂w)ᵀ λq'
    λq½ −= δ ∇²V(q½) λp';   g_w −= δ (∂∇V/∂w)ᵀ λp';   g_s = −δ (∂∇V/∂s)ᵀ λp'
    λq = λq½;   λp = λp' + (δ/2) ∇²T(p) λq½;           g_w += (δ/2) (∂∇T(p)/∂w)ᵀ λq½
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from physim.kernels import dispatch as hk
from physim.kernels.leapfrog import _axpy


@njit(cache=True, parallel=True)
def adjoint_chunk(fam, prm, dt, n_work, Q, P, S, E, LQ, LP, GW, GS):
    """Propagate adjoints ``LQ, LP`` (nb, n) backwards through one chunk.

    ``Q, P`` (nk, nb, n) are the forward states at the *start* of each step of the chunk,
    ``S`` the drive of each step and ``E`` (nk, nb, n) the loss gradient ∂L/∂q at those start
    states, added after the step has been back-propagated. Parameter gradients accumulate into
    ``GW`` (nb, nw); drive gradients ∂L/∂s of each step are written to ``GS`` (nk, nb, n).
    """
    nk = Q.shape[0]
    nb = Q.shape[1]
    n = Q.shape[2]
    for b in prange(nb):
        work = np.empty(n_work)
        g = np.empty(n)
        h = np.empty(n)
        qh = np.empty(n)
        p1 = np.empty(n)
        lq = LQ[b]
        lp = LP[b]
        gw = GW[b]
        for k in range(nk - 1, -1, -1):
            q = Q[k, b]
            p = P[k, b]
            s = S[k, b]
            # recompute the step's interior points
            hk.grad_T(fam, p, prm, work, g)
            for i in range(n):
                qh[i] = q[i] + 0.5 * dt * g[i]
            hk.grad_V(fam, qh, s, prm, work, g)
            for i in range(n):
                p1[i] = p[i] - dt * g[i]
            # q' = q½ + (δ/2) ∇T(p')
            hk.hvp_T(fam, p1, prm, lq, work, h)
            _axpy(lp, 0.5 * dt, h)
            hk.acc_vjp_gT_w(fam, p1, prm, lq, work, 0.5 * dt, gw)
            # p' = p − δ ∇V(q½, s)
            hk.hvp_V(fam, qh, s, prm, lp, work, h)
            _axpy(lq, -dt, h)
            hk.acc_vjp_gV_w(fam, qh, s, prm, lp, work, -dt, gw)
            hk.vjp_gV_s(fam, qh, s, prm, lp, work, h)
            for i in range(n):
                GS[k, b, i] = -dt * h[i]
            # q½ = q + (δ/2) ∇T(p)
            hk.hvp_T(fam, p, prm, lq, work, h)
            _axpy(lp, 0.5 * dt, h)
            hk.acc_vjp_gT_w(fam, p, prm, lq, work, 0.5 * dt, gw)
            _axpy(lq, 1.0, E[k, b])
