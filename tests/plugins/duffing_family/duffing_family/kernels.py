"""Kernels of uncoupled Duffing oscillators; ``w = [m (n), k (n), β (n)]``, ``ai = [n]``."""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def kinetic(p, prm, work):
    w = prm[0]
    t = 0.0
    for i in range(p.shape[0]):
        t += 0.5 * p[i] * p[i] / w[i]
    return t


@njit(cache=True)
def potential(q, s, prm, work):
    w = prm[0]
    n = q.shape[0]
    e = 0.0
    for i in range(n):
        x = q[i]
        e += 0.5 * w[n + i] * x * x + 0.25 * w[2 * n + i] * x * x * x * x - x * s[i]
    return e


@njit(cache=True)
def grad_T(p, prm, work, out):
    w = prm[0]
    for i in range(p.shape[0]):
        out[i] = p[i] / w[i]


@njit(cache=True)
def grad_V(q, s, prm, work, out):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        x = q[i]
        out[i] = w[n + i] * x + w[2 * n + i] * x * x * x - s[i]


@njit(cache=True)
def acc_dT_dw(p, prm, work, scale, gw):
    w = prm[0]
    for i in range(p.shape[0]):
        gw[i] -= scale * 0.5 * p[i] * p[i] / (w[i] * w[i])


@njit(cache=True)
def acc_dV_dw(q, s, prm, work, scale, gw):
    n = q.shape[0]
    for i in range(n):
        x2 = q[i] * q[i]
        gw[n + i] += scale * 0.5 * x2
        gw[2 * n + i] += scale * 0.25 * x2 * x2


@njit(cache=True)
def dV_ds(q, s, prm, work, out):
    for i in range(q.shape[0]):
        out[i] = -q[i]


@njit(cache=True)
def hvp_T(p, prm, v, work, out):
    w = prm[0]
    for i in range(p.shape[0]):
        out[i] = v[i] / w[i]


@njit(cache=True)
def hvp_V(q, s, prm, v, work, out):
    w = prm[0]
    n = q.shape[0]
    for i in range(n):
        out[i] = (w[n + i] + 3.0 * w[2 * n + i] * q[i] * q[i]) * v[i]


@njit(cache=True)
def acc_vjp_gT_w(p, prm, lam, work, scale, gw):
    w = prm[0]
    for i in range(p.shape[0]):
        gw[i] -= scale * lam[i] * p[i] / (w[i] * w[i])


@njit(cache=True)
def acc_vjp_gV_w(q, s, prm, lam, work, scale, gw):
    n = q.shape[0]
    for i in range(n):
        x = q[i]
        gw[n + i] += scale * lam[i] * x
        gw[2 * n + i] += scale * lam[i] * x * x * x


@njit(cache=True)
def vjp_gV_s(q, s, prm, lam, work, out):
    for i in range(q.shape[0]):
        out[i] = -lam[i]
