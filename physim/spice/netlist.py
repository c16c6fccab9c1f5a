"""Write an ``lc_network`` device (or one as-built instance of it) as an ngspice netlist.

What the netlist holds, and how each physim concept is written:

* capacitors ``C`` and inductors ``L`` between the device's nodes (ground is SPICE node ``0``);
  an inductor carries ``IC=`` = Φ_b(0)/L, its current at the initial branch flux;
* **node fluxes**: every node ``n`` gets an integrator ``Bflux_n 0 flux_n I=v(n)`` into
  ``Cflux_n flux_n 0 σ``, so that v(flux_n) = Φ_n / σ (σ = ``flux_scale``, Wb per volt, a power
  of ten near the device's flux so that ngspice's absolute tolerances stay meaningful);
* **Josephson elements** (cosine inductors, −E_J cos(2πΦ_b/Φ₀)) as a behavioural current
  source on the branch flux read from those integrators:
  ``BJ a b I=E_J*(2*pi/Φ₀)*sin((2*pi/Φ₀)*σ*(v(flux_a)-v(flux_b)))`` — the current
  I_c sin(2πΦ_b/Φ₀) with I_c = 2πE_J/Φ₀ flows from a to b, exactly the force −∂H/∂Φ;
* **inputs**: channel k is the voltage of node ``in_k`` (1 V = 1 input unit), a PWL through
  u_j at t = (j + ½)·dt — the leapfrog samples its drive at the half step, so physim at dt
  sees exactly u_j and at dt/m the same piecewise-linear signal; each physim current source
  is a VCCS ``G 0 node in_k 0 gain`` injecting gain·u_k (A) into its node;
* **initial state**: ``.ic`` node voltages V = C⁻¹Q₀ and integrator voltages Φ₀/σ (``uic``);
* **as-built** (``--nonideal``): element values and gains after the instrument's own mismatch
  draw; dissipation as resistors realising the conductance matrix D of the loss (per dof: a
  shunt 1/(γ_i C_ii) at each node; per mode: D's off-diagonals between nodes and its row sums
  to ground, which may be negative — then the netlist is not passive and says so); thermal noise
  as ``trnoise`` current sources of one-sided density 4kT/R across each passive resistor,
  with a ``setseed`` line from the chip's noise seed (ngspice 39 does not reproduce trnoise
  draws from it: the same file gives other noise on every run, equal only in distribution);
* ``.tran dt K·dt 0 tmax uic`` and a ``.control`` block that runs it and writes every node
  voltage and flux integrator with ``wrdata``.

Lines ``*physim key = value`` carry what SPICE has no word for (node order, readout, learnable
groups, description, task) so that :func:`physim.spice.parse.import_netlist` returns the same
spec; other tools read them as comments.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass

import numpy as np

from physim._version import __version__
from physim.families.lc import (
    GROUND,
    CapacitorSpec,
    InductorSpec,
    JosephsonSpec,
    LCNetworkSpec,
)
from physim.instrument.specs import NonidealSpec

#: ngspice's relative tolerance for the reference run: far below physim's error at dt/4
REF_RELTOL = 1e-9
#: ngspice's absolute tolerances, relative to the peak of the quantity they guard
REF_ABS_FRACTION = 1e-12
#: ngspice's largest internal step, in device steps: trapezoidal error (dt/64)² ≈ 1/4096 of
#: physim's at dt, 256× below physim's at dt/4, so the reference does not limit the order
REF_STEPS_PER_DT = 64
#: |D_ij| below this fraction of max |D| is round-off of the mode decomposition, not a resistor
FRICTION_DROP = 1e-12
#: PWL (time, value) pairs per continuation line
_PAIRS_PER_LINE = 4
#: node-name prefixes the export reserves for its auxiliary nodes
RESERVED = ("flux_", "in_")
#: element-name prefixes of the export's auxiliary elements (lower case)
RESERVED_ELEMENTS = ("bflux_", "cflux_", "vin_", "gsrc", "rdiss_", "inoise_")
SPICE_GROUND = "0"


@dataclass(frozen=True)
class Netlist:
    """An exported netlist and what a reader of its ``wrdata`` output needs.

    ``columns`` are the vectors written by ``wrdata`` in order (after the time column): the
    voltage of every device node, then every flux integrator.
    """

    text: str
    nodes: tuple[str, ...]
    flux_scale: float
    data_file: str
    columns: tuple[str, ...]
    n_steps: int
    dt: float


@dataclass(frozen=True)
class BuiltValues:
    """Element values of one instance: ``values[name]`` (F, H or J), ``gains[i]`` per source,
    the conductance matrix ``D`` of the loss (S, or ``None``) and the bath temperature."""

    values: dict[str, float]
    gains: tuple[float, ...]
    D: np.ndarray | None = None
    kT: float = 0.0
    noise_seed: int = 0
    label: str = ""


def fmt(x: float) -> str:
    """A float as SPICE reads it back exactly (shortest round-trip repr)."""
    return repr(float(x))


def spice_node(node: str) -> str:
    return SPICE_GROUND if node in GROUND else node


def element_name(e: CapacitorSpec | InductorSpec | JosephsonSpec) -> str:
    """The SPICE name: C…/L… as given (prefixed with the letter when missing); B + name for a
    Josephson element (its behavioural source)."""
    if isinstance(e, JosephsonSpec):
        return "B" + e.name
    letter = "C" if isinstance(e, CapacitorSpec) else "L"
    return e.name if e.name[:1].upper() == letter else letter + e.name


def capacitance_matrix(spec: LCNetworkSpec, values: dict[str, float]) -> np.ndarray:
    index = {n: i for i, n in enumerate(spec.nodes)}
    n = len(spec.nodes)
    C = np.zeros((n, n))
    for e in spec.elements:
        if not isinstance(e, CapacitorSpec):
            continue
        c = values[e.name]
        ia, ib = index.get(e.a), index.get(e.b)
        for i in (ia, ib):
            if i is not None:
                C[i, i] += c
        if ia is not None and ib is not None:
            C[ia, ib] -= c
            C[ib, ia] -= c
    return C


def nominal_values(spec: LCNetworkSpec) -> BuiltValues:
    values: dict[str, float] = {}
    for e in spec.elements:
        values[e.name] = (
            e.C if isinstance(e, CapacitorSpec) else e.L if isinstance(e, InductorSpec) else e.E_J
        )
    return BuiltValues(values=values, gains=tuple(s.gain for s in spec.sources))


def check_names(spec: LCNetworkSpec) -> None:
    """SPICE folds case: node and element names must stay distinct, and auxiliary prefixes free."""
    seen: dict[str, str] = {}
    for n in spec.nodes:
        low = n.lower()
        if low.startswith(RESERVED):
            raise ValueError(
                f"node {n!r} starts with a prefix the SPICE export reserves ({', '.join(RESERVED)}); "
                "rename the node"
            )
        if low in seen or any(c.isspace() or c in "()=,;$" for c in n):
            raise ValueError(
                f"node {n!r} is not a distinct SPICE node name (SPICE ignores case and splits on "
                "spaces, parentheses, '=' and ','); rename it"
            )
        seen[low] = n
    names: set[str] = set()
    for e in spec.elements:
        sname = element_name(e).lower()
        if sname.startswith(RESERVED_ELEMENTS):
            raise ValueError(
                f"element {e.name!r} is written as {element_name(e)!r}, a name the SPICE export "
                f"reserves for its auxiliary elements ({', '.join(RESERVED_ELEMENTS)}); rename it"
            )
        if sname in names or any(c.isspace() or c in "()=,;$" for c in sname):
            raise ValueError(
                f"element {e.name!r} is written as {element_name(e)!r}, which is not a distinct "
                "SPICE name (SPICE ignores case); rename it"
            )
        names.add(sname)


def _pwl(name: str, node: str, t: np.ndarray, v: np.ndarray) -> list[str]:
    pairs = [f"{fmt(a)} {fmt(b)}" for a, b in zip(t, v, strict=True)]
    lines = [f"{name} {node} 0 PWL("]
    for i in range(0, len(pairs), _PAIRS_PER_LINE):
        lines.append("+ " + " ".join(pairs[i : i + _PAIRS_PER_LINE]))
    lines.append("+ )")
    return lines


def pwl_knots(u: np.ndarray, dt: float, offset: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Knot times and values of the piecewise-linear input through u_j at (j + offset)·dt,
    held constant from t = 0 and up to t = K·dt.

    ``offset = ½`` puts the knots where the leapfrog samples its drive: physim at dt sees
    exactly u_j. ``offset = 0`` puts them on step boundaries, so that no step of dt/m straddles
    a kink of the input (used by the convergence check).
    """
    K = u.shape[0]
    t = (np.arange(K) + offset) * dt
    head = [] if offset == 0 else [0.0]
    t = np.concatenate([head, t, [K * dt]])
    v = np.concatenate([u[: len(head)], u, u[-1:]], axis=0)
    return t, v


def resistor_network(D: np.ndarray) -> list[tuple[int, int, float]]:
    """(i, j, conductance) branches realising the conductance matrix D (j = −1: ground)."""
    n = D.shape[0]
    drop = FRICTION_DROP * float(np.max(np.abs(D), initial=0.0))
    out = []
    for i in range(n):
        for j in range(i + 1, n):
            if abs(D[i, j]) > drop:
                out.append((i, j, -float(D[i, j])))
    for i in range(n):
        g = float(np.sum(D[i]))
        if abs(g) > drop:
            out.append((i, -1, g))
    return out


def write_netlist(
    spec: LCNetworkSpec,
    u: np.ndarray,
    *,
    built: BuiltValues | None = None,
    flux_scale: float = 1.0,
    v_peak: float = 1.0,
    i_peak: float = 1.0,
    q_peak: float = 1.0,
    data_file: str = "physim-spice.dat",
    steps_per_dt: int = REF_STEPS_PER_DT,
    knot_offset: float = 0.5,
    reltol: float = REF_RELTOL,
) -> Netlist:
    """The netlist text for ``spec`` driven by ``u`` (n_steps, n_inputs) at the device's dt.

    The input is the piecewise-linear signal of :func:`pwl_knots` (``knot_offset``).
    ``built`` gives the element values of an as-built instance (nominal when ``None``);
    ``flux_scale`` is σ (Wb per volt of the flux integrators); the peaks (V, A, C) set the
    absolute tolerances of the reference run; ``steps_per_dt`` and ``reltol`` its step limit
    (tmax = dt / steps_per_dt) and relative tolerance.
    """
    check_names(spec)
    u = np.asarray(u, dtype=np.float64)
    n_in = (
        spec.n_inputs
        if spec.n_inputs is not None
        else 1 + max((s.input for s in spec.sources), default=-1)
    )
    if u.ndim != 2 or u.shape[1] != n_in or u.shape[0] < 1:
        raise ValueError(
            f"the input of {spec.name!r} must have shape (n_steps >= 1, {n_in}), got {u.shape}"
        )
    built = built or nominal_values(spec)
    dt = spec.dt
    K = u.shape[0]
    sigma = float(flux_scale)
    nodes = list(spec.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    q0 = np.zeros(len(nodes)) if spec.q0 is None else np.asarray(spec.q0, dtype=np.float64)
    p0 = np.zeros(len(nodes)) if spec.p0 is None else np.asarray(spec.p0, dtype=np.float64)

    def flux(node: str) -> float:
        return 0.0 if node in GROUND else float(q0[index[node]])

    out = [
        spec.name,
        f"* exported by physim {__version__} from lc_network {spec.name!r}",
        "* node fluxes: v(flux_<node>) = flux / sigma, sigma = " + fmt(sigma) + " Wb/V",
        "* Josephson elements: B-sources I = E_J*(2*pi/phi0)*sin((2*pi/phi0)*branch flux)",
        "* inputs: v(in_<k>) is input channel k (1 V = 1 input unit)",
    ]
    if built.label:
        out.append(f"* as-built instance: {built.label}")
    out.append(f"*physim nodes = {json.dumps(nodes)}")
    out.append(f"*physim description = {json.dumps(spec.description)}")
    if spec.readout is not None:
        out.append(f"*physim readout = {json.dumps(spec.readout)}")
    out.append(f"*physim learnable = {json.dumps(list(spec.learnable))}")
    if spec.n_inputs is not None:
        out.append(f"*physim n_inputs = {spec.n_inputs}")
    if spec.task is not None:
        out.append(f"*physim task = {spec.task.model_dump_json()}")

    out.append("* elements")
    for e in spec.elements:
        a, b = spice_node(e.a), spice_node(e.b)
        val = built.values[e.name]
        if isinstance(e, CapacitorSpec):
            out.append(f"{element_name(e)} {a} {b} {fmt(val)}")
        elif isinstance(e, InductorSpec):
            i0 = (flux(e.a) - flux(e.b)) / val
            out.append(f"{element_name(e)} {a} {b} {fmt(val)} IC={fmt(i0)}")
        else:
            kap = f"(2*pi/{fmt(e.phi0)})"
            br = ("" if e.a in GROUND else f"v(flux_{e.a})") + (
                "" if e.b in GROUND else f"-v(flux_{e.b})"
            )
            out.append(
                f"{element_name(e)} {a} {b} I={fmt(val)}*{kap}*sin({kap}*{fmt(sigma)}*({br}))"
            )

    out.append("* inputs and the current sources they drive")
    t_knots, u_knots = pwl_knots(u, dt, knot_offset)
    for k in range(n_in):
        if np.all(u[:, k] == u[0, k]):  # a constant channel needs no PWL
            out.append(f"Vin_{k} in_{k} 0 DC {fmt(u[0, k])}")
        else:
            out += _pwl(f"Vin_{k}", f"in_{k}", t_knots, u_knots[:, k])
    for i, (s, g) in enumerate(zip(spec.sources, built.gains, strict=True)):
        out.append(f"Gsrc{i} 0 {s.node} in_{s.input} 0 {fmt(g)}")

    out.append("* flux integrators")
    for n in nodes:
        out.append(f"Bflux_{n} 0 flux_{n} I=v({n})")
        out.append(f"Cflux_{n} flux_{n} 0 {fmt(sigma)}")

    if built.D is not None:
        out += _dissipation(built, nodes, dt)

    C = capacitance_matrix(spec, built.values)
    V0 = np.linalg.solve(C, p0)
    ics = [f"v({n})={fmt(V0[i])}" for i, n in enumerate(nodes)]
    ics += [f"v(flux_{n})={fmt(q0[i] / sigma)}" for i, n in enumerate(nodes)]
    out.append(".ic " + ics[0])
    out += ["+ " + x for x in ics[1:]]

    tmax = dt / steps_per_dt
    out.append(f".tran {fmt(dt)} {fmt(K * dt)} 0 {fmt(tmax)} uic")
    out.append(
        f".options method=trap reltol={fmt(reltol)} trtol=1 "
        f"vntol={fmt(REF_ABS_FRACTION * min(v_peak, 1.0))} "
        f"abstol={fmt(REF_ABS_FRACTION * i_peak)} chgtol={fmt(REF_ABS_FRACTION * q_peak)}"
    )
    columns = tuple(f"v({n})" for n in nodes) + tuple(f"v(flux_{n})" for n in nodes)
    out += [".control", "set wr_singlescale", "set wr_vecnames", "set numdgt=16"]
    if built.D is not None and built.kT > 0:
        out.append(f"setseed {built.noise_seed + 1}")
    out += ["run", f"wrdata {data_file} " + " ".join(columns), "quit", ".endc", ".end", ""]
    return Netlist(
        text="\n".join(out),
        nodes=tuple(nodes),
        flux_scale=sigma,
        data_file=data_file,
        columns=columns,
        n_steps=K,
        dt=dt,
    )


def _dissipation(built: BuiltValues, nodes: list[str], dt: float) -> list[str]:
    out = ["* dissipation: resistors realising the loss conductance matrix D"]
    branches = resistor_network(built.D)
    negative = [br for br in branches if br[2] < 0]
    if negative:
        warnings.warn(
            f"the loss of this instance (per-mode Q) is not a passive resistor network: "
            f"{len(negative)} of {len(branches)} resistors are negative; ngspice simulates them "
            "as written, but their thermal noise is omitted — give the loss as damping_rate "
            "for a passive netlist",
            stacklevel=3,
        )
    for i, j, g in branches:
        a = nodes[i]
        b = SPICE_GROUND if j < 0 else nodes[j]
        name = f"Rdiss_{a}" + ("" if j < 0 else f"_{b}")
        out.append(f"{name} {a} {b} {fmt(1.0 / g)}")
        if built.kT > 0 and g > 0:
            # white current noise of one-sided density 4kT/R, sampled every half step (the
            # Langevin splitting's O-steps): rms² = 4kT·g · 1/(2·NT)
            nt = 0.5 * dt
            rms = math.sqrt(2.0 * built.kT * g / nt)
            out.append(f"Inoise_{name[1:]} {a} {b} DC 0 trnoise({fmt(rms)} {fmt(nt)} 0 0)")
    return out


def unsupported_sources(nonideal: NonidealSpec) -> list[str]:
    """Non-ideality kinds the netlist cannot express (they only exist in the instrument): every
    source whose class does not declare its kind (or target) in ``spice``."""
    from physim.instrument.sources import SOURCES

    out = set()
    for s in nonideal.sources:
        target = getattr(s, "target", "") or ""
        if target not in SOURCES.get(s.kind).spice:
            # a kind that the netlist expresses for another target names the target
            out.add(f"{s.kind} ({target})" if SOURCES.get(s.kind).spice else s.kind)
    return sorted(out)
