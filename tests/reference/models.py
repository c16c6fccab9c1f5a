"""Reference Hamiltonians in numpy, rebuilt from a device's spec (not from its kernels).

Network devices (oscillator networks and LC netlists) are rebuilt from the spec fields alone::

    H = ½ pᵀ M⁻¹ p + Σ_lin ½ k d² + Σ_quart ¼ β d⁴ − Σ_cos E cos(κ d) − qᵀ s,   d = q_a − q_c

with M the mass / capacitance matrix. HRU layers draw their parameters from a seeded generator
at build time, so their element values are read from ``device.physical(theta).w`` using the
packing documented in the HRU kernel modules (LinHRU ``w = [A, Δt]``, NonlinHRU ``w = [α, c,
W, b]``); the Hamiltonian itself is rewritten here from REFERENCE.md §2.

Every model exposes ``H(q, p, s)``, ``grad_T(p)``, ``grad_V(q, s)`` working on the last axis
(so a batch ``(nb, n)`` works), the input matrix ``B`` (s = B u), the readout ``R`` and, when
the Hamiltonian is quadratic, ``linear()`` → (M⁻¹, K, F) with ∇T = M⁻¹p, ∇V = K q − F s.
For the echo recipe they also give ``dT_dw(p)``, ``dV_dw(q, s)`` (batch, n_w) — derivatives with
respect to the element values in the order the device's ``w`` documents — and ``dV_ds(q, s)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GROUND = ("gnd", "0", "ground")


def _incidence(branches: list[tuple[int, int]], n: int) -> np.ndarray:
    """Rows a_b with +1 at node a and −1 at node c (ground = −1 has no column)."""
    D = np.zeros((len(branches), n))
    for row, (a, c) in enumerate(branches):
        if a >= 0:
            D[row, a] += 1.0
        if c >= 0:
            D[row, c] -= 1.0
    return D


def _blocks(sizes: dict[str, int]) -> dict[str, slice]:
    out, start = {}, 0
    for name, size in sizes.items():
        if size:
            out[name] = slice(start, start + size)
        start += size
    return out


@dataclass(frozen=True)
class NetworkModel:
    """A branch-element network, assembled from the spec's element list."""

    M: np.ndarray  # mass / capacitance matrix (n, n) = D_capᵀ diag(c_cap) D_cap
    D_cap: np.ndarray
    c_cap: np.ndarray
    D_lin: np.ndarray
    k_lin: np.ndarray
    D_quart: np.ndarray
    beta: np.ndarray
    D_cos: np.ndarray
    E_cos: np.ndarray
    kappa: np.ndarray
    B: np.ndarray  # (n, n_inputs)
    R: np.ndarray  # (n_outputs, n)
    q0: np.ndarray
    p0: np.ndarray

    @property
    def n(self) -> int:
        return int(self.M.shape[0])

    def w_blocks(self) -> dict[str, slice]:
        """Element kinds in the order of the device's ``w``."""
        sizes = {
            "capacitance (mass)": self.c_cap.size,
            "linear (spring, 1/L)": self.k_lin.size,
            "quartic": self.beta.size,
            "cosine (E_J)": self.E_cos.size,
        }
        return _blocks(sizes)

    def kinetic(self, p: np.ndarray) -> np.ndarray:
        return 0.5 * np.sum(p * self.grad_T(p), axis=-1)

    def potential(self, q: np.ndarray, s: np.ndarray) -> np.ndarray:
        d_lin = q @ self.D_lin.T
        d_q = q @ self.D_quart.T
        d_c = q @ self.D_cos.T
        return (
            0.5 * np.sum(self.k_lin * d_lin**2, axis=-1)
            + 0.25 * np.sum(self.beta * d_q**4, axis=-1)
            - np.sum(self.E_cos * np.cos(self.kappa * d_c), axis=-1)
            - np.sum(q * s, axis=-1)
        )

    def H(self, q: np.ndarray, p: np.ndarray, s: np.ndarray) -> np.ndarray:
        return self.kinetic(p) + self.potential(q, s)

    def grad_T(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        return np.linalg.solve(self.M, p[..., None])[..., 0]

    def grad_V(self, q: np.ndarray, s: np.ndarray) -> np.ndarray:
        d_lin = q @ self.D_lin.T
        d_q = q @ self.D_quart.T
        d_c = q @ self.D_cos.T
        return (
            (self.k_lin * d_lin) @ self.D_lin
            + (self.beta * d_q**3) @ self.D_quart
            + (self.E_cos * self.kappa * np.sin(self.kappa * d_c)) @ self.D_cos
            - s
        )

    def dT_dw(self, p: np.ndarray) -> np.ndarray:
        """∂T/∂w with w = [c_cap, k_lin, β, E]: −½ (a_bᵀ M⁻¹ p)² for each capacitor/mass."""
        v = self.grad_T(p) @ self.D_cap.T
        zeros = np.zeros((*v.shape[:-1], self.k_lin.size + self.beta.size + self.E_cos.size))
        return np.concatenate([-0.5 * v**2, zeros], axis=-1)

    def dV_dw(self, q: np.ndarray, s: np.ndarray) -> np.ndarray:
        """∂V/∂w: ½ d² (springs, inverse inductances), ¼ d⁴ (Duffing), −cos κd (Josephson)."""
        d_lin = q @ self.D_lin.T
        d_q = q @ self.D_quart.T
        d_c = q @ self.D_cos.T
        zeros = np.zeros((*q.shape[:-1], self.c_cap.size))
        return np.concatenate(
            [zeros, 0.5 * d_lin**2, 0.25 * d_q**4, -np.cos(self.kappa * d_c)], axis=-1
        )

    def dV_ds(self, q: np.ndarray, s: np.ndarray) -> np.ndarray:
        return -np.asarray(q, dtype=float)

    def linear(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.beta.size or self.E_cos.size:
            raise ValueError("this network has quartic or cosine elements: it is not linear")
        K = self.D_lin.T @ (self.k_lin[:, None] * self.D_lin)
        return np.linalg.inv(self.M), K, np.eye(self.n)


def _oscillator_model(spec) -> NetworkModel:
    n = len(spec.masses)
    lin = [(s.node, -1) for s in spec.springs] + [tuple(c.nodes) for c in spec.couplings]
    k = [s.k for s in spec.springs] + [c.k for c in spec.couplings]
    quart = [(qd.nodes[0], qd.nodes[1] if len(qd.nodes) == 2 else -1) for qd in spec.quartic]
    n_in = spec.n_inputs
    if spec.input_weights is None:
        B = np.zeros((n, n_in))
        m = min(n, n_in)
        B[:m, :m] = np.eye(m)  # documented default: input i drives mass i
    elif isinstance(spec.input_weights, list):
        B = np.asarray(spec.input_weights, dtype=float).reshape(n, n_in)
    else:
        B = spec.input_weights.draw((n, n_in))
    if spec.readout is None:
        R = np.eye(n)
    elif spec.readout and isinstance(spec.readout[0], int):
        R = np.eye(n)[list(spec.readout)]
    else:
        R = np.asarray(spec.readout, dtype=float)
    return NetworkModel(
        M=np.diag(np.asarray(spec.masses, dtype=float)),
        D_cap=np.eye(n),  # a mass is a capacitance from its node to ground
        c_cap=np.asarray(spec.masses, dtype=float),
        D_lin=_incidence(lin, n),
        k_lin=np.asarray(k, dtype=float),
        D_quart=_incidence(quart, n),
        beta=np.asarray([qd.beta for qd in spec.quartic], dtype=float),
        D_cos=np.zeros((0, n)),
        E_cos=np.zeros(0),
        kappa=np.zeros(0),
        B=B,
        R=R,
        q0=np.zeros(n) if spec.q0 is None else np.asarray(spec.q0, dtype=float),
        p0=np.zeros(n) if spec.p0 is None else np.asarray(spec.p0, dtype=float),
    )


def _lc_model(spec) -> NetworkModel:
    index = {name: i for i, name in enumerate(spec.nodes)}
    n = len(spec.nodes)

    def node(name: str) -> int:
        return -1 if name in GROUND else index[name]

    caps, c_cap, lin, inv_l, cos, e_j, kappa = [], [], [], [], [], [], []
    for e in spec.elements:
        a, c = node(e.a), node(e.b)
        if e.type == "capacitor":
            caps.append((a, c))
            c_cap.append(e.C)
        elif e.type == "inductor":
            lin.append((a, c))
            inv_l.append(1.0 / e.L)
        else:
            cos.append((a, c))
            e_j.append(e.E_J)
            kappa.append(2.0 * np.pi / e.phi0)
    n_in = (
        spec.n_inputs
        if spec.n_inputs is not None
        else 1 + max((s.input for s in spec.sources), default=-1)
    )
    B = np.zeros((n, n_in))
    for s in spec.sources:
        B[index[s.node], s.input] += s.gain
    R = np.eye(n) if spec.readout is None else np.eye(n)[[index[r] for r in spec.readout]]
    D_cap = _incidence(caps, n)
    return NetworkModel(
        M=D_cap.T @ (np.asarray(c_cap)[:, None] * D_cap),  # C = Σ C_b a_b a_bᵀ
        D_cap=D_cap,
        c_cap=np.asarray(c_cap, dtype=float),
        D_lin=_incidence(lin, n),
        k_lin=np.asarray(inv_l, dtype=float),
        D_quart=np.zeros((0, n)),
        beta=np.zeros(0),
        D_cos=_incidence(cos, n),
        E_cos=np.asarray(e_j, dtype=float),
        kappa=np.asarray(kappa, dtype=float),
        B=B,
        R=R,
        q0=np.zeros(n) if spec.q0 is None else np.asarray(spec.q0, dtype=float),
        p0=np.zeros(n) if spec.p0 is None else np.asarray(spec.p0, dtype=float),
    )


@dataclass(frozen=True)
class LinHRUModel:
    """H = Σ Δt_i (½ π_i² + ½ A_i φ_i² − φ_i s_i)."""

    A: np.ndarray
    dts: np.ndarray
    B: np.ndarray

    @property
    def n(self) -> int:
        return int(self.A.shape[0])

    @property
    def R(self) -> np.ndarray:
        return np.eye(self.n)

    def w_blocks(self) -> dict[str, slice]:
        return _blocks({"A": self.n, "dt": self.n})

    def H(self, q, p, s):
        return np.sum(self.dts * (0.5 * p**2 + 0.5 * self.A * q**2 - q * s), axis=-1)

    def grad_T(self, p):
        return self.dts * p

    def grad_V(self, q, s):
        return self.dts * (self.A * q - s)

    def dT_dw(self, p):
        """w = [A, Δt]."""
        return np.concatenate([np.zeros_like(p), 0.5 * p**2], axis=-1)

    def dV_dw(self, q, s):
        return np.concatenate([0.5 * self.dts * q**2, 0.5 * self.A * q**2 - q * s], axis=-1)

    def dV_ds(self, q, s):
        return -self.dts * q

    def linear(self):
        return np.diag(self.dts), np.diag(self.dts * self.A), np.diag(self.dts)


@dataclass(frozen=True)
class NonlinHRUModel:
    """H = ½‖π‖² + (α/2)‖φ‖² + Σ (c_i / W_i) log cosh(W_i φ_i + s_i + b_i)."""

    alpha: float
    c: np.ndarray
    W: np.ndarray
    b: np.ndarray
    B: np.ndarray

    @property
    def n(self) -> int:
        return int(self.c.shape[0])

    @property
    def R(self) -> np.ndarray:
        return np.eye(self.n)

    def w_blocks(self) -> dict[str, slice]:
        return _blocks({"alpha": 1, "c": self.n, "W": self.n, "b": self.n})

    def H(self, q, p, s):
        z = self.W * q + s + self.b
        # log cosh z = logaddexp(z, −z) − log 2 (overflow-safe)
        logcosh = np.logaddexp(z, -z) - np.log(2.0)
        return np.sum(0.5 * p**2 + 0.5 * self.alpha * q**2 + self.c / self.W * logcosh, axis=-1)

    def grad_T(self, p):
        return np.asarray(p, dtype=float).copy()

    def grad_V(self, q, s):
        return self.alpha * q + self.c * np.tanh(self.W * q + s + self.b)

    def dT_dw(self, p):
        """w = [α, c, W, b]: T does not depend on w."""
        return np.zeros((*p.shape[:-1], 1 + 3 * self.n))

    def dV_dw(self, q, s):
        z = self.W * q + s + self.b
        logcosh = np.logaddexp(z, -z) - np.log(2.0)
        th = np.tanh(z)
        d_alpha = 0.5 * np.sum(q**2, axis=-1, keepdims=True)
        d_c = logcosh / self.W
        d_W = self.c * (th * q / self.W - logcosh / self.W**2)
        d_b = self.c * th / self.W
        return np.concatenate([d_alpha, d_c, d_W, d_b], axis=-1)

    def dV_ds(self, q, s):
        return self.c / self.W * np.tanh(self.W * q + s + self.b)

    def linear(self):
        raise ValueError("NonlinHRU is not linear")


def reference_model(device, theta: np.ndarray | None = None):
    """The numpy model of ``device`` at ``theta`` (network devices: at the spec's own values)."""
    spec = device.spec
    if spec.kind == "oscillator_network":
        return _oscillator_model(spec)
    if spec.kind == "lc_network":
        return _lc_model(spec)
    phys = device.physical(device.theta0 if theta is None else theta)
    w, P = phys.w, spec.n_modes
    if spec.kind == "linhru":
        return LinHRUModel(A=w[:P].copy(), dts=w[P : 2 * P].copy(), B=phys.B)
    if spec.kind == "nonlinhru":
        return NonlinHRUModel(
            alpha=float(w[0]),
            c=w[1 : 1 + P].copy(),
            W=w[1 + P : 1 + 2 * P].copy(),
            b=w[1 + 2 * P : 1 + 3 * P].copy(),
            B=phys.B,
        )
    raise ValueError(f"no reference model for device kind {spec.kind!r}")
