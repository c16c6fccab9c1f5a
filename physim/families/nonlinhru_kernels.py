"""Hamiltonian kernels of the nonlinear Hamiltonian recurrent unit (NonlinHRU).

    H(φ, π; α, c, W, b, s) = ½‖π‖² + (α/2)‖φ‖² + Σ_i (c_i / W_i) log cosh(z_i),
    z_i = W_i φ_i + s_i + b_i,     s = B u

Packing: ``w = [α, c (P), W (P), b (P)]``; ``ai``, ``af``, ``am`` unused.

tanh and log cosh come from :mod:`physim.fastexp`'s straight-line exp, expm1 and log1p
(within 4 ulp of libm's tanh on a dense grid; log cosh within 4e-16·max(1, |z|)), and every
kernel here and in the dispatch uses numba's ``error_model="numpy"`` (no ZeroDivisionError
branch per division), so that the per-mode loops vectorise: libm's tanh and log1p are calls
LLVM cannot vectorise, 25 and 20 ns per element against 4 and 6.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from physim.fastexp import exp_clamped, expm1_clamped, log1p_unit

_LOG2 = np.log(2.0)


@njit(cache=True, inline="always", error_model="numpy")
def _logcosh(z):
    # log cosh z = |z| + log1p(exp(−2|z|)) − log 2, stable for large |z|
    a = abs(z)
    return a + log1p_unit(exp_clamped(-2.0 * a)) - _LOG2


@njit(cache=True, inline="always", error_model="numpy")
def _tanh(z):
    # tanh z = sign(z) · (−t) / (2 + t), t = expm1(−2|z|): accurate near 0, no overflow
    t = expm1_clamped(-2.0 * abs(z))
    th = -t / (2.0 + t)
    return th if z >= 0.0 else -th


@njit(cache=True, error_model="numpy")
def kinetic(p, prm, work):
    t = 0.0
    for i in range(p.shape[0]):
        t += 0.5 * p[i] * p[i]
    return t


@njit(cache=True, error_model="numpy")
def potential(q, s, prm, work):
    w = prm[0]
    n = q.shape[0]
    e = 0.0
    for i in range(n):
        c, W, b = w[1 + i], w[1 + n + i], w[1 + 2 * n + i]
        e += 0.5 * w[0] * q[i] * q[i] + c / W * _logcosh(W * q[i] + s[i] + b)
    return e


@njit(cache=True, inline="always", error_model="numpy")
def grad_T(p, prm, work, out):
    for i in range(p.shape[0]):
        out[i] = p[i]


@njit(cache=True, inline="always", error_model="numpy")
def grad_V(q, s, prm, work, out):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        c, W, b = w[1 + i], w[1 + n + i], w[1 + 2 * n + i]
        out[i] = w[0] * q[i] + c * _tanh(W * q[i] + s[i] + b)


@njit(cache=True, error_model="numpy")
def acc_dT_dw(p, prm, work, scale, gw):
    return


@njit(cache=True, error_model="numpy")
def acc_dV_dw(q, s, prm, work, scale, gw):
    w = prm[0]
    n = q.shape[0]
    ga = 0.0
    for i in range(n):
        c, W, b = w[1 + i], w[1 + n + i], w[1 + 2 * n + i]
        z = W * q[i] + s[i] + b
        lc = _logcosh(z)
        th = _tanh(z)
        ga += 0.5 * q[i] * q[i]
        gw[1 + i] += scale * lc / W
        gw[1 + n + i] += scale * c * (th * q[i] / W - lc / (W * W))
        gw[1 + 2 * n + i] += scale * c * th / W
    gw[0] += scale * ga


@njit(cache=True, error_model="numpy")
def dV_ds(q, s, prm, work, out):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        c, W, b = w[1 + i], w[1 + n + i], w[1 + 2 * n + i]
        out[i] = c / W * _tanh(W * q[i] + s[i] + b)


@njit(cache=True, error_model="numpy")
def hvp_T(p, prm, v, work, out):
    for i in range(p.shape[0]):
        out[i] = v[i]


@njit(cache=True, error_model="numpy")
def hvp_V(q, s, prm, v, work, out):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        c, W, b = w[1 + i], w[1 + n + i], w[1 + 2 * n + i]
        th = _tanh(W * q[i] + s[i] + b)
        out[i] = (w[0] + c * W * (1.0 - th * th)) * v[i]


@njit(cache=True, error_model="numpy")
def acc_vjp_gT_w(p, prm, lam, work, scale, gw):
    return


@njit(cache=True, error_model="numpy")
def acc_vjp_gV_w(q, s, prm, lam, work, scale, gw):
    w = prm[0]
    n = q.shape[0]
    ga = 0.0
    for i in range(n):
        c, W, b = w[1 + i], w[1 + n + i], w[1 + 2 * n + i]
        th = _tanh(W * q[i] + s[i] + b)
        sech2 = 1.0 - th * th
        ga += lam[i] * q[i]
        gw[1 + i] += scale * lam[i] * th
        gw[1 + n + i] += scale * lam[i] * c * sech2 * q[i]
        gw[1 + 2 * n + i] += scale * lam[i] * c * sech2
    gw[0] += scale * ga


@njit(cache=True, error_model="numpy")
def vjp_gV_s(q, s, prm, lam, work, out):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        c, W, b = w[1 + i], w[1 + n + i], w[1 + 2 * n + i]
        th = _tanh(W * q[i] + s[i] + b)
        out[i] = c * (1.0 - th * th) * lam[i]


# ------------------------------------------------------------------ RHEL echo: two trajectories
# Two lockstep echo trajectories in one pass (see network_kernels.echo_T2): the forces use the
# arithmetic of grad_T / grad_V, and tanh(z) is shared by the force, ∂V/∂w and ∂V/∂s.
@njit(cache=True, inline="always", error_model="numpy")
def echo_T2(p0, p1, prm, work, c0, c1, gw, g0, g1):
    """g_t = ∂T/∂p(p_t) for t = 0, 1; T has no parameters."""
    for i in range(p0.shape[0]):
        g0[i] = p0[i]
        g1[i] = p1[i]


@njit(cache=True, inline="always", error_model="numpy")
def echo_V2(q0, q1, s, prm, work, c0, c1, gw, g0, g1, want_ds, ds):
    """g_t = ∂V/∂q(q_t, s) for t = 0, 1; gw += c0 ∂V/∂w(q0) + c1 ∂V/∂w(q1); when ``want_ds``,
    ds += c0 ∂V/∂s(q0) + c1 ∂V/∂s(q1)."""
    w = prm[0]
    n = q0.shape[0]
    al = w[0]
    ga = 0.0
    # the transcendental part first, in a loop of its own that vectorises (work holds 4n;
    # four separate views, as one array indexed at four offsets did not vectorise)
    t0, t1, l0, l1 = work[:n], work[n : 2 * n], work[2 * n : 3 * n], work[3 * n : 4 * n]
    for i in range(n):
        W, b = w[1 + n + i], w[1 + 2 * n + i]
        z0 = W * q0[i] + s[i] + b
        z1 = W * q1[i] + s[i] + b
        t0[i] = _tanh(z0)
        t1[i] = _tanh(z1)
        l0[i] = _logcosh(z0)
        l1[i] = _logcosh(z1)
    for i in range(n):
        c, W = w[1 + i], w[1 + n + i]
        x0 = q0[i]
        x1 = q1[i]
        th0 = t0[i]
        th1 = t1[i]
        lc0 = l0[i]
        lc1 = l1[i]
        g0[i] = al * x0 + c * th0
        g1[i] = al * x1 + c * th1
        ga += c0 * 0.5 * x0 * x0 + c1 * 0.5 * x1 * x1
        gw[1 + i] += c0 * lc0 / W + c1 * lc1 / W
        gw[1 + n + i] += c0 * c * (th0 * x0 / W - lc0 / (W * W)) + c1 * c * (
            th1 * x1 / W - lc1 / (W * W)
        )
        gw[1 + 2 * n + i] += c0 * c * th0 / W + c1 * c * th1 / W
        if want_ds:
            ds[i] += c0 * (c / W * th0) + c1 * (c / W * th1)
    gw[0] += ga
