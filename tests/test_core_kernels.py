"""Hamiltonian kernels of every family against finite differences of H and of its gradients.

Kernels are called through :mod:`physim.kernels.dispatch` exactly as the integrator calls them.
States are random at each device's natural scale. Derivatives with respect to element values
``w`` are compared in energy units, as ``w_j ∂/∂w_j`` (the change of H for a relative change of
the element), so that elements of very different SI magnitude (1e-12 F next to 5e8 1/H) are
judged on the same footing.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference.models import reference_model
from reference.numerics import central_difference, directional_difference, group_rel_err

import physim
from physim.kernels import dispatch as hk
from physim.specs import load_device

CATALOGUE = sorted(physim.catalogue())

#: kernel and numpy reference evaluate the same closed form: round-off only
H_RTOL = 1e-12
#: central differences with relative step FD_REL: truncation ~FD_REL² ≈ 1e-10, round-off
#: ~1e-16/FD_REL times the number of summed terms (≤ 512) ≈ 5e-9
FD_REL = 1e-5
FD_RTOL = 1e-6
#: directional differences of linear maps (gradients of quadratic terms) are exact but for
#: round-off; nonlinear terms add ~FD_REL² ≈ 1e-10
HVP_RTOL = 1e-6

#: a typical voltage for LC devices, V: sets the charge scale C·V and the flux scale V/ω
_VOLT = 1e-3


def _scales(device) -> tuple[float, float, float]:
    """Natural sizes of positions, momenta and drives (q, p, s) in the device's units."""
    spec = device.spec
    if spec.kind != "lc_network":
        return 1.0, 1.0, 1.0
    caps = [e.C for e in spec.elements if e.type == "capacitor"]
    inds = [e.L for e in spec.elements if e.type == "inductor"]
    jjs = [e.phi0 for e in spec.elements if e.type == "josephson"]
    c = float(np.median(caps))
    if jjs:
        q = min(jjs) / (2 * np.pi)  # one radian of phase
    else:
        q = _VOLT * np.sqrt(np.median(inds) * c)  # flux = V/ω
    gains = [abs(s.gain) for s in spec.sources] or [1e-3]
    return q, c * _VOLT, float(np.median(gains))


class _Kernels:
    """Python-side wrappers around the dispatch kernels of one device at element values w."""

    def __init__(self, device):
        self.device = device
        self.fam = device.family
        self.w0 = device.physical(device.theta0).w.copy()
        self.work = np.empty(device.n_work)

    def prm(self, w: np.ndarray):
        ai, af, am = self.device.aux_fn(w)
        return (np.ascontiguousarray(w), ai, af, am)

    def T(self, p, w):
        return hk.kinetic(self.fam, p, self.prm(w), self.work)

    def V(self, q, s, w):
        return hk.potential(self.fam, q, s, self.prm(w), self.work)

    def H(self, q, p, s, w):
        return self.T(p, w) + self.V(q, s, w)

    def grad_T(self, p, w):
        out = np.empty_like(p)
        hk.grad_T(self.fam, p, self.prm(w), self.work, out)
        return out

    def grad_V(self, q, s, w):
        out = np.empty_like(q)
        hk.grad_V(self.fam, q, s, self.prm(w), self.work, out)
        return out


def _state(device, seed: int):
    q_s, p_s, s_s = _scales(device)
    rng = np.random.default_rng(seed)
    n = device.n_dof
    q = q_s * rng.normal(size=n)
    p = p_s * rng.normal(size=n)
    s = s_s * rng.normal(size=n)
    return q, p, s, rng


def _fd_over_w(f, w0: np.ndarray) -> np.ndarray:
    """w_j ∂f/∂w_j by central differences with step FD_REL·|w_j| (FD_REL when w_j = 0)."""
    out = np.empty_like(w0)
    for j in range(w0.shape[0]):
        h = FD_REL * (abs(w0[j]) if w0[j] != 0 else 1.0)
        out[j] = central_difference(f, w0, j, h) * (w0[j] if w0[j] != 0 else 1.0)
    return out


def _weighted(g: np.ndarray, w0: np.ndarray) -> np.ndarray:
    return g * np.where(w0 != 0, w0, 1.0)


@pytest.mark.parametrize("name", CATALOGUE)
def test_hamiltonian_matches_reference(name):
    """kinetic + potential kernels equal the numpy Hamiltonian rebuilt from the spec."""
    device = load_device(name)
    kern = _Kernels(device)
    model = reference_model(device)
    for seed in range(3):
        q, p, s, _ = _state(device, seed)
        H = kern.H(q, p, s, kern.w0)
        H_ref = model.H(q, p, s)
        scale = abs(kern.T(p, kern.w0)) + abs(kern.V(q, np.zeros_like(s), kern.w0)) + abs(q @ s)
        assert abs(H - H_ref) <= H_RTOL * scale


@pytest.mark.parametrize("name", CATALOGUE)
def test_state_gradients_match_finite_differences(name):
    """grad_T = ∂T/∂p and grad_V = ∂V/∂q."""
    device = load_device(name)
    kern = _Kernels(device)
    q, p, s, _ = _state(device, 11)
    q_s, p_s, _ = _scales(device)
    w = kern.w0
    fd_p = [central_difference(lambda x: kern.T(x, w), p, i, FD_REL * p_s) for i in range(len(p))]
    fd_q = [
        central_difference(lambda x: kern.V(x, s, w), q, i, FD_REL * q_s) for i in range(len(q))
    ]
    assert group_rel_err(kern.grad_T(p, w), fd_p) <= FD_RTOL
    assert group_rel_err(kern.grad_V(q, s, w), fd_q) <= FD_RTOL


@pytest.mark.parametrize("name", CATALOGUE)
def test_dH_dw_matches_finite_differences(name):
    """acc_dT_dw + acc_dV_dw accumulate scale·∂H/∂w for every element value."""
    device = load_device(name)
    kern = _Kernels(device)
    w0 = kern.w0
    q, p, s, _ = _state(device, 12)
    prm = kern.prm(w0)
    gw = np.zeros_like(w0)
    hk.acc_dT_dw(kern.fam, p, prm, kern.work, 1.0, gw)
    hk.acc_dV_dw(kern.fam, q, s, prm, kern.work, 1.0, gw)
    fd = _fd_over_w(lambda w: kern.H(q, p, s, w), w0)
    assert group_rel_err(_weighted(gw, w0), fd) <= FD_RTOL
    # the accumulators add scale·∂H/∂w on top of what is already there
    gw2 = np.ones_like(w0)
    hk.acc_dT_dw(kern.fam, p, prm, kern.work, -0.5, gw2)
    hk.acc_dV_dw(kern.fam, q, s, prm, kern.work, -0.5, gw2)
    np.testing.assert_allclose(gw2, 1.0 - 0.5 * gw, rtol=1e-14, atol=1e-14 * np.max(np.abs(gw)))


@pytest.mark.parametrize("name", CATALOGUE)
def test_dV_ds_matches_finite_differences(name):
    """dV_ds = ∂V/∂s, the drive gradient (∂H/∂u = Bᵀ ∂V/∂s)."""
    device = load_device(name)
    kern = _Kernels(device)
    q, p, s, _ = _state(device, 13)
    _, _, s_s = _scales(device)
    out = np.empty(device.n_dof)
    hk.dV_ds(kern.fam, q, s, kern.prm(kern.w0), kern.work, out)
    fd = [
        central_difference(lambda x: kern.V(q, x, kern.w0), s, i, FD_REL * s_s)
        for i in range(len(s))
    ]
    assert group_rel_err(out, fd) <= FD_RTOL


@pytest.mark.parametrize("name", CATALOGUE)
def test_hessian_vector_products_match_finite_differences(name):
    """hvp_T = ∇²T v and hvp_V = ∇²_q V v (BPTT twin only)."""
    device = load_device(name)
    kern = _Kernels(device)
    w0 = kern.w0
    prm = kern.prm(w0)
    q, p, s, rng = _state(device, 14)
    q_s, p_s, _ = _scales(device)
    for _ in range(2):
        vp = p_s * rng.normal(size=device.n_dof)
        vq = q_s * rng.normal(size=device.n_dof)
        out = np.empty(device.n_dof)
        hk.hvp_T(kern.fam, p, prm, vp, kern.work, out)
        fd = directional_difference(lambda x: kern.grad_T(x, w0), p, vp, FD_REL)
        assert group_rel_err(out, fd) <= HVP_RTOL
        hk.hvp_V(kern.fam, q, s, prm, vq, kern.work, out)
        fd = directional_difference(lambda x: kern.grad_V(x, s, w0), q, vq, FD_REL)
        assert group_rel_err(out, fd) <= HVP_RTOL


@pytest.mark.parametrize("name", CATALOGUE)
def test_parameter_vjps_match_finite_differences(name):
    """acc_vjp_gT_w, acc_vjp_gV_w: scale·(∂∇T/∂w)ᵀλ, scale·(∂∇V/∂w)ᵀλ; vjp_gV_s: (∂∇V/∂s)ᵀλ."""
    device = load_device(name)
    kern = _Kernels(device)
    w0 = kern.w0
    prm = kern.prm(w0)
    q, p, s, rng = _state(device, 15)
    _, _, s_s = _scales(device)
    # λ is an adjoint: its units are those of the loss per unit of ∇T (resp. ∇V); any scale works
    lam = rng.normal(size=device.n_dof)

    gw = np.zeros_like(w0)
    hk.acc_vjp_gT_w(kern.fam, p, prm, lam, kern.work, 1.0, gw)
    fd = _fd_over_w(lambda w: lam @ kern.grad_T(p, w), w0)
    if np.max(np.abs(fd)) == 0.0:  # T does not depend on w (NonlinHRU): nothing may accumulate
        assert np.all(gw == 0.0)
    else:
        assert group_rel_err(_weighted(gw, w0), fd) <= FD_RTOL

    gw = np.zeros_like(w0)
    hk.acc_vjp_gV_w(kern.fam, q, s, prm, lam, kern.work, 1.0, gw)
    fd = _fd_over_w(lambda w: lam @ kern.grad_V(q, s, w), w0)
    assert group_rel_err(_weighted(gw, w0), fd) <= FD_RTOL

    out = np.empty(device.n_dof)
    hk.vjp_gV_s(kern.fam, q, s, prm, lam, kern.work, out)
    fd = [
        central_difference(lambda x: lam @ kern.grad_V(q, x, w0), s, i, FD_REL * s_s)
        for i in range(len(s))
    ]
    assert group_rel_err(out, fd) <= FD_RTOL
