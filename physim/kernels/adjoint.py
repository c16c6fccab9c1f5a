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
from physim.kernels.leapfrog import (
    _axpy,
    _drive_block,
    _drive_grad_block,
    _error_into,
    block_span,
    block_steps,
)


@njit(cache=True, inline="always")
def _adjoint_step(fam, prm, dt, q, p, s, lq, lp, gw, work, g, h, qh, p1, gs):
    """Back-propagate the adjoints ``lq, lp`` of the end state through the step leaving
    ``(q, p)`` under the drive ``s``: parameter gradients add to ``gw``, ``gs`` = ∂L/∂s."""
    n = q.shape[0]
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
        gs[i] = -dt * h[i]
    # q½ = q + (δ/2) ∇T(p)
    hk.hvp_T(fam, p, prm, lq, work, h)
    _axpy(lp, 0.5 * dt, h)
    hk.acc_vjp_gT_w(fam, p, prm, lq, work, 0.5 * dt, gw)


@njit(cache=True, parallel=True)
def adjoint_inputs(
    fam, prm, dt, n_work, BT, B, R, U, G, Qs, Ps, k0, k1, LQ, LP, GW, GB, want_gu, GU
):
    """Propagate the adjoints ``LQ, LP`` (nb, n) backwards through steps k1−1 … k0, each by
    :func:`_adjoint_step`.

    ``Qs, Ps`` (K+1, nb, n) are the recorded forward states (state k starts step k), ``U`` (K,
    nb, m) the inputs (drive s_k = B u_k, ``BT`` = Bᵀ) and ``G`` (K, nb, n_out) the error
    ∂L/∂y of the readout y[k−1] = R q_k (``R`` without rows: identity); Rᵀ G[k−1] is added to
    ``LQ`` after step k has been back-propagated (nothing for k = 0). ``GW`` (nb, nw)
    accumulates the parameter gradients, ``GB`` (ng, m, n) += Σ_k u_k ⊗ ∂L/∂s_k per batch
    group (the transpose of ∂L/∂B; groups as in :func:`physim.kernels.leapfrog.echo_inputs`),
    and when ``want_gu`` ``GU[k − k0]`` = Bᵀ ∂L/∂s_k (GU spans the chunk).
    """
    K = U.shape[0]
    nb = LQ.shape[0]
    n = LQ.shape[1]
    m = BT.shape[0]
    ng = GB.shape[0]
    bs = block_steps(BT)
    for grp in prange(ng):
        work = np.empty(n_work)
        g = np.empty(n)
        h = np.empty(n)
        qh = np.empty(n)
        p1 = np.empty(n)
        e = np.empty(n)
        S = np.empty((bs, n), BT.dtype)
        ub = np.empty((bs, m), BT.dtype)
        D = np.empty((bs, n))
        dd = np.empty((bs, n), BT.dtype)
        gu = np.empty((bs, m), BT.dtype)
        gbt = np.empty((m, n), BT.dtype)
        for b in range(grp * nb // ng, (grp + 1) * nb // ng):
            lq = LQ[b]
            lp = LP[b]
            for j in range((k1 - 1) // bs, k0 // bs - 1, -1):
                lo, hi, s0, s1 = block_span(j, bs, K, k0, k1)
                _drive_block(U, b, lo, hi - lo, BT, S, ub)
                for k in range(s1 - 1, s0 - 1, -1):
                    kk = k - lo
                    _adjoint_step(
                        fam,
                        prm,
                        dt,
                        Qs[k, b],
                        Ps[k, b],
                        S[kk],
                        lq,
                        lp,
                        GW[b],
                        work,
                        g,
                        h,
                        qh,
                        p1,
                        D[kk],
                    )
                    if k > 0:
                        _error_into(R, G, k, b, e)
                        _axpy(lq, 1.0, e)
                _drive_grad_block(
                    D, dd, U, ub, B, b, lo, s0, s1, True, GB[grp], gbt, want_gu, GU, k0, gu
                )
