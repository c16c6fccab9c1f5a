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

Quantum bath (``DissipationSpec.quantum``). A normal mode of frequency ω in equilibrium at T
holds the mean energy E(ω, T) = (ħω/2)·coth(ħω/2k_BT): k_BT when ħω ≪ k_BT, ħω/2 (zero point)
when ħω ≫ k_BT. The quantum bath replaces k_BT by E(ω_i, T) per normal mode i, in the noise and
in the thermal state — an effective temperature T_i = E(ω_i, T)/k_B per mode:

* noise: with per-mode loss G = U diag(g) Uᵀ (``quality_factor``: g_i = ω_i/Q_i) the O step is
  A = L U e^{−g′h} Uᵀ L⁻¹ and N = L U diag(√(E_i g_i (1 − e^{−2g′_i h}) / g′_i)): mode i gets
  noise of covariance 2 g_i E_i dt in the mode basis, mapped to the dof basis by L U. The
  stationary covariance of the linearised device is then diag(E_i) on mass-weighted momenta
  and diag(E_i/ω_i²) on mass-weighted positions, exactly for any Q (G and Θ = U diag(E) Uᵀ
  commute with the stiffness, so G Θ + Θ G = 2 G Θ solves the Lyapunov equation); the splitting
  adds its O((ωδ)²) bias, as for the classical bath.
* thermal state: the Wigner function of the linearised device's Gibbs state, a Gaussian of
  those covariances (exact for a harmonic device).

It is an approximation, and it is stated as one: the noise is white (Markovian) with a
strength fixed per mode, so it is right for a mode in steady state at weak coupling, not for
the colour of the true quantum noise across a linewidth, not at strong damping (Q ≲ 1) and not
for what the device does off its linearisation — a junction or a Duffing spring is assigned
the modes of its linearisation at q = 0, s = 0 (the bottom of its well; a DC bias that moves
the operating point is not followed), and the trajectories of a nonlinear device are classical
(truncated Wigner). A per-dof ``damping_rate`` couples modes of different E, and no white
noise then reproduces their quantum populations (the noise covariance G Θ + Θ G that the
Lyapunov equation asks for is in general not positive semi-definite): the quantum bath needs
``quality_factor`` and refuses ``damping_rate`` with that reason.

ħ is known in J·s only: the quantum bath acts on devices whose units are SI (positions times
momenta an action in J·s, time in s — LC networks and oscillator networks, :data:`SI_UNITS`).
On a dimensionless device (an HRU, where ``boltzmann = 1`` makes T an energy in its own unit)
``quantum = 'auto'`` stays classical and ``quantum = 'on'`` is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physim.device import Device, Physical
from physim.instrument.sources.dissipation import QUANTUM_THRESHOLD, DissipationSpec
from physim.stability import hessian

#: reduced Planck constant, J·s (CODATA 2018, exact with h)
HBAR = 1.054571817e-34
#: the (position, momentum, time) units of the devices whose energy is in joules, so that ħ
#: applies: LC networks (flux × charge = J·s) and oscillator networks (m × kg·m/s = J·s)
SI_UNITS = frozenset({("Wb", "C", "s"), ("m", "kg*m/s", "s")})


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


def energy_in_joules(device: Device) -> bool:
    """Whether the device's energy unit is the joule (its units are in :data:`SI_UNITS`)."""
    u = device.units
    return (u.get("q"), u.get("p"), u.get("t")) in SI_UNITS


def mode_energy(omega: np.ndarray, kT: float) -> np.ndarray:
    """E(ω, T) = (ħω/2)·coth(ħω/2k_BT) per mode, J (ω in rad/s, k_BT in J).

    k_BT at ω = 0 (its limit), ħω/2 at T = 0 (the zero point).
    """
    omega = np.asarray(omega, dtype=np.float64)
    half = 0.5 * HBAR * omega
    if kT == 0.0:
        return half
    x = half / kT
    with np.errstate(divide="ignore", invalid="ignore"):
        e = half / np.tanh(x)
    return np.where(x > 0.0, e, kT)


def quantum_ratio(device: Device, phys: Physical, kT: float) -> float:
    """max ħω/k_BT over the normal modes (inf at T = 0)."""
    omega = normal_modes(device, phys)[0]
    w = float(np.max(omega, initial=0.0))
    return HBAR * w / kT if kT > 0 else np.inf


def quantum_on(device: Device, phys: Physical, kT: float, quantum: str) -> bool:
    """Resolve ``DissipationSpec.quantum`` ('auto', 'on', 'off') for this device and k_BT."""
    if quantum == "off":
        return False
    si = energy_in_joules(device)
    if quantum == "on":
        if not si:
            u = device.units
            raise ValueError(
                f"quantum = 'on' needs ħ in the device's units, which physim knows only in SI "
                f"(J·s); device {device.name!r} has q in {u.get('q')!r}, p in {u.get('p')!r}, t "
                f"in {u.get('t')!r}; give the device in SI units, or quantum = 'off'"
            )
        return True
    return si and kT > 0.0 and quantum_ratio(device, phys, kT) > QUANTUM_THRESHOLD


def bath_summary(device: Device, phys: Physical, spec: DissipationSpec) -> dict | None:
    """What the quantum bath of ``spec`` gives the modes of ``device`` at ``phys`` (for a run's
    summary): max ħω/k_BT and the range of E(ω_i, T)/k_BT; ``None`` for the classical bath."""
    kT = spec.boltzmann * spec.temperature
    if not quantum_on(device, phys, kT, spec.quantum):
        return None
    omega = normal_modes(device, phys)[0]
    E = mode_energy(omega, kT)
    return {
        "spectrum": "quantum",
        "temperature": spec.temperature,
        "max_hbar_omega_over_kT": quantum_ratio(device, phys, kT),
        "mode_energy": [float(E.min()), float(E.max())],
        "mode_energy_over_kT": [float(E.min() / kT), float(E.max() / kT)] if kT > 0 else None,
    }


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
    #: the quantum bath's mean energy E(ω_i, T) per normal mode (ascending ω), J; ``None`` for
    #: the classical bath (k_BT in every mode)
    mode_energy: np.ndarray | None = None
    #: max ħω/k_BT over the normal modes (``None`` for the classical bath)
    quantum_ratio: float | None = None

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


def _o_matrices(
    L: np.ndarray, V: np.ndarray, g: np.ndarray, gp: np.ndarray, h: float, energy
) -> tuple[np.ndarray, np.ndarray]:
    """A = L V e^{−g′h} Vᵀ L⁻¹ and N = L V diag(√(E g (1 − e^{−2g′h}) / g′)); ``energy`` is k_BT
    (a float: the classical bath) or E per column of V (the quantum bath)."""
    Li = np.linalg.inv(L)
    A = L @ (V * np.exp(-gp * h)) @ V.T @ Li
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(
            np.abs(gp * h) > 1e-300,
            energy * g * -np.expm1(-2.0 * gp * h) / gp,
            2.0 * energy * g * h,
        )
    N = L @ V * np.sqrt(np.maximum(var, 0.0))
    return np.ascontiguousarray(A), np.ascontiguousarray(N)


def build_bath(device: Device, phys: Physical, spec: DissipationSpec) -> Bath:
    """O-step matrices for half steps of the device's δ (the quantum bath when
    :func:`quantum_on`; see module docstring)."""
    kT = spec.boltzmann * spec.temperature
    h = 0.5 * device.dt
    c = spec.compensation
    if quantum_on(device, phys, kT, spec.quantum):
        return _quantum_bath(device, phys, spec, kT, h)
    G, L = _weighted_friction(device, phys, spec)
    g, V = np.linalg.eigh(0.5 * (G + G.T))
    g = np.maximum(g, 0.0)
    A, N = _o_matrices(L, V, g, g, h, kT)
    Ae, Ne = _o_matrices(L, V, g, (1.0 - c) * g, h, kT)
    return Bath(A, N, Ae, Ne, g, kT)


def _quantum_bath(
    device: Device, phys: Physical, spec: DissipationSpec, kT: float, h: float
) -> Bath:
    if spec.quality_factor is None:
        raise ValueError(
            f"the quantum bath (quantum = {spec.quantum!r}, max ħω/k_BT = "
            f"{quantum_ratio(device, phys, kT):.3g} > {QUANTUM_THRESHOLD:g}) needs the loss per "
            "normal mode: a damping_rate per dof couples modes of different quantum energy, "
            "which no white noise reproduces; give quality_factor (Q_i = ω_i/γ_i), or "
            "quantum = 'off' for the classical bath"
        )
    omega, U, L = normal_modes(device, phys)
    # G = U diag(ω/Q) Uᵀ: the per-mode rates in the mode basis itself (not eigh(G), which may
    # mix degenerate modes whose Q differ)
    g = np.maximum(omega / _per_dof(spec.quality_factor, device.n_dof, "quality_factor"), 0.0)
    E = mode_energy(omega, kT)
    A, N = _o_matrices(L, U, g, g, h, E)
    Ae, Ne = _o_matrices(L, U, g, (1.0 - spec.compensation) * g, h, E)
    ratio = HBAR * float(np.max(omega, initial=0.0)) / kT if kT > 0 else np.inf
    return Bath(A, N, Ae, Ne, g, kT, mode_energy=E, quantum_ratio=ratio)


def thermal_state(
    device: Device,
    phys: Physical,
    kT: float,
    batch: int,
    rng: np.random.Generator,
    quantum: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Draw (q, p) from the Gibbs distribution of the device linearised at q = 0.

    With the quantum bath (``quantum`` resolved by :func:`quantum_on`) it is the Wigner
    function of that Gibbs state: normal mode i has mass-weighted momentum variance E(ω_i, T)
    and position variance E(ω_i, T)/ω_i²; classically both are k_BT-based (cov kT·M, kT·K⁻¹).
    """
    M, K = mass_and_stiffness(device, phys)
    try:
        Lk = np.linalg.cholesky(np.linalg.inv(K))
    except np.linalg.LinAlgError:
        raise ValueError(
            "a thermal state needs a stable equilibrium at q = 0 (positive-definite stiffness); "
            f"device {device.name!r} has a zero or negative mode — prepare 'zero' instead"
        ) from None
    if quantum_on(device, phys, kT, quantum):
        return _wigner_state(device, phys, kT, batch, rng)
    Lm = np.linalg.cholesky(M)
    q = np.sqrt(kT) * rng.standard_normal((batch, device.n_dof)) @ Lk.T
    p = np.sqrt(kT) * rng.standard_normal((batch, device.n_dof)) @ Lm.T
    return np.ascontiguousarray(q), np.ascontiguousarray(p)


def _wigner_state(
    device: Device, phys: Physical, kT: float, batch: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    # mode amplitudes a (positions) and b (momenta): q = L⁻ᵀ U a, p = L U b
    omega, U, L = normal_modes(device, phys)
    E = mode_energy(omega, kT)
    n = device.n_dof
    a = rng.standard_normal((batch, n)) * np.sqrt(E / omega**2)
    b = rng.standard_normal((batch, n)) * np.sqrt(E)
    q = a @ np.linalg.solve(L.T, U).T
    p = b @ (L @ U).T
    return np.ascontiguousarray(q), np.ascontiguousarray(p)
