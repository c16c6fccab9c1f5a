"""A plain numpy drift–kick–drift leapfrog, and exact / high-accuracy references for it."""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import expm


def leapfrog(model, q0: np.ndarray, p0: np.ndarray, S: np.ndarray, dt: float):
    """Integrate ``model`` through the drive ``S`` (n_steps, …, n) from (q0, p0).

    Returns positions and momenta of every state, shape (n_steps + 1, …, n)::

        q½ = q + (δ/2) ∇T(p);  p' = p − δ ∇V(q½, s_k);  q' = q½ + (δ/2) ∇T(p')
    """
    K = S.shape[0]
    q = np.array(q0, dtype=float)
    p = np.array(p0, dtype=float)
    qs = np.empty((K + 1, *q.shape))
    ps = np.empty((K + 1, *p.shape))
    qs[0], ps[0] = q, p
    for k in range(K):
        q = q + 0.5 * dt * model.grad_T(p)
        p = p - dt * model.grad_V(q, S[k])
        q = q + 0.5 * dt * model.grad_T(p)
        qs[k + 1], ps[k + 1] = q, p
    return qs, ps


def linear_generator(Minv: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Generator L of ż = L z for z = (q, p), ṗ = −K q, q̇ = M⁻¹ p (no drive)."""
    n = K.shape[0]
    L = np.zeros((2 * n, 2 * n))
    L[:n, n:] = Minv
    L[n:, :n] = -K
    return L


def exact_linear(Minv, K, q0, p0, t: float) -> tuple[np.ndarray, np.ndarray]:
    """State of the undriven linear system at time ``t``: expm(L t) (q0, p0)."""
    n = K.shape[0]
    z = expm(linear_generator(Minv, K) * t) @ np.concatenate([q0, p0])
    return z[:n], z[n:]


def reference_ode(model, q0, p0, t: float, *, rtol: float, q_scale: float, p_scale: float):
    """Undriven trajectory end point from ``solve_ivp`` (DOP853) at tolerance ``rtol``.

    Absolute tolerances are ``rtol`` times the state scales, so tiny SI values (fluxes of
    1e-16 Wb) are resolved as finely as order-one ones.
    """
    n = q0.shape[0]
    s0 = np.zeros(n)

    def rhs(_t, z):
        return np.concatenate([model.grad_T(z[n:]), -model.grad_V(z[:n], s0)])

    atol = np.concatenate([np.full(n, rtol * q_scale), np.full(n, rtol * p_scale)])
    sol = solve_ivp(rhs, (0.0, t), np.concatenate([q0, p0]), method="DOP853", rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return sol.y[:n, -1], sol.y[n:, -1]
