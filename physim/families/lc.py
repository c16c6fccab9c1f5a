"""LC networks from a netlist, in node-flux form (Josephson-like cosine elements allowed).

    H = ½ Qᵀ C⁻¹ Q + Σ_inductors ½ (1/L) Φ_b² − Σ_josephson E_J cos(2π Φ_b / Φ₀) − Σ_n Φ_n I_n(t)

State layout: ``q`` = node fluxes Φ_n (Wb = V·s), ``p`` = node charges Q_n (C); time in s.
Φ_b is the branch flux (difference of its node fluxes; ground has Φ = 0). The capacitance matrix
C collects every capacitor; each island of nodes needs a capacitive path to ground. Current
sources inject ``I = B u`` (A per input unit) into nodes. Learnable: capacitances (F),
inverse inductances (1/H), Josephson energies (J) and source gains. ``∂H/∂C_b = −½ V_b²`` with V
the voltage across the capacitor: measuring a gradient is measuring voltages and fluxes.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from physim import memory
from physim.device import Device, ParamGroup
from physim.families import network_kernels
from physim.families.base import FAMILIES, Family
from physim.families.network import Branch, NetworkParts, compile_network
from physim.spec_base import Positive, SinusoidTaskSpec, SpecModel, vector_field
from physim.warnings import warn

FLUX_QUANTUM = 2.067833848e-15  # h / 2e, Wb
GROUND = ("gnd", "0", "ground")


class _Element(SpecModel):
    name: str = Field(min_length=1, description="element name, e.g. C1")
    a: str = Field(description="first node (a declared node or 'gnd')")
    b: str = Field("gnd", description="second node (a declared node or 'gnd')")


class CapacitorSpec(_Element):
    type: Literal["capacitor"]
    C: Positive = Field(description="capacitance, F")


class InductorSpec(_Element):
    type: Literal["inductor"]
    L: Positive = Field(description="inductance, H")


class JosephsonSpec(_Element):
    type: Literal["josephson"]
    E_J: float = Field(ge=0, description="Josephson energy, J")
    phi0: Positive = Field(FLUX_QUANTUM, description="flux quantum of the cosine, Wb")


ElementSpec = Annotated[CapacitorSpec | InductorSpec | JosephsonSpec, Field(discriminator="type")]


class SourceSpec(SpecModel):
    node: str = Field(description="node the current is injected into")
    input: int = Field(0, ge=0, description="input channel driving this source")
    gain: float = Field(1.0, description="injected current per input unit, A")


LCGroup = Literal["capacitance", "inverse_inductance", "josephson_energy", "input_weight"]


class LCNetworkSpec(SpecModel):
    """A lumped LC circuit described by a netlist (see module docstring for H and units)."""

    kind: Literal["lc_network"]
    name: str = Field(min_length=1, description="catalogue name")
    description: str = ""
    dt: Positive = Field(description="integrator step δ, s")
    nodes: list[str] = Field(min_length=1, description="node names (ground is 'gnd')")
    elements: list[ElementSpec] = Field(min_length=1, description="the netlist")
    sources: list[SourceSpec] = Field(default_factory=list, description="current sources (inputs)")
    n_inputs: int | None = Field(
        None, ge=0, description="input channels; default 1 + the largest source input"
    )
    readout: list[str] | None = Field(
        None, min_length=1, description="nodes whose flux is read; all when omitted"
    )
    q0: list[float] | None = Field(None, description="initial node fluxes, Wb")
    p0: list[float] | None = Field(None, description="initial node charges, C")
    learnable: list[LCGroup] = Field(
        default_factory=lambda: [
            "capacitance",
            "inverse_inductance",
            "josephson_energy",
            "input_weight",
        ],
        description="parameter groups trained by the learner",
    )
    task: SinusoidTaskSpec | None = None

    @model_validator(mode="after")
    def _check_netlist(self) -> LCNetworkSpec:
        declared = set(self.nodes)
        for g in GROUND:
            if g in declared:
                raise ValueError(f"nodes: {g!r} is reserved for ground; rename that node")
        if len(declared) != len(self.nodes):
            raise ValueError("nodes: node names must be unique")
        names = [e.name for e in self.elements]
        if len(set(names)) != len(names):
            raise ValueError("elements: element names must be unique")

        def check(where: str, node: str) -> None:
            if node not in declared and node not in GROUND:
                raise ValueError(
                    f"{where}: node {node!r} is not defined; declared nodes are "
                    f"{sorted(declared)} (use 'gnd' for ground)"
                )

        for i, e in enumerate(self.elements):
            check(f"elements[{i}] ({e.name}).a", e.a)
            check(f"elements[{i}] ({e.name}).b", e.b)
            if e.a == e.b or (e.a in GROUND and e.b in GROUND):
                raise ValueError(f"elements[{i}] ({e.name}) connects a node to itself")
        for i, s in enumerate(self.sources):
            check(f"sources[{i}].node", s.node)
            if s.node in GROUND:
                raise ValueError(f"sources[{i}] injects into ground; pick a node")
        for n in self.readout or []:
            check("readout", n)
            if n in GROUND:
                raise ValueError("readout: ground has no flux to read")
        if self.n_inputs is not None and any(s.input >= self.n_inputs for s in self.sources):
            raise ValueError(f"a source uses an input channel >= n_inputs = {self.n_inputs}")
        return self

    def build(self) -> Device:
        index = {name: i for i, name in enumerate(self.nodes)}
        n = len(self.nodes)

        def pair(e: _Element) -> tuple[int, int]:
            a, b = (index.get(e.a, -1), index.get(e.b, -1))
            return (a, b) if a >= 0 else (b, a)

        parts = NetworkParts(n=n)
        for e in self.elements:
            a, b = pair(e)
            if isinstance(e, CapacitorSpec):
                parts.caps.append(Branch(a, b, e.C, e.name))
            elif isinstance(e, InductorSpec):
                parts.lins.append(Branch(a, b, 1.0 / e.L, e.name))
            else:
                parts.coss.append(Branch(a, b, e.E_J, e.name, kappa=2 * np.pi / e.phi0))
        n_in = (
            self.n_inputs
            if self.n_inputs is not None
            else 1 + max((s.input for s in self.sources), default=-1)
        )
        # B, its base copy and the programmed copy: n × n_in each
        memory.check(
            3 * memory.floats((n, n_in)),
            f"device {self.name!r} with {n} nodes × {n_in} input channels (the largest source "
            f"input index + 1)",
            "number the sources' input channels from 0 without gaps (input = 0, 1, ...)",
        )
        B = np.zeros((n, n_in))
        src_index = []
        for s in self.sources:
            B[index[s.node], s.input] += s.gain
            src_index.append(index[s.node] * n_in + s.input)
        off = parts.offsets()
        available = {
            "capacitance": ("w", off["cap"] + np.arange(len(parts.caps)), "F", parts.caps),
            "inverse_inductance": ("w", off["lin"] + np.arange(len(parts.lins)), "1/H", parts.lins),
            "josephson_energy": ("w", off["cos"] + np.arange(len(parts.coss)), "J", parts.coss),
        }
        groups = [
            ParamGroup(
                g, unit, tgt, np.asarray(idx, dtype=np.int64), labels=tuple(b.label for b in br)
            )
            for g, (tgt, idx, unit, br) in available.items()
            if g in self.learnable and len(idx)
        ]
        uniq = list(dict.fromkeys(src_index))
        if "input_weight" in self.learnable and uniq:
            labels = tuple(f"B[{self.nodes[i // n_in]},{i % n_in}]" for i in uniq)
            groups.append(
                ParamGroup(
                    "input_weight", "A", "B", np.asarray(uniq, dtype=np.int64), labels=labels
                )
            )
        readout = None
        if self.readout is not None:
            readout = np.zeros((len(self.readout), n))
            readout[np.arange(len(self.readout)), [index[r] for r in self.readout]] = 1.0
        return compile_network(
            parts,
            name=self.name,
            dt=self.dt,
            B=B,
            readout=readout,
            q0=vector_field(self.q0, n, "q0"),
            p0=vector_field(self.p0, n, "p0"),
            groups=groups,
            units={"q": "Wb", "p": "C", "t": "s", "u": "1", "y": "Wb"},
            spec=self,
            kinetic_name="capacitance",
            family=LCNetwork,
        )


@FAMILIES.register
class LCNetwork(Family):
    """LC netlists: the network kernels in the circuit vocabulary (node fluxes, charges)."""

    name = "lc_network"
    spec = LCNetworkSpec
    kernels = network_kernels
    energy_unit = "J"  # SI elements, time in s, inputs as −Σ q_i (B u)_i (module docstring)
    summary = "device: an LC netlist with Josephson elements"

    @classmethod
    def check_drive_range(cls, spec, q, u=None) -> None:
        check_junctions(spec, q, u)


#: a junction phase that runs through more than this many turns (2π each) is in the running
#: state; within a few turns it is still a (strongly) nonlinear oscillator, which is physics
PHASE_TURNS_MAX = 10.0


def check_junctions(spec: LCNetworkSpec, q: np.ndarray, u: np.ndarray | None) -> None:
    """Warn when a junction of ``spec`` winds through more than PHASE_TURNS_MAX turns in the
    states ``q`` (the running state: see :mod:`physim.rangecheck`)."""
    q = np.asarray(q, dtype=np.float64)
    index = {n: i for i, n in enumerate(spec.nodes)}
    worst: tuple[float, JosephsonSpec] | None = None
    for e in spec.elements:
        if not isinstance(e, JosephsonSpec):
            continue
        fa = q[..., index[e.a]] if e.a in index else 0.0
        fb = q[..., index[e.b]] if e.b in index else 0.0
        turns = float(np.max(np.abs(fa - fb))) / e.phi0
        if worst is None or turns > worst[0]:
            worst = (turns, e)
    if worst is None or not np.isfinite(worst[0]) or worst[0] <= PHASE_TURNS_MAX:
        return
    turns, e = worst
    i_c = 2 * np.pi * e.E_J / e.phi0
    drive = ""
    if u is not None and spec.sources:
        peak = float(np.max(np.abs(u))) if np.size(u) else 0.0
        i_src = peak * max(abs(s.gain) for s in spec.sources)
        drive = f"; the sources inject up to {i_src:.2g} A, {i_src / i_c:.2g}× I_c"
    warn(
        f"josephson {e.name} winds through {turns:.3g} turns of 2π over the forward run"
        f" (critical current I_c = 2πE_J/Φ₀ = {i_c:.2g} A{drive})",
        "a cosine element driven far past 2π is in its running state, outside the range it "
        "models, and the gradient follows its phase winding",
        f"lower the source gains so that the drive stays below I_c = {i_c:.2g} A, or raise E_J",
    )
