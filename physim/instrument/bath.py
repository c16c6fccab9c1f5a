"""Dissipation and thermal noise: the exact O-step matrices of the Langevin splitting.

The device is linearised once at q = 0, s = 0 to define its mass matrix M (T = ½ pᵀM⁻¹p, the
Hessian of T inverted) and stiffness K (Hessian of V). With M = L Lᵀ, mass-weighted momenta
p̃ = L⁻¹p obey dp̃ = −G p̃ dt + √(2 k_B T) G^½ dW with a symmetric friction G:

* per mode: the normal modes are the eigenvectors U of L⁻¹ K L⁻ᵀ (frequencies ω_i) and
  G = U diag(ω_i / Q_i) Uᵀ, so mode i's energy decays as exp(−ω_i t / Q_i);
* per dof: D = diag(γ_i M_ii) acts on velocities (dp = −D M⁻¹p dt) and G = L⁻¹ D L⁻ᵀ.

With G = V diag(g) Vᵀ the exact O step of length h is p ← A p + N ξ with
A = L V e^{−g′h} Vᵀ L⁻¹ and N = L V diag(√(k_B T g (1 − e^{−2g′h}) / g′)), where g′ = g normally
and g′ = (1 − c) g during a loss-compensated echo (the bath noise stays that of the loss). For
g′ = g the Gibbs covariance k_B T M is invariant: A (k_B T M) Aᵀ + N Nᵀ = k_B T M.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physim.device import Device, Physical
from physim.instrument.sources.dissipation import DissipationSpec
from physim.stability import hessian


def mass_and_stiffness(device: Device, phys: Physical) -> tuple[np.ndarray, np.ndarray]:
    """Mass matrix M (inverse Hessian of T) and stiffness K (Hessian of V at q = 0, s = 0)."""
    Minv = hessian(device, phys, "T")
    M = np.linalg.inv(Minv)
    return 0.5 * (M + M.T), hessian(device, phys, "V")


def normal_modes(device: Device, phys: Physical) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ω ascending, mass-weighted eigenvectors U, Cholesky factor L of M)."""
    M, K = mass_and_stiffness(device, phys)
    L = np.linalg.cholesky(M)
    Li = np.linalg.inv(L)
    w2, U = np.linalg.eigh(Li @ K @ Li.T)
    return np.sqrt(np.maximum(w2, 0.0)), U, L


def _per_dof(value, n: int, what: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.shape == (1,):
        return np.full(n, arr[0])
    if arr.shape != (n,):
        raise ValueError(
            f"dissipation.{what} has {arr.shape[0]} entries but the device has {n} "
            f"{'modes' if what == 'quality_factor' else 'degrees of freedom'}; give one value "
            "or one per entry"
        )
    return arr


@dataclass(frozen=True)
class Bath:
    """O-step matrices for a half step (forward ``A, N``; echo ``A_echo, N_echo``)."""

    A: np.ndarray
    N: np.ndarray
    A_echo: np.ndarray
    N_echo: np.ndarray
    rates: np.ndarray  # eigen-rates g of G (1/s)
    kT: float

    @property
    def lossless(self) -> bool:
        return not np.any(self.rates > 0)


def _weighted_friction(
    device: Device, phys: Physical, spec: DissipationSpec
) -> tuple[np.ndarray, np.ndarray]:
    """(G, L): the symmetric friction on mass-weighted momenta and the Cholesky factor of M."""
    n = device.n_dof
    omega, U, L = normal_modes(device, phys)
    if spec.quality_factor is not None:
        Q = _per_dof(spec.quality_factor, n, "quality_factor")
        G = (U * (omega / Q)) @ U.T
    else:
        gam = _per_dof(spec.damping_rate, n, "damping_rate")
        M = L @ L.T
        Li = np.linalg.inv(L)
        G = Li @ np.diag(gam * np.diag(M)) @ Li.T
    return G, L


def friction_matrix(device: Device, phys: Physical, spec: DissipationSpec) -> np.ndarray:
    """D in dp = −D M⁻¹ p dt: for an LC network the conductance matrix of the loss, S.

    Per dof it is diag(γ_i M_ii) (a shunt conductance γ_i C_ii at node i); per mode it is
    L G Lᵀ, generally a full matrix.
    """
    G, L = _weighted_friction(device, phys, spec)
    D = L @ G @ L.T
    return 0.5 * (D + D.T)


def build_bath(device: Device, phys: Physical, spec: DissipationSpec) -> Bath:
    """O-step matrices for half steps of the device's δ."""
    G, L = _weighted_friction(device, phys, spec)
    g, V = np.linalg.eigh(0.5 * (G + G.T))
    g = np.maximum(g, 0.0)
    kT = spec.boltzmann * spec.temperature
    h = 0.5 * device.dt
    Li = np.linalg.inv(L)

    def mats(gp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        A = L @ (V * np.exp(-gp * h)) @ V.T @ Li
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(
                np.abs(gp * h) > 1e-300, kT * g * -np.expm1(-2.0 * gp * h) / gp, 2.0 * kT * g * h
            )
        N = L @ V * np.sqrt(np.maximum(var, 0.0))
        return np.ascontiguousarray(A), np.ascontiguousarray(N)

    A, N = mats(g)
    Ae, Ne = mats((1.0 - spec.compensation) * g)
    return Bath(A, N, Ae, Ne, g, kT)


def thermal_state(
    device: Device, phys: Physical, kT: float, batch: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw (q, p) from the Gibbs distribution of the device linearised at q = 0."""
    M, K = mass_and_stiffness(device, phys)
    try:
        Lk = np.linalg.cholesky(np.linalg.inv(K))
    except np.linalg.LinAlgError:
        raise ValueError(
            "a thermal state needs a stable equilibrium at q = 0 (positive-definite stiffness); "
            f"device {device.name!r} has a zero or negative mode — prepare 'zero' instead"
        ) from None
    Lm = np.linalg.cholesky(M)
    q = np.sqrt(kT) * rng.standard_normal((batch, device.n_dof)) @ Lk.T
    p = np.sqrt(kT) * rng.standard_normal((batch, device.n_dof)) @ Lm.T
    return np.ascontiguousarray(q), np.ascontiguousarray(p)
