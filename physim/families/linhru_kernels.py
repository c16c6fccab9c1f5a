"""Hamiltonian kernels of the linear Hamiltonian recurrent unit (LinHRU).

    H(φ, π; A, Δt, s) = Σ_i Δt_i (½ π_i² + ½ A_i φ_i² − φ_i s_i),     s = B u

integrated with the global step δ (1 in the paper), so that mode ``i`` advances with its own
step Δt_i. Packing: ``w = [A (P), Δt (P)]``; ``ai = [P]``; ``af``, ``am`` unused.
"""

from __future__ import annotations

from numba import njit


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


@njit(cache=True, inline="always")
def grad_T(p, prm, work, out):
    w = prm[0]
    n = p.shape[0]
    for i in range(n):
        out[i] = w[n + i] * p[i]


@njit(cache=True, inline="always")
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


# ------------------------------------------------------------------ RHEL echo: two trajectories
# Two lockstep echo trajectories in one pass (see network_kernels.echo_T2): the forces use the
# arithmetic of grad_T / grad_V, fused with the ∂H/∂w accumulation.
@njit(cache=True, inline="always")
def echo_T2(p0, p1, prm, work, c0, c1, gw, g0, g1):
    """g_t = ∂T/∂p(p_t) for t = 0, 1 and gw += c0 ∂T/∂w(p0) + c1 ∂T/∂w(p1)."""
    w = prm[0]
    n = p0.shape[0]
    for i in range(n):
        h = w[n + i]
        x0 = p0[i]
        x1 = p1[i]
        g0[i] = h * x0
        g1[i] = h * x1
        gw[n + i] += c0 * 0.5 * x0 * x0 + c1 * 0.5 * x1 * x1


@njit(cache=True, inline="always")
def echo_V2(q0, q1, s, prm, work, c0, c1, gw, g0, g1, want_ds, ds):
    """g_t = ∂V/∂q(q_t, s) for t = 0, 1; gw += c0 ∂V/∂w(q0) + c1 ∂V/∂w(q1); when ``want_ds``,
    ds += c0 ∂V/∂s(q0) + c1 ∂V/∂s(q1)."""
    w = prm[0]
    n = q0.shape[0]
    for i in range(n):
        a = w[i]
        h = w[n + i]
        si = s[i]
        x0 = q0[i]
        x1 = q1[i]
        g0[i] = h * (a * x0 - si)
        g1[i] = h * (a * x1 - si)
        gw[i] += c0 * 0.5 * h * x0 * x0 + c1 * 0.5 * h * x1 * x1
        gw[n + i] += c0 * (0.5 * a * x0 * x0 - x0 * si) + c1 * (0.5 * a * x1 * x1 - x1 * si)
    if want_ds:
        for i in range(n):
            h = w[n + i]
            ds[i] += c0 * (-h * q0[i]) + c1 * (-h * q1[i])
