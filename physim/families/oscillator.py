"""Oscillator networks: masses on springs, coupled along any graph, optionally Duffing.

    H = Σ_i p_i² / 2m_i + Σ_springs ½ k x_i² + Σ_couplings ½ k (x_i − x_j)²
        + Σ_quartic ¼ β d⁴ − Σ_i x_i (B u)_i

State layout: ``q`` = displacements x_i (m), ``p`` = momenta (kg·m/s); time in s. Springs tie a
mass to the wall, couplings join two masses, quartic terms act on one mass (to the wall) or on a
pair. Inputs are forces ``B u`` (N per input unit); the readout is a selection of positions or
a matrix. Compiled into the network family (:mod:`physim.families.network_kernels`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from physim.device import Device, ParamGroup
from physim.families import network_kernels
from physim.families.base import FAMILIES, Family
from physim.families.network import Branch, NetworkParts, compile_network
from physim.spec_base import (
    Positive,
    RandomMatrixSpec,
    SinusoidTaskSpec,
    SpecModel,
    matrix_field,
    vector_field,
)
from physim.warnings import warn


class SpringSpec(SpecModel):
    node: int = Field(ge=0, description="index of the mass tied to the wall")
    k: float = Field(ge=0, description="spring constant, N/m")


class CouplingSpec(SpecModel):
    nodes: tuple[int, int] = Field(description="indices of the two coupled masses")
    k: float = Field(ge=0, description="coupling spring constant, N/m")


class QuarticSpec(SpecModel):
    nodes: list[int] = Field(
        min_length=1, max_length=2, description="one mass (to the wall) or a pair"
    )
    beta: float = Field(description="Duffing coefficient β in ¼ β d⁴, N/m³")


OscGroup = Literal["mass", "spring", "coupling", "quartic", "input_weight"]


class OscillatorNetworkSpec(SpecModel):
    """A network of point masses on springs (see module docstring for H and units)."""

    kind: Literal["oscillator_network"]
    name: str = Field(min_length=1, description="catalogue name")
    description: str = ""
    dt: Positive = Field(description="integrator step δ, s")
    masses: list[Positive] = Field(min_length=1, description="masses m_i, kg")
    springs: list[SpringSpec] = Field(default_factory=list, description="springs to the wall")
    couplings: list[CouplingSpec] = Field(
        default_factory=list, description="springs between masses"
    )
    quartic: list[QuarticSpec] = Field(default_factory=list, description="Duffing terms")
    n_inputs: int = Field(0, ge=0, description="number of input channels")
    input_weights: list[list[float]] | RandomMatrixSpec | None = Field(
        None, description="B (n_masses × n_inputs): force on each mass per input unit, N"
    )
    readout: list[int] | list[list[float]] | None = Field(
        None,
        min_length=1,
        description="mass indices whose positions are read, or a readout matrix; all when omitted",
    )
    q0: list[float] | None = Field(None, description="initial displacements, m")
    p0: list[float] | None = Field(None, description="initial momenta, kg·m/s")
    learnable: list[OscGroup] = Field(
        default_factory=lambda: ["spring", "coupling", "quartic", "input_weight"],
        description="parameter groups trained by the learner (masses are fixed unless listed)",
    )
    task: SinusoidTaskSpec | None = Field(None, description="built-in task for demos")

    @model_validator(mode="after")
    def _check_nodes(self) -> OscillatorNetworkSpec:
        n = len(self.masses)

        def check(where: str, idx: int) -> None:
            if not 0 <= idx < n:
                raise ValueError(f"{where} = {idx} is not a mass index (0 … {n - 1})")

        for i, s in enumerate(self.springs):
            check(f"springs[{i}].node", s.node)
        for i, c in enumerate(self.couplings):
            for j in c.nodes:
                check(f"couplings[{i}].nodes", j)
            if c.nodes[0] == c.nodes[1]:
                raise ValueError(f"couplings[{i}] joins mass {c.nodes[0]} to itself; use a spring")
        for i, qd in enumerate(self.quartic):
            for j in qd.nodes:
                check(f"quartic[{i}].nodes", j)
            if len(qd.nodes) == 2 and qd.nodes[0] == qd.nodes[1]:
                raise ValueError(
                    f"quartic[{i}] joins mass {qd.nodes[0]} to itself; give one node for an on-site term"
                )
        if isinstance(self.readout, list) and self.readout and isinstance(self.readout[0], int):
            for j in self.readout:
                check("readout", j)
        if self.input_weights is not None and self.n_inputs == 0:
            raise ValueError("input_weights given but n_inputs = 0; set n_inputs")
        return self

    def build(self) -> Device:
        n = len(self.masses)
        parts = NetworkParts(n=n)
        parts.caps = [Branch(i, -1, m, f"mass[{i}]") for i, m in enumerate(self.masses)]
        parts.lins = [Branch(s.node, -1, s.k, f"spring[{i}]") for i, s in enumerate(self.springs)]
        parts.lins += [
            Branch(c.nodes[0], c.nodes[1], c.k, f"coupling[{i}]")
            for i, c in enumerate(self.couplings)
        ]
        parts.quarts = [
            Branch(qd.nodes[0], qd.nodes[1] if len(qd.nodes) == 2 else -1, qd.beta, f"quartic[{i}]")
            for i, qd in enumerate(self.quartic)
        ]
        off = parts.offsets()
        ns, nc, nq = len(self.springs), len(self.couplings), len(self.quartic)
        B = matrix_field(self.input_weights, (n, self.n_inputs), "input_weights")
        if self.input_weights is None and self.n_inputs:
            B[: min(n, self.n_inputs), : min(n, self.n_inputs)] = np.eye(min(n, self.n_inputs))
        available = {
            "mass": ("w", np.arange(n), "kg", [b.label for b in parts.caps]),
            "spring": ("w", off["lin"] + np.arange(ns), "N/m", [b.label for b in parts.lins[:ns]]),
            "coupling": (
                "w",
                off["lin"] + ns + np.arange(nc),
                "N/m",
                [b.label for b in parts.lins[ns:]],
            ),
            "quartic": (
                "w",
                off["quart"] + np.arange(nq),
                "N/m^3",
                [b.label for b in parts.quarts],
            ),
            "input_weight": (
                "B",
                np.arange(B.size),
                "N",
                [f"B[{i},{j}]" for i in range(n) for j in range(self.n_inputs)],
            ),
        }
        groups = [
            ParamGroup(
                g,
                available[g][2],
                available[g][0],
                np.asarray(available[g][1], dtype=np.int64),
                labels=tuple(available[g][3]),
            )
            for g in dict.fromkeys(self.learnable)
            if len(available[g][1])
        ]
        return compile_network(
            parts,
            name=self.name,
            dt=self.dt,
            B=B,
            readout=_readout_matrix(self.readout, n),
            q0=vector_field(self.q0, n, "q0"),
            p0=vector_field(self.p0, n, "p0"),
            groups=groups,
            units={"q": "m", "p": "kg*m/s", "t": "s", "u": "1", "y": "m"},
            spec=self,
            kinetic_name="mass",
            family=OscillatorNetwork,
        )


@FAMILIES.register
class OscillatorNetwork(Family):
    """Masses on springs: the network kernels in the mechanical vocabulary."""

    name = "oscillator_network"
    spec = OscillatorNetworkSpec
    kernels = network_kernels
    energy_unit = "J"  # SI elements, time in s, inputs as −Σ q_i (B u)_i (module docstring)
    summary = "device: masses, springs, couplings, Duffing terms"

    @classmethod
    def check_drive_range(cls, spec, q, u=None) -> None:
        check_duffing(spec, q)


def _readout_matrix(readout: list[int] | list[list[float]] | None, n: int) -> np.ndarray | None:
    if readout is None:
        return None
    if readout and isinstance(readout[0], int):
        R = np.zeros((len(readout), n))
        R[np.arange(len(readout)), readout] = 1.0
        return R
    return matrix_field(readout, (len(readout), n), "readout")


#: leapfrog's phase error per step grows like (ω δ)²/24 and it is unstable at ω δ = 2: a
#: Duffing term stiffened to ω δ > 1 at the peak displacement is no longer resolved
DUFFING_OMEGA_DT_MAX = 1.0


def check_duffing(spec: OscillatorNetworkSpec, q: np.ndarray) -> None:
    """Warn when a Duffing term of ``spec`` stiffens beyond ω·dt = DUFFING_OMEGA_DT_MAX at
    the peak displacement of the states ``q``."""
    q = np.asarray(q, dtype=np.float64)
    worst = None
    for term in spec.quartic:
        d = q[..., term.nodes[0]] - (q[..., term.nodes[1]] if len(term.nodes) > 1 else 0.0)
        peak = float(np.max(np.abs(d))) if d.size else 0.0
        mass = min(spec.masses[i] for i in term.nodes)
        wdt = np.sqrt(3 * abs(term.beta) * peak**2 / mass) * spec.dt
        if worst is None or wdt > worst[0]:
            worst = (wdt, peak, term)
    if worst is None or not np.isfinite(worst[0]) or worst[0] <= DUFFING_OMEGA_DT_MAX:
        return
    wdt, peak, term = worst
    warn(
        f"the Duffing term on masses {list(term.nodes)} (β = {term.beta:g} N/m³) stiffens to "
        f"ω·dt = {wdt:.3g} at the peak displacement {peak:.3g} m",
        f"the step no longer resolves the motion (leapfrog needs ω·dt <= "
        f"{DUFFING_OMEGA_DT_MAX:g} to be accurate and < 2 to be stable)",
        f"lower the drive so that displacements stay below "
        f"{peak * DUFFING_OMEGA_DT_MAX / wdt:.2g} m, or lower dt by {wdt / DUFFING_OMEGA_DT_MAX:.2g}×",
    )
