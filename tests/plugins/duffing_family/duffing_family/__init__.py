"""Uncoupled Duffing oscillators: a physim device family that lives outside physim.

    H = Σ_i p_i² / 2m_i + ½ k_i q_i² + ¼ β_i q_i⁴ − q_i (B u)_i

State layout: ``q`` = displacements (m), ``p`` = momenta (kg·m/s); time in s. Registered through
the ``physim.families`` entry point of this package (see its pyproject.toml); its kernels
(:mod:`duffing_family.kernels`) have no fused echo kernels, so the generated dispatch composes
them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from duffing_family import kernels
from physim.device import Device, ParamGroup
from physim.families import Family
from physim.spec_base import SpecModel
from physim.stability import check_stability


class DuffingSpec(SpecModel):
    """n uncoupled Duffing oscillators, each driven by the one input channel."""

    kind: Literal["duffing"]
    name: str = Field(min_length=1, description="device name")
    dt: float = Field(gt=0, description="integrator step δ, s")
    mass: list[float] = Field(min_length=1, description="masses m_i, kg")
    k: list[float] = Field(min_length=1, description="spring constants k_i, N/m")
    beta: list[float] = Field(min_length=1, description="Duffing coefficients β_i, N/m³")
    input_gain: float = Field(1.0, description="force per input unit on every mass, N")

    @model_validator(mode="after")
    def _same_length(self) -> DuffingSpec:
        if not len(self.mass) == len(self.k) == len(self.beta):
            raise ValueError("mass, k and beta need one value per oscillator")
        return self

    def build(self) -> Device:
        n = len(self.mass)
        w = np.asarray([*self.mass, *self.k, *self.beta], dtype=np.float64)
        B = np.full((n, 1), self.input_gain)
        groups = (
            ParamGroup("k", "N/m", "w", n + np.arange(n)),
            ParamGroup("beta", "N/m^3", "w", 2 * n + np.arange(n)),
            ParamGroup("input_weight", "N", "B", np.arange(n)),
        )
        theta0 = np.concatenate([w[n:], B.reshape(-1)])
        ai, af, am = np.asarray([n], dtype=np.int64), np.zeros(0), np.zeros((0, 0))

        def check(w: np.ndarray) -> None:
            if np.any(w[:n] <= 0):
                raise ValueError("Duffing masses must be positive")

        dev = Device(
            name=self.name,
            **Duffing.device_fields(),
            n_dof=n,
            n_inputs=1,
            dt=self.dt,
            w_base=w,
            B_base=B,
            readout=None,
            q0=np.zeros(n),
            p0=np.zeros(n),
            groups=groups,
            theta0=theta0,
            aux_fn=lambda w: (ai, af, am),
            check_fn=check,
            n_work=1,
            units={"q": "m", "p": "kg*m/s", "t": "s", "u": "1", "y": "m"},
            spec=self,
        )
        check_stability(dev, dev.physical(dev.theta0))
        return dev


class Duffing(Family):
    """Registered by the entry point (not by a decorator): physim discovers it."""

    name = "duffing"
    spec = DuffingSpec
    kernels = kernels
    summary = "device: uncoupled Duffing oscillators (test plugin)"
    diagonal_hessian = True
