"""Branch-element networks: the kernels shared by oscillator networks and LC circuits.

A network has ``n`` nodes with positions ``q`` (mass displacements in m, or node fluxes in Wb)
and conjugate momenta ``p`` (kg·m/s, or node charges in C). Two-terminal elements sit on
branches ``b = (a, c)`` between two nodes or between a node and ground (index ``-1``); the
branch coordinate is ``d_b = q_a - q_c`` (``q_{-1} = 0``).

    H(q, p) = ½ pᵀ C⁻¹ p                                   kinetic (masses / capacitors)
            + Σ_lin ½ k_b d_b²                             springs / inverse inductances
            + Σ_quart ¼ β_b d_b⁴                           Duffing terms
            − Σ_cos E_b cos(κ_b d_b)                       Josephson-like elements
            − qᵀ s,        s = B u                         drive (forces / injected currents)

with ``C = Σ_cap c_b a_b a_bᵀ`` (``a_b`` the branch incidence vector), so a mass is a
capacitance to ground. ``∂H/∂c_b = −½ (a_bᵀ C⁻¹ p)²``: minus half the squared branch
velocity (voltage). Oscillator networks and LC netlists are two vocabularies compiled into this
one form (see :mod:`physim.families.oscillator` and :mod:`physim.families.lc`).

Kernel packing (``prm = (w, ai, af, am)``):

* ``w``  = [c (n_cap), k (n_lin), β (n_quart), E (n_cos)] physical element values;
* ``ai`` = [n, n_cap, n_lin, n_quart, n_cos, diag, cap_a, cap_c, lin_a, lin_c, quart_a,
  quart_c, cos_a, cos_c] (``diag = 1`` when C is diagonal);
* ``af`` = κ of the cosine elements;
* ``am`` = C⁻¹ (n × n), recomputed from ``w`` whenever the capacitances change.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_HDR = 6


@njit(cache=True, inline="always")
def _layout(ai):
    n, ncap, nlin, nq, ncos = ai[0], ai[1], ai[2], ai[3], ai[4]
    o_cap = _HDR
    o_lin = o_cap + 2 * ncap
    o_q = o_lin + 2 * nlin
    o_cos = o_q + 2 * nq
    return n, ncap, nlin, nq, ncos, o_cap, o_lin, o_q, o_cos


@njit(cache=True, inline="always")
def _branch(x, a, c):
    va = x[a] if a >= 0 else 0.0
    vc = x[c] if c >= 0 else 0.0
    return va - vc


@njit(cache=True, inline="always")
def _scatter(out, a, c, f):
    if a >= 0:
        out[a] += f
    if c >= 0:
        out[c] -= f


@njit(cache=True, inline="always")
def _minv_dot(ai, am, x, out):
    n = ai[0]
    if ai[5] == 1:
        for i in range(n):
            out[i] = am[i, i] * x[i]
    else:
        for i in range(n):
            acc = 0.0
            for j in range(n):
                acc += am[i, j] * x[j]
            out[i] = acc


@njit(cache=True)
def kinetic(p, prm, work):
    w, ai, af, am = prm
    n = ai[0]
    v = work[:n]
    _minv_dot(ai, am, p, v)
    t = 0.0
    for i in range(n):
        t += p[i] * v[i]
    return 0.5 * t


@njit(cache=True)
def potential(q, s, prm, work):
    w, ai, af, am = prm
    n, ncap, nlin, nq, ncos, o_cap, o_lin, o_q, o_cos = _layout(ai)
    e = 0.0
    for b in range(nlin):
        d = _branch(q, ai[o_lin + b], ai[o_lin + nlin + b])
        e += 0.5 * w[ncap + b] * d * d
    for b in range(nq):
        d = _branch(q, ai[o_q + b], ai[o_q + nq + b])
        e += 0.25 * w[ncap + nlin + b] * d * d * d * d
    for b in range(ncos):
        d = _branch(q, ai[o_cos + b], ai[o_cos + ncos + b])
        e -= w[ncap + nlin + nq + b] * np.cos(af[b] * d)
    for i in range(n):
        e -= q[i] * s[i]
    return e


@njit(cache=True, inline="always")
def grad_T(p, prm, work, out):
    w, ai, af, am = prm
    _minv_dot(ai, am, p, out)


@njit(cache=True, inline="always")
def grad_V(q, s, prm, work, out):
    w, ai, af, am = prm
    n, ncap, nlin, nq, ncos, o_cap, o_lin, o_q, o_cos = _layout(ai)
    for i in range(n):
        out[i] = -s[i]
    for b in range(nlin):
        a, c = ai[o_lin + b], ai[o_lin + nlin + b]
        _scatter(out, a, c, w[ncap + b] * _branch(q, a, c))
    for b in range(nq):
        a, c = ai[o_q + b], ai[o_q + nq + b]
        d = _branch(q, a, c)
        _scatter(out, a, c, w[ncap + nlin + b] * d * d * d)
    for b in range(ncos):
        a, c = ai[o_cos + b], ai[o_cos + ncos + b]
        d = _branch(q, a, c)
        _scatter(out, a, c, w[ncap + nlin + nq + b] * af[b] * np.sin(af[b] * d))


@njit(cache=True)
def acc_dT_dw(p, prm, work, scale, gw):
    w, ai, af, am = prm
    n, ncap, nlin, nq, ncos, o_cap, o_lin, o_q, o_cos = _layout(ai)
    v = work[:n]
    _minv_dot(ai, am, p, v)
    for b in range(ncap):
        d = _branch(v, ai[o_cap + b], ai[o_cap + ncap + b])
        gw[b] -= scale * 0.5 * d * d


@njit(cache=True)
def acc_dV_dw(q, s, prm, work, scale, gw):
    w, ai, af, am = prm
    n, ncap, nlin, nq, ncos, o_cap, o_lin, o_q, o_cos = _layout(ai)
    for b in range(nlin):
        d = _branch(q, ai[o_lin + b], ai[o_lin + nlin + b])
        gw[ncap + b] += scale * 0.5 * d * d
    for b in range(nq):
        d = _branch(q, ai[o_q + b], ai[o_q + nq + b])
        gw[ncap + nlin + b] += scale * 0.25 * d * d * d * d
    for b in range(ncos):
        d = _branch(q, ai[o_cos + b], ai[o_cos + ncos + b])
        gw[ncap + nlin + nq + b] -= scale * np.cos(af[b] * d)


@njit(cache=True)
def dV_ds(q, s, prm, work, out):
    for i in range(q.shape[0]):
        out[i] = -q[i]


@njit(cache=True)
def hvp_T(p, prm, v, work, out):
    w, ai, af, am = prm
    _minv_dot(ai, am, v, out)


@njit(cache=True)
def hvp_V(q, s, prm, v, work, out):
    w, ai, af, am = prm
    n, ncap, nlin, nq, ncos, o_cap, o_lin, o_q, o_cos = _layout(ai)
    for i in range(n):
        out[i] = 0.0
    for b in range(nlin):
        a, c = ai[o_lin + b], ai[o_lin + nlin + b]
        _scatter(out, a, c, w[ncap + b] * _branch(v, a, c))
    for b in range(nq):
        a, c = ai[o_q + b], ai[o_q + nq + b]
        d = _branch(q, a, c)
        _scatter(out, a, c, 3.0 * w[ncap + nlin + b] * d * d * _branch(v, a, c))
    for b in range(ncos):
        a, c = ai[o_cos + b], ai[o_cos + ncos + b]
        d = _branch(q, a, c)
        kap = af[b]
        _scatter(
            out, a, c, w[ncap + nlin + nq + b] * kap * kap * np.cos(kap * d) * _branch(v, a, c)
        )


@njit(cache=True)
def acc_vjp_gT_w(p, prm, lam, work, scale, gw):
    w, ai, af, am = prm
    n, ncap, nlin, nq, ncos, o_cap, o_lin, o_q, o_cos = _layout(ai)
    v = work[:n]
    mu = work[n : 2 * n]
    _minv_dot(ai, am, p, v)
    _minv_dot(ai, am, lam, mu)
    # d(C⁻¹p)/dc_b = −C⁻¹ a_b a_bᵀ C⁻¹ p, so λᵀ(...) = −(a_bᵀ C⁻¹λ)(a_bᵀ C⁻¹p)
    for b in range(ncap):
        a, c = ai[o_cap + b], ai[o_cap + ncap + b]
        gw[b] -= scale * _branch(mu, a, c) * _branch(v, a, c)


@njit(cache=True)
def acc_vjp_gV_w(q, s, prm, lam, work, scale, gw):
    w, ai, af, am = prm
    n, ncap, nlin, nq, ncos, o_cap, o_lin, o_q, o_cos = _layout(ai)
    for b in range(nlin):
        a, c = ai[o_lin + b], ai[o_lin + nlin + b]
        gw[ncap + b] += scale * _branch(q, a, c) * _branch(lam, a, c)
    for b in range(nq):
        a, c = ai[o_q + b], ai[o_q + nq + b]
        d = _branch(q, a, c)
        gw[ncap + nlin + b] += scale * d * d * d * _branch(lam, a, c)
    for b in range(ncos):
        a, c = ai[o_cos + b], ai[o_cos + ncos + b]
        d = _branch(q, a, c)
        gw[ncap + nlin + nq + b] += scale * af[b] * np.sin(af[b] * d) * _branch(lam, a, c)


@njit(cache=True)
def vjp_gV_s(q, s, prm, lam, work, out):
    for i in range(q.shape[0]):
        out[i] = -lam[i]


# ------------------------------------------------------------------ RHEL echo: two trajectories
# The echo runs its ± trajectories in lockstep. These kernels step two of them in one pass over
# the branches, sharing the index decoding and branch differences between the force and the
# ∂H/∂w accumulation; each trajectory's force is computed with exactly the arithmetic of
# grad_T / grad_V, so the echo states do not depend on how the trajectories are grouped.
@njit(cache=True, inline="always")
def echo_T2(p0, p1, prm, work, c0, c1, gw, g0, g1):
    """g_t = ∂T/∂p(p_t) for t = 0, 1 and gw += c0 ∂T/∂w(p0) + c1 ∂T/∂w(p1)."""
    w, ai, af, am = prm
    n, ncap, nlin, nq, ncos, o_cap, o_lin, o_q, o_cos = _layout(ai)
    if ai[5] == 1:
        for i in range(n):
            g0[i] = am[i, i] * p0[i]
            g1[i] = am[i, i] * p1[i]
    else:
        for i in range(n):
            a0 = 0.0
            a1 = 0.0
            for j in range(n):
                a0 += am[i, j] * p0[j]
                a1 += am[i, j] * p1[j]
            g0[i] = a0
            g1[i] = a1
    for b in range(ncap):
        a, c = ai[o_cap + b], ai[o_cap + ncap + b]
        d0 = _branch(g0, a, c)
        d1 = _branch(g1, a, c)
        gw[b] -= c0 * 0.5 * d0 * d0 + c1 * 0.5 * d1 * d1


@njit(cache=True, inline="always")
def echo_V2(q0, q1, s, prm, work, c0, c1, gw, g0, g1, want_ds, ds):
    """g_t = ∂V/∂q(q_t, s) for t = 0, 1; gw += c0 ∂V/∂w(q0) + c1 ∂V/∂w(q1); when ``want_ds``,
    ds += c0 ∂V/∂s(q0) + c1 ∂V/∂s(q1)."""
    w, ai, af, am = prm
    n, ncap, nlin, nq, ncos, o_cap, o_lin, o_q, o_cos = _layout(ai)
    for i in range(n):
        g0[i] = -s[i]
        g1[i] = -s[i]
    for b in range(nlin):
        a, c = ai[o_lin + b], ai[o_lin + nlin + b]
        d0 = _branch(q0, a, c)
        d1 = _branch(q1, a, c)
        k = w[ncap + b]
        _scatter(g0, a, c, k * d0)
        _scatter(g1, a, c, k * d1)
        gw[ncap + b] += c0 * 0.5 * d0 * d0 + c1 * 0.5 * d1 * d1
    for b in range(nq):
        a, c = ai[o_q + b], ai[o_q + nq + b]
        d0 = _branch(q0, a, c)
        d1 = _branch(q1, a, c)
        be = w[ncap + nlin + b]
        _scatter(g0, a, c, be * d0 * d0 * d0)
        _scatter(g1, a, c, be * d1 * d1 * d1)
        gw[ncap + nlin + b] += c0 * 0.25 * d0 * d0 * d0 * d0 + c1 * 0.25 * d1 * d1 * d1 * d1
    for b in range(ncos):
        a, c = ai[o_cos + b], ai[o_cos + ncos + b]
        d0 = _branch(q0, a, c)
        d1 = _branch(q1, a, c)
        e, kap = w[ncap + nlin + nq + b], af[b]
        _scatter(g0, a, c, e * kap * np.sin(kap * d0))
        _scatter(g1, a, c, e * kap * np.sin(kap * d1))
        gw[ncap + nlin + nq + b] -= c0 * np.cos(kap * d0) + c1 * np.cos(kap * d1)
    if want_ds:
        for i in range(n):
            ds[i] += c0 * -q0[i] + c1 * -q1[i]
