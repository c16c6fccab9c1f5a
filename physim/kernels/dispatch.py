"""The one place that maps a device family id to its Hamiltonian kernels.

numba cannot cache a function that receives other jitted functions as arguments (the cache key
holds their addresses), so the shared integrator calls these dispatchers with the family id of
the device instead. Adding a family means adding its kernel module and one branch per function
below; the integrator itself never changes.

Every family implements the same twelve kernels with the same signatures (``prm = (w, ai, af,
am)``, ``work`` a scratch vector of the device's ``n_work``), and may add the two fused echo
kernels at the end of this list:

* ``kinetic``, ``potential``: T(p) and V(q, s);
* ``grad_T``, ``grad_V``: ∂T/∂p and ∂V/∂q;
* ``acc_dT_dw``, ``acc_dV_dw``: ``gw += scale · ∂T/∂w`` (resp. ∂V/∂w);
* ``dV_ds``: ∂V/∂s (the drive gradient; ∂H/∂u = Bᵀ ∂V/∂s);
* ``hvp_T``, ``hvp_V``: Hessian–vector products (BPTT twin only);
* ``acc_vjp_gT_w``, ``acc_vjp_gV_w``: ``gw += scale · (∂(∇T)/∂w)ᵀ λ`` (BPTT twin only);
* ``vjp_gV_s``: ``(∂(∇_q V)/∂s)ᵀ λ`` (BPTT twin only);
* ``echo_T2``, ``echo_V2``: two lockstep RHEL echo trajectories in one pass, the forces of both
  (with exactly the arithmetic of ``grad_T`` / ``grad_V``) fused with ``gw += c0 ∂T/∂w(p0) +
  c1 ∂T/∂w(p1)`` (resp. ∂V/∂w, and ds += the same combination of ∂V/∂s). A family without them gets
  the composition of its basic kernels below (same states, slower).

The dispatchers compile with ``error_model="numpy"``: the family kernels they inline then carry
no ZeroDivisionError branch per division, which would stop their loops from vectorising (a
division by zero gives inf or NaN, which the drivers' finiteness checks report).
"""

from __future__ import annotations

from numba import njit

from physim.families import linhru_kernels as _lin
from physim.families import network_kernels as _net
from physim.families import nonlinhru_kernels as _nl

NETWORK = _net.FAMILY_ID
LINHRU = _lin.FAMILY_ID
NONLINHRU = _nl.FAMILY_ID
FAMILY_NAMES = {NETWORK: "network", LINHRU: "linhru", NONLINHRU: "nonlinhru"}


@njit(cache=True, error_model="numpy")
def kinetic(fam, p, prm, work):
    if fam == NETWORK:
        return _net.kinetic(p, prm, work)
    elif fam == LINHRU:
        return _lin.kinetic(p, prm, work)
    else:
        return _nl.kinetic(p, prm, work)


@njit(cache=True, error_model="numpy")
def potential(fam, q, s, prm, work):
    if fam == NETWORK:
        return _net.potential(q, s, prm, work)
    elif fam == LINHRU:
        return _lin.potential(q, s, prm, work)
    else:
        return _nl.potential(q, s, prm, work)


@njit(cache=True, error_model="numpy")
def grad_T(fam, p, prm, work, out):
    if fam == NETWORK:
        _net.grad_T(p, prm, work, out)
    elif fam == LINHRU:
        _lin.grad_T(p, prm, work, out)
    else:
        _nl.grad_T(p, prm, work, out)


@njit(cache=True, error_model="numpy")
def grad_V(fam, q, s, prm, work, out):
    if fam == NETWORK:
        _net.grad_V(q, s, prm, work, out)
    elif fam == LINHRU:
        _lin.grad_V(q, s, prm, work, out)
    else:
        _nl.grad_V(q, s, prm, work, out)


@njit(cache=True, error_model="numpy")
def acc_dT_dw(fam, p, prm, work, scale, gw):
    if fam == NETWORK:
        _net.acc_dT_dw(p, prm, work, scale, gw)
    elif fam == LINHRU:
        _lin.acc_dT_dw(p, prm, work, scale, gw)
    else:
        _nl.acc_dT_dw(p, prm, work, scale, gw)


@njit(cache=True, error_model="numpy")
def acc_dV_dw(fam, q, s, prm, work, scale, gw):
    if fam == NETWORK:
        _net.acc_dV_dw(q, s, prm, work, scale, gw)
    elif fam == LINHRU:
        _lin.acc_dV_dw(q, s, prm, work, scale, gw)
    else:
        _nl.acc_dV_dw(q, s, prm, work, scale, gw)


@njit(cache=True, error_model="numpy")
def dV_ds(fam, q, s, prm, work, out):
    if fam == NETWORK:
        _net.dV_ds(q, s, prm, work, out)
    elif fam == LINHRU:
        _lin.dV_ds(q, s, prm, work, out)
    else:
        _nl.dV_ds(q, s, prm, work, out)


@njit(cache=True, error_model="numpy")
def hvp_T(fam, p, prm, v, work, out):
    if fam == NETWORK:
        _net.hvp_T(p, prm, v, work, out)
    elif fam == LINHRU:
        _lin.hvp_T(p, prm, v, work, out)
    else:
        _nl.hvp_T(p, prm, v, work, out)


@njit(cache=True, error_model="numpy")
def hvp_V(fam, q, s, prm, v, work, out):
    if fam == NETWORK:
        _net.hvp_V(q, s, prm, v, work, out)
    elif fam == LINHRU:
        _lin.hvp_V(q, s, prm, v, work, out)
    else:
        _nl.hvp_V(q, s, prm, v, work, out)


@njit(cache=True, error_model="numpy")
def acc_vjp_gT_w(fam, p, prm, lam, work, scale, gw):
    if fam == NETWORK:
        _net.acc_vjp_gT_w(p, prm, lam, work, scale, gw)
    elif fam == LINHRU:
        _lin.acc_vjp_gT_w(p, prm, lam, work, scale, gw)
    else:
        _nl.acc_vjp_gT_w(p, prm, lam, work, scale, gw)


@njit(cache=True, error_model="numpy")
def acc_vjp_gV_w(fam, q, s, prm, lam, work, scale, gw):
    if fam == NETWORK:
        _net.acc_vjp_gV_w(q, s, prm, lam, work, scale, gw)
    elif fam == LINHRU:
        _lin.acc_vjp_gV_w(q, s, prm, lam, work, scale, gw)
    else:
        _nl.acc_vjp_gV_w(q, s, prm, lam, work, scale, gw)


@njit(cache=True, error_model="numpy")
def vjp_gV_s(fam, q, s, prm, lam, work, out):
    if fam == NETWORK:
        _net.vjp_gV_s(q, s, prm, lam, work, out)
    elif fam == LINHRU:
        _lin.vjp_gV_s(q, s, prm, lam, work, out)
    else:
        _nl.vjp_gV_s(q, s, prm, lam, work, out)


@njit(cache=True, error_model="numpy")
def echo_T2(fam, p0, p1, prm, work, c0, c1, gw, g0, g1):
    """g_t = ∂T/∂p(p_t), t = 0, 1; gw += c0 ∂T/∂w(p0) + c1 ∂T/∂w(p1)."""
    if fam == NETWORK:
        _net.echo_T2(p0, p1, prm, work, c0, c1, gw, g0, g1)
    elif fam == LINHRU:
        _lin.echo_T2(p0, p1, prm, work, c0, c1, gw, g0, g1)
    elif fam == NONLINHRU:
        _nl.echo_T2(p0, p1, prm, work, c0, c1, gw, g0, g1)
    else:
        acc_dT_dw(fam, p0, prm, work, c0, gw)
        acc_dT_dw(fam, p1, prm, work, c1, gw)
        grad_T(fam, p0, prm, work, g0)
        grad_T(fam, p1, prm, work, g1)


@njit(cache=True, error_model="numpy")
def echo_V2(fam, q0, q1, s, prm, work, c0, c1, gw, g0, g1, want_ds, ds):
    """g_t = ∂V/∂q(q_t, s), t = 0, 1; gw += c0 ∂V/∂w(q0) + c1 ∂V/∂w(q1); when ``want_ds``,
    ds += c0 ∂V/∂s(q0) + c1 ∂V/∂s(q1)."""
    if fam == NETWORK:
        _net.echo_V2(q0, q1, s, prm, work, c0, c1, gw, g0, g1, want_ds, ds)
    elif fam == LINHRU:
        _lin.echo_V2(q0, q1, s, prm, work, c0, c1, gw, g0, g1, want_ds, ds)
    elif fam == NONLINHRU:
        _nl.echo_V2(q0, q1, s, prm, work, c0, c1, gw, g0, g1, want_ds, ds)
    else:
        acc_dV_dw(fam, q0, s, prm, work, c0, gw)
        acc_dV_dw(fam, q1, s, prm, work, c1, gw)
        if want_ds:
            # g0, g1 serve as scratch for ∂V/∂s before they receive the forces
            dV_ds(fam, q0, s, prm, work, g0)
            dV_ds(fam, q1, s, prm, work, g1)
            for i in range(ds.shape[0]):
                ds[i] += c0 * g0[i] + c1 * g1[i]
        grad_V(fam, q0, s, prm, work, g0)
        grad_V(fam, q1, s, prm, work, g1)
