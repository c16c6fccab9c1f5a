"""Hamiltonian recurrent units (HRUs) of deep Hamiltonian state-space models, as devices.

**LinHRU** (kernels in :mod:`physim.families.linhru_kernels`)::

    H = Σ_i Δt_i (½ π_i² + ½ A_i φ_i² − φ_i (B u)_i),   A = relu(θ_A),  Δt = sigmoid(θ_Δt)

(``a_param = "softplus"``: A = log(1 + e^θ_A) instead of the paper's relu, see LinHRUSpec.)

**NonlinHRU** (kernels in :mod:`physim.families.nonlinhru_kernels`)::

    H = ½‖π‖² + (α/2)‖φ‖² + Σ_i (c_i / W_i) log cosh(W_i φ_i + (B u)_i + b_i),   c = sigmoid(θ_c)

State layout: ``q`` = φ (P modes), ``p`` = π (P modes); dimensionless, time in integrator steps.
The readout is the identity (every mode is observed); a model's digital periphery applies its
own output matrix.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from physim import memory
from physim.device import Device, ParamGroup, transform_values
from physim.families import linhru_kernels, nonlinhru_kernels
from physim.families.base import FAMILIES, Family
from physim.spec_base import Seed, SpecModel
from physim.stability import check_stability

#: softplus A-parametrisation: the smallest initial stiffness (θ_A = softplus⁻¹(1e-8) ≈ −18.4);
#: relu's initial A = 0 has no finite preimage under softplus
A_INIT_MIN = 1e-8


def _signed_zero_free(bounds: tuple[float, float]) -> tuple[float, float]:
    """(low, high) with −0.0 as 0.0: numpy's uniform refuses (0.0, −0.0) as high < low."""
    return bounds[0] + 0.0, bounds[1] + 0.0


def _no_aux(n: int):
    ai = np.asarray([n], dtype=np.int64)
    af = np.zeros(0)
    am = np.zeros((0, 0))
    return lambda w: (ai, af, am)


def _hru_device(
    spec,
    family: type[Family],
    w: np.ndarray,
    B: np.ndarray,
    groups: list[ParamGroup],
    theta0,
    check,
    quadratic: bool,
) -> Device:
    P = B.shape[0]  # degrees of freedom (2 n_modes for a complex LinHRU)
    dev = Device(
        name=spec.name,
        **family.device_fields(),
        n_dof=P,
        n_inputs=spec.n_inputs,
        dt=float(spec.dt),
        w_base=w,
        B_base=np.ascontiguousarray(B),
        readout=None,
        q0=np.zeros(P),
        p0=np.zeros(P),
        groups=tuple(groups),
        theta0=np.ascontiguousarray(theta0, dtype=np.float64),
        aux_fn=_no_aux(P),
        check_fn=check,
        n_work=1 if quadratic else 4 * P,  # NonlinHRU's echo keeps tanh, log cosh of both
        units={"q": "1", "p": "1", "t": "step", "u": "1", "y": "1"},
        spec=spec,
        w_labels=(),
        quadratic=quadratic,
    )
    check_stability(dev, dev.physical(dev.theta0))
    return dev


class _HRUBase(SpecModel):
    name: str = Field(min_length=1, description="catalogue name")
    description: str = ""
    n_modes: int = Field(ge=1, description="number of oscillators P (ssm_dim)")
    n_inputs: int = Field(ge=1, description="input channels H (hidden width of the model)")
    seed: Seed = Field(0, description="seed of the parameter initialisation")
    input_scale: float = Field(1.0, gt=0, description="B ~ N(0, input_scale² / n_inputs) (1)")

    def _input_matrix(self, rng: np.random.Generator) -> np.ndarray:
        # B, its copy in the device and θ: three P × H matrices
        memory.check(
            3 * memory.floats((self.n_modes, self.n_inputs)),
            f"device {self.name!r} with P = {self.n_modes} modes × H = {self.n_inputs} inputs",
            "lower n_modes or n_inputs",
        )
        return rng.normal(
            0.0, self.input_scale / np.sqrt(self.n_inputs), size=(self.n_modes, self.n_inputs)
        )


class LinHRUSpec(_HRUBase):
    """A LinHRU layer (see module docstring); δ = 1 and each mode has its own step Δt_i.

    ``complex_ssm = True`` is the paper's default: complex B (and, in the model, complex C
    read out as Re(C φ)) with real A and Δt. The dynamics are linear with real coefficients,
    so the complex φ is exactly two real oscillator sets, φ = (Re φ, Im φ), driven by Re(B u)
    and Im(B u), with A and Δt **tied** between the halves: the device has 2P degrees of
    freedom, B is the real (2P × H) matrix [Re B; Im B], and the gradient of each A_i, Δt_i is
    the sum over its two copies.
    """

    kind: Literal["linhru"]
    dt: float = Field(1.0, gt=0, description="global integrator step δ (1); per-mode steps are Δt")
    a_range: tuple[float, float] = Field(
        (0.0, 1.0),
        description="relu: θ_A ~ U[a_range]; softplus: θ_A starts where A equals relu's initial "
        "stiffness, A = max(x, A_INIT_MIN) for the same draw x ~ U[a_range]",
    )
    dt_raw_range: tuple[float, float] = Field((-2.0, 2.0), description="θ_Δt ~ U[dt_raw_range]")
    a_param: Literal["relu", "softplus"] = Field(
        "relu",
        description="map from θ_A to the stiffness A: 'relu' — A = max(θ_A, 0), the paper's; "
        "'softplus' — A = log(1 + e^θ_A) > 0, whose slope is nowhere zero (a relu mode whose "
        "θ_A crosses 0 is a free particle with zero gradient on θ_A: it cannot recover)",
    )
    learnable: list[Literal["A", "dt", "input_weight"]] = Field(
        default_factory=lambda: ["A", "dt", "input_weight"], description="trained groups"
    )
    complex_ssm: bool = Field(
        False,
        description="complex B (Re and Im parts each ~ N(0, input_scale² / n_inputs)): 2P "
        "real oscillators (Re φ, Im φ) with tied A and Δt",
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> LinHRUSpec:
        for name in ("a_range", "dt_raw_range"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"{name} = (low, high) needs low <= high, got {(lo, hi)}")
        return self

    def build(self) -> Device:
        P, H = self.n_modes, self.n_inputs
        rng = np.random.default_rng(self.seed)
        a_raw = rng.uniform(*_signed_zero_free(self.a_range), size=P)
        if self.a_param == "softplus":  # same initial stiffnesses as relu: θ_A = softplus⁻¹(A)
            a0 = np.maximum(a_raw, A_INIT_MIN)
            a_raw = a0 + np.log(-np.expm1(-a0))  # log(e^A − 1) without overflow for large A
        dt_raw = rng.uniform(*_signed_zero_free(self.dt_raw_range), size=P)
        B = self._input_matrix(rng)
        tie = 1
        if self.complex_ssm:  # rows P..2P-1: Im B, drawn after the real part
            B = np.concatenate([B, self._input_matrix(rng)])
            tie = 2
        n = tie * P  # degrees of freedom
        w = np.concatenate(
            [
                np.tile(transform_values(self.a_param, a_raw), tie),
                np.tile(1.0 / (1.0 + np.exp(-dt_raw)), tie),
            ]
        )
        table = {
            "A": (ParamGroup("A", "1", "w", np.arange(n), self.a_param, tie=tie), a_raw),
            "dt": (ParamGroup("dt", "step", "w", n + np.arange(n), "sigmoid", tie=tie), dt_raw),
            "input_weight": (ParamGroup("input_weight", "1", "B", np.arange(n * H)), B.reshape(-1)),
        }
        chosen = [table[g] for g in dict.fromkeys(self.learnable)]
        theta0 = np.concatenate([v for _, v in chosen]) if chosen else np.zeros(0)
        return _hru_device(
            self,
            LinHRU,
            w,
            B,
            [g for g, _ in chosen],
            theta0,
            lambda w: None,
            True,
        )


class NonlinHRUSpec(_HRUBase):
    """A NonlinHRU layer (see module docstring)."""

    kind: Literal["nonlinhru"]
    dt: float = Field(0.1, gt=0, description="integrator step δ (1); the paper's code uses 1e-4")
    alpha: float = Field(1.0, description="initial α of the harmonic term (1)")
    w_range: tuple[float, float] = Field((0.5, 1.0), description="W ~ U[w_range]")
    c_raw_std: float = Field(1.0, ge=0, description="θ_c ~ N(0, c_raw_std²) (1)")
    b_std: float = Field(0.1, ge=0, description="b ~ N(0, b_std²) (1)")
    learnable: list[Literal["alpha", "c", "W", "b", "input_weight"]] = Field(
        default_factory=lambda: ["alpha", "c", "W", "b", "input_weight"],
        description="trained groups",
    )

    @model_validator(mode="after")
    def _check_w(self) -> NonlinHRUSpec:
        lo, hi = self.w_range
        if not (0 < lo <= hi):
            raise ValueError(
                f"w_range must satisfy 0 < low <= high (W divides H), got {self.w_range}"
            )
        return self

    def build(self) -> Device:
        P, H = self.n_modes, self.n_inputs
        rng = np.random.default_rng(self.seed)
        W = rng.uniform(*_signed_zero_free(self.w_range), size=P)
        c_raw = rng.normal(0.0, self.c_raw_std, size=P)
        b = rng.normal(0.0, self.b_std, size=P)
        B = self._input_matrix(rng)
        w = np.concatenate([[self.alpha], 1.0 / (1.0 + np.exp(-c_raw)), W, b])
        table = {
            "alpha": (ParamGroup("alpha", "1", "w", np.array([0])), np.array([self.alpha])),
            "c": (ParamGroup("c", "1", "w", 1 + np.arange(P), "sigmoid"), c_raw),
            "W": (ParamGroup("W", "1", "w", 1 + P + np.arange(P)), W),
            "b": (ParamGroup("b", "1", "w", 1 + 2 * P + np.arange(P)), b),
            "input_weight": (ParamGroup("input_weight", "1", "B", np.arange(P * H)), B.reshape(-1)),
        }
        chosen = [table[g] for g in dict.fromkeys(self.learnable)]
        theta0 = np.concatenate([v for _, v in chosen]) if chosen else np.zeros(0)

        def check(w: np.ndarray) -> None:
            Wv = w[1 + P : 1 + 2 * P]
            if np.any(np.abs(Wv) < 1e-12):
                i = int(np.argmin(np.abs(Wv)))
                raise ValueError(
                    f"NonlinHRU W[{i}] = {Wv[i]!r} is zero; W divides H — keep W away from 0"
                )

        return _hru_device(self, NonlinHRU, w, B, [g for g, _ in chosen], theta0, check, False)


@FAMILIES.register
class LinHRU(Family):
    """The linear HRU: one harmonic oscillator per mode, each with its own step Δt_i."""

    name = "linhru"
    spec = LinHRUSpec
    kernels = linhru_kernels
    summary = "device: one linear Hamiltonian recurrent unit layer"
    diagonal_hessian = True


@FAMILIES.register
class NonlinHRU(Family):
    """The nonlinear (log-cosh) HRU: modes coupled only through their own drive."""

    name = "nonlinhru"
    spec = NonlinHRUSpec
    kernels = nonlinhru_kernels
    summary = "device: one nonlinear (log-cosh) HRU layer"
    diagonal_hessian = True
