"""Hamiltonian kernels of the linear Hamiltonian recurrent unit (LinHRU).

    H(φ, π; A, Δt, s) = Σ_i Δt_i (½ π_i² + ½ A_i φ_i² − φ_i s_i),     s = B u

integrated with the global step δ (1 in the paper), so that mode ``i`` advances with its own
step Δt_i. Packing: ``w = [A (P), Δt (P)]``; ``ai = [P]``; ``af``, ``am`` unused.
"""

from __future__ import annotations

from numba import njit

FAMILY_ID = 1


@njit(cache=True)
def kinetic(p, prm, work):
    w = prm[0]
    n = p.shape[0]
    t = 0.0
    for i in range(n):
        t += 0.5 * w[n + i] * p[i] * p[i]
    return t


@njit(cache=True)
def potential(q, s, prm, work):
    w = prm[0]
    n = q.shape[0]
    e = 0.0
    for i in range(n):
        e += w[n + i] * (0.5 * w[i] * q[i] * q[i] - q[i] * s[i])
    return e


@njit(cache=True)
def grad_T(p, prm, work, out):
    w = prm[0]
    n = p.shape[0]
    for i in range(n):
        out[i] = w[n + i] * p[i]


@njit(cache=True)
def grad_V(q, s, prm, work, out):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        out[i] = w[n + i] * (w[i] * q[i] - s[i])


@njit(cache=True)
def acc_dT_dw(p, prm, work, scale, gw):
    n = p.shape[0]
    for i in range(n):
        gw[n + i] += scale * 0.5 * p[i] * p[i]


@njit(cache=True)
def acc_dV_dw(q, s, prm, work, scale, gw):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        gw[i] += scale * 0.5 * w[n + i] * q[i] * q[i]
        gw[n + i] += scale * (0.5 * w[i] * q[i] * q[i] - q[i] * s[i])


@njit(cache=True)
def dV_ds(q, s, prm, work, out):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        out[i] = -w[n + i] * q[i]


@njit(cache=True)
def hvp_T(p, prm, v, work, out):
    w = prm[0]
    n = p.shape[0]
    for i in range(n):
        out[i] = w[n + i] * v[i]


@njit(cache=True)
def hvp_V(q, s, prm, v, work, out):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        out[i] = w[n + i] * w[i] * v[i]


@njit(cache=True)
def acc_vjp_gT_w(p, prm, lam, work, scale, gw):
    n = p.shape[0]
    for i in range(n):
        gw[n + i] += scale * lam[i] * p[i]


@njit(cache=True)
def acc_vjp_gV_w(q, s, prm, lam, work, scale, gw):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        gw[i] += scale * lam[i] * w[n + i] * q[i]
        gw[n + i] += scale * lam[i] * (w[i] * q[i] - s[i])


@njit(cache=True)
def vjp_gV_s(q, s, prm, lam, work, out):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        out[i] = -w[n + i] * lam[i]
