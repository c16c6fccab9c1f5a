"""Read a SPICE netlist into an ``lc_network`` spec (and a dissipation spec for its resistors).

What is read (SPICE is case-insensitive; node ``0`` and ``gnd`` are ground; the first line is
the title, used as the device name; ``*`` starts a comment line, ``;`` or `` $ `` an inline
comment, ``+`` continues the previous line):

* ``C``, ``L`` (``IC=`` allowed) and ``R`` elements with values as numbers with SI suffixes
  (f p n u m k meg g t, trailing unit letters ignored: ``1nF``), ``.param`` names, or
  ``{expressions}`` of those;
* ``I`` sources (``DC`` value, ``SIN(0 va …)``, ``PWL(…)``): one input channel each, the gain
  being the source's amplitude (DC value, SIN amplitude, or PWL peak) so that the input is of
  order 1 (a SIN offset, or a DC value beside a waveform, is refused: one channel carries one
  waveform);
* what :mod:`physim.spice.netlist` writes: input channels ``Vin_k in_k 0 PWL(…)`` driving
  ``G 0 node in_k 0 gain`` sources, flux integrators on ``flux_<node>``, Josephson B-sources,
  ``trnoise`` current sources across resistors (their temperature), ``*physim`` annotations;
* ``.tran tstep tstop …`` (the device's dt), ``.ic v(node)=…`` (node charges C·V) and
  ``.ic v(flux_node)=…`` (node fluxes), ``setseed`` in a ``.control`` block.

A resistor from a node to ground becomes a shunt conductance: ``damping_rate`` γ_i = 1/(R C_ii)
of a dissipation spec (C_ii the node's total capacitance). Anything else (semiconductors,
subcircuits, models, coupled inductors, resistors between two nodes, general voltage or
behavioural sources, a voltage source on a circuit node or one that drives no G source) is an
error naming the line.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import numpy as np

from physim import memory
from physim.families.lc import LCNetworkSpec
from physim.instrument.specs import BOLTZMANN, NonidealSpec, parse_nonideal
from physim.specs import parse_spec
from physim.spice.lexer import NUMBER, Line, NetlistError, logical_lines, split_card, value

#: dense node x node float64 matrices an import and its device build hold at once (the
#: capacitance matrix, its inverse, the stiffness and a work copy): the memory check's factor
MATRICES_PER_NODE_PAIR = 4

__all__ = ["Imported", "NetlistError", "import_netlist", "value"]

_JJ_RE = re.compile(
    rf"^i=(?P<ej>{NUMBER})\*\(2\*pi/(?P<p0>{NUMBER})\)\*sin\(\(2\*pi/(?P=p0)\)\*(?P<s>{NUMBER})"
    r"\*\((?:v\(flux_(?P<a>[^()]+)\))?(?:-v\(flux_(?P<b>[^()]+)\))?\)\)$"
)
_FLUX_RE = re.compile(r"^i=v\((?P<n>[^()]+)\)$")
_FUNC_RE = re.compile(r"(\w+)\s*\(([^()]*)\)")
#: temperatures read from several noise sources must agree to this relative precision
#: (they are written with 17 digits; the inversion rms² → T loses a few ulps)
TEMPERATURE_RTOL = 1e-9
GROUNDS = ("0", "gnd")
_UNSUPPORTED = {
    "d": "diodes",
    "q": "bipolar transistors",
    "m": "MOSFETs",
    "j": "JFETs",
    "z": "MESFETs",
    "x": "subcircuit instances",
    "e": "voltage-controlled voltage sources (E)",
    "f": "current-controlled current sources (F)",
    "h": "current-controlled voltage sources (H)",
    "k": "coupled inductors (K)",
    "t": "transmission lines (T)",
    "o": "lossy transmission lines (O)",
    "s": "switches (S)",
    "w": "switches (W)",
    "a": "XSPICE code models (A)",
}


@dataclass(frozen=True)
class Imported:
    """The device spec and, when the netlist has resistors, the dissipation spec."""

    spec: LCNetworkSpec
    nonideal: NonidealSpec | None


_IGNORED_DOT = (
    ".options", ".option", ".opt", ".temp", ".save", ".print", ".plot", ".probe", ".width",
    ".title", ".op", ".ac", ".dc", ".noise", ".tf", ".sens", ".pz", ".disto", ".four",
    ".meas", ".measure", ".nodeset", ".global",
)  # fmt: skip


class _Reader:
    """One pass over the cards of a netlist, collecting what the spec needs."""

    def __init__(self, params: dict[str, float]):
        self.params = params
        self.nodes: dict[str, str] = {}  # lower-case key -> first spelling
        self.elements: list[dict] = []
        self.resistors: list[tuple[Line, str, str | None, float]] = []
        self.noise: list[tuple[Line, str, str | None, float, float]] = []
        self.sigma: dict[str, float] = {}  # node key -> Wb per volt of its flux integrator
        self.jj_sigma: list[tuple[Line, list[str], float]] = []
        self.inductor_ic: list[tuple[Line, float]] = []
        self.inputs: dict[str, Line] = {}  # input node key -> its V source line
        self.g_sources: list[tuple[Line, str, str, float]] = []  # (line, node, control, gain)
        self.i_sources: list[tuple[str, float]] = []
        self.ics: dict[str, tuple[Line, float]] = {}
        self.tran: tuple[Line, list[str]] | None = None

    def val(self, ln: Line, tok: str) -> float:
        try:
            return value(tok, self.params)
        except (ValueError, ZeroDivisionError, OverflowError) as err:
            raise ln.error(str(err)) from None

    def node(self, ln: Line, tok: str, aux_ok: bool = False) -> str | None:
        key = tok.lower()
        if key in GROUNDS:
            return None
        if key.startswith(("flux_", "in_")) and not aux_ok:
            raise ln.error(
                f"node {tok!r} is an auxiliary node of physim's export (flux_*, in_*) used by an "
                "element that is not physim's; rename the node"
            )
        if not aux_ok:
            self.nodes.setdefault(key, tok)
        return key

    def card(self, ln: Line) -> None:
        tok = split_card(ln.text)
        kind = tok[0][0].lower()
        if kind in "clr":
            self.two_terminal(ln, tok, kind)
        elif kind == "i":
            self.current_source(ln, tok)
        elif kind == "g":
            if len(tok) != 6:
                raise ln.error("a G source must read 'Gname n+ n- nc+ nc- gain'")
            a, b = self.node(ln, tok[1]), self.node(ln, tok[2])
            ctrl = tok[3].lower()
            if self.node(ln, tok[4], aux_ok=True) is not None or ctrl in GROUNDS:
                raise ln.error("a G source must be controlled by an input node against ground")
            node, sign = self._injected(ln, a, b)
            gain = self.val(ln, tok[5])
            _drives(ln, gain, "its gain", zero_ok=True)
            self.g_sources.append((ln, node, ctrl, sign * gain))
        elif kind == "v":
            if len(tok) < 4 or tok[2].lower() not in GROUNDS:
                raise ln.error(
                    "a voltage source is read only as an input channel: 'Vname in 0 PWL(...)' "
                    "driving G sources (a node-flux circuit has no voltage constraints)"
                )
            self.inputs[tok[1].lower()] = ln
        elif kind == "b":
            self.behavioural(ln, tok)
        elif kind in _UNSUPPORTED:
            raise ln.error(
                f"{_UNSUPPORTED[kind]} are not supported; physim reads C, L, R, I sources and "
                "its own G/V input and B Josephson forms"
            )
        else:
            raise ln.error(f"unknown element type {tok[0][0]!r}")

    def two_terminal(self, ln: Line, tok: list[str], kind: str) -> None:
        if len(tok) < 4:
            raise ln.error(f"a {kind.upper()} element must read '{kind.upper()}name n1 n2 value'")
        if tok[1].lower().startswith("flux_") or tok[2].lower().startswith("flux_"):
            key = tok[1].lower()
            if tok[0].lower() != f"c{key}" or tok[2].lower() not in GROUNDS or len(tok) != 4:
                raise ln.error("only 'Cflux_<node> flux_<node> 0 sigma' may sit on a flux node")
            self.sigma[key[5:]] = self.val(ln, tok[3])
            return
        a, b = self.node(ln, tok[1]), self.node(ln, tok[2])
        v = self.val(ln, tok[3])
        opts = tok[4:]
        ic = 0.0
        for o in opts:
            if kind != "r" and o.lower().startswith("ic="):
                ic = self.val(ln, o[3:])
            else:
                raise ln.error(f"option {o!r} is not supported on a {kind.upper()} element")
        if kind == "r":
            if a is not None and b is not None:
                raise ln.error(
                    "a resistor between two nodes has no physim form: dissipation is a shunt "
                    "conductance per node (damping_rate); connect it to ground"
                )
            if not v > 0:
                raise ln.error(f"resistance must be > 0 to be a loss, got {v}")
            self.resistors.append((ln, a or b, None, v))
            return
        if kind == "l" and ic != 0.0:
            self.inductor_ic.append((ln, ic))
        field = {"c": ("capacitor", "C"), "l": ("inductor", "L")}[kind]
        self.elements.append(self._element(field[0], tok[0], tok[1], tok[2], {field[1]: v}))

    def _element(self, type_: str, name: str, a: str, b: str, vals: dict) -> dict:
        def out(t: str) -> str:
            k = t.lower()
            return "gnd" if k in GROUNDS else self.nodes.get(k, t)

        return {"type": type_, "name": name, "a": out(a), "b": out(b), **vals}

    def _injected(self, ln: Line, a: str | None, b: str | None) -> tuple[str, float]:
        """Node a current from n+ through the source to n- is injected into, and its sign."""
        if (a is None) == (b is None):
            raise ln.error(
                "a current source must connect a node to ground (physim injects currents into "
                "nodes); split it into two sources"
            )
        return (b, 1.0) if a is None else (a, -1.0)

    def current_source(self, ln: Line, tok: list[str]) -> None:
        if len(tok) < 4:
            raise ln.error("an I source must read 'Iname n+ n- <value or waveform>'")
        a, b = self.node(ln, tok[1]), self.node(ln, tok[2])
        rest = " ".join(tok[3:]).lower()
        funcs = {f: args for f, args in _FUNC_RE.findall(rest)}
        plain = _FUNC_RE.sub(" ", rest).split()
        if plain[:1] == ["dc"]:
            plain = plain[1:]
        dc = self.val(ln, plain[0]) if plain else 0.0
        if len(plain) > 1:
            raise ln.error(f"cannot read {' '.join(plain[1:])!r} (AC and other options)")
        if "trnoise" in funcs:
            if dc != 0.0 or len(funcs) > 1:
                raise ln.error("a trnoise source is read as resistor noise: 'DC 0 trnoise(...)'")
            args = [self.val(ln, x) for x in funcs["trnoise"].replace(",", " ").split()]
            if len(args) < 2 or any(x != 0 for x in args[2:]):
                raise ln.error("only white trnoise(NA NT) is read (no 1/f or RTS terms)")
            self.noise.append((ln, a or b, None, args[0], args[1]))
            return
        bad = set(funcs) - {"sin", "pwl"}
        if bad:
            raise ln.error(f"waveform {sorted(bad)[0].upper()} is not supported (DC, SIN, PWL)")
        if funcs and dc != 0.0:
            raise ln.error(
                f"a DC value ({plain[0]}) beside a {sorted(funcs)[0].upper()} waveform is not "
                "read (an input channel carries one waveform); put the DC part in a source of "
                "its own"
            )
        if "sin" in funcs:
            args = funcs["sin"].replace(",", " ").split()
            offset = self.val(ln, args[0]) if args else 0.0
            if offset != 0.0:
                raise ln.error(
                    f"SIN offset {args[0]} is not read (an input channel carries the sine's "
                    "amplitude); give SIN(0 ...) and put the offset in a DC source of its own"
                )
            amp = self.val(ln, args[1]) if len(args) > 1 else 0.0
        elif "pwl" in funcs:
            vals = [self.val(ln, x) for x in funcs["pwl"].replace(",", " ").split()][1::2]
            amp = max(vals, key=abs) if vals else 0.0
        else:
            amp = dc
        _drives(ln, amp, "its amplitude")
        node, sign = self._injected(ln, a, b)
        self.i_sources.append((node, sign * amp))

    def behavioural(self, ln: Line, tok: list[str]) -> None:
        if len(tok) < 4:
            raise ln.error("a B source must read 'Bname n+ n- I=expression'")
        expr = "".join(tok[3:]).lower()
        name = tok[0]
        if name.lower().startswith("bflux_"):
            m = _FLUX_RE.match(expr)
            n = name.lower()[6:]
            if (
                m is None
                or m.group("n") != n
                or tok[1].lower() not in GROUNDS
                or tok[2].lower() != f"flux_{n}"
            ):
                raise ln.error("a flux integrator must read 'Bflux_<n> 0 flux_<n> I=v(<n>)'")
            return
        m = _JJ_RE.match(expr)
        if m is None:
            raise ln.error(
                "behavioural sources are read only in physim's Josephson form "
                "I=E_J*(2*pi/phi0)*sin((2*pi/phi0)*sigma*(v(flux_a)-v(flux_b)))"
            )
        a, b = self.node(ln, tok[1]), self.node(ln, tok[2])
        if (m.group("a"), m.group("b")) != (a, b) or (a is None and b is None):
            raise ln.error("the Josephson branch flux must be read across the source's own nodes")
        self.jj_sigma.append((ln, [n for n in (a, b) if n is not None], float(m.group("s"))))
        self.elements.append(
            self._element(
                "josephson",
                name[1:],
                tok[1],
                tok[2],
                {"E_J": float(m.group("ej")), "phi0": float(m.group("p0"))},
            )
        )

    def dot(self, ln: Line) -> bool:
        """Read a dot card; ``False`` at ``.end``."""
        tok = split_card(ln.text)
        head = tok[0].lower()
        if head == ".end":
            return False
        if head == ".tran":
            self.tran = (ln, tok[1:])
        elif head == ".ic":
            for t in tok[1:]:
                m = re.match(r"^v\(([^()]+)\)=(.+)$", t, re.IGNORECASE)
                if m is None:
                    raise ln.error(f"cannot read {t!r}: .ic takes v(node)=value")
                self.ics[m.group(1).lower()] = (ln, self.val(ln, m.group(2)))
        elif head in (".model", ".subckt", ".include", ".inc", ".lib", ".func", ".ends"):
            raise ln.error(f"{head} is not supported: flatten the netlist to C, L, R and I cards")
        elif head not in _IGNORED_DOT:
            raise ln.error(f"unknown control card {head!r}")
        return True


def _drives(ln: Line, gain: float, what: str, zero_ok: bool = False) -> None:
    """A source becomes an input channel of gain ``gain``: a non-finite gain no circuit has;
    an I source of amplitude zero is an open circuit whose channel would drive nothing (a G
    source of gain 0 is kept: physim's own export writes a zero-gain channel that way)."""
    if (gain == 0 and not zero_ok) or not math.isfinite(gain):
        raise ln.error(
            f"{what} is {gain}: an input channel of gain {gain} drives nothing physim can "
            "simulate; give it a finite non-zero value or delete the source"
        )


def _params(lines: list[Line]) -> dict[str, float]:
    params: dict[str, float] = {}
    for ln in lines:
        tok = split_card(ln.text)
        if tok[0].lower() != ".param":
            continue
        for t in tok[1:]:
            key, eq, rhs = t.partition("=")
            if not eq or not key:
                raise ln.error(f"cannot read {t!r}: .param takes name=value pairs")
            try:
                params[key.lower()] = value(rhs, params)
            except (ValueError, ZeroDivisionError, OverflowError) as err:
                raise ln.error(str(err)) from None
    return params


def import_netlist(text: str, source: str = "(netlist)") -> Imported:
    """Read a netlist (see the module docstring for what is read)."""
    title, lines = logical_lines(text)
    ann: dict[str, object] = {}
    cards: list[Line] = []
    control: Line | None = None
    seed: int | None = None
    ctrl_tran: tuple[Line, list[str]] | None = None
    for ln in lines:
        low = ln.text.lower()
        if low.startswith("*physim"):
            key, eq, val = ln.text[len("*physim") :].partition("=")
            try:
                ann[key.strip()] = json.loads(val) if eq else None
            except json.JSONDecodeError:
                raise ln.error("a *physim annotation reads 'key = <JSON value>'") from None
            continue
        if control is not None:
            tok = split_card(low)
            if tok[0] == ".endc":
                control = None
            elif tok[0] == "tran":
                ctrl_tran = (ln, tok[1:])
            elif tok[0] == "setseed" and len(tok) == 2 and tok[1].isdigit():
                seed = int(tok[1])
            continue
        if low.startswith(".control"):
            control = ln
            continue
        if not low.startswith(".param"):
            cards.append(ln)
    if control is not None:
        raise control.error("a .control block without .endc")
    rd = _Reader(_params(lines))
    for ln in cards:
        if ln.text.startswith("."):
            if not rd.dot(ln):
                break
        else:
            rd.card(ln)
    tran = rd.tran or ctrl_tran
    if tran is None:
        raise NetlistError(f"{source}: no .tran card; add '.tran <dt> <stop>' (dt = physim's step)")
    if not tran[1]:
        raise tran[0].error("a .tran card needs at least the step: '.tran <dt> <stop>'")
    dt = rd.val(tran[0], tran[1][0])

    keys = list(rd.nodes)
    if "nodes" in ann:
        names = [str(n) for n in ann["nodes"]]  # type: ignore[union-attr]
        if sorted(n.lower() for n in names) != sorted(keys):
            raise NetlistError(
                f"{source}: the *physim nodes annotation {names} does not list the nodes of the "
                f"elements {[rd.nodes[k] for k in keys]}; fix or remove the annotation"
            )
        keys = [n.lower() for n in names]
    nodes = [rd.nodes[k] for k in keys]
    index = {k: i for i, k in enumerate(keys)}

    # inputs: channels of the V sources (in_<k> keeps k), then one per I source
    channel: dict[str, int] = {}
    for key in rd.inputs:
        m = re.fullmatch(r"in_(\d+)", key)
        if m:
            channel[key] = int(m.group(1))
    for key in rd.inputs:
        if key not in channel:
            channel[key] = max(channel.values(), default=-1) + 1
    # a voltage source is read only as the input channel of G sources: one on a circuit node
    # would fix its voltage (a node-flux network has no such constraint), one that drives no G
    # source would silently leave the circuit undriven
    read = {ctrl for _, _, ctrl, _ in rd.g_sources}
    for key, ln in rd.inputs.items():
        if key in rd.nodes:
            raise ln.error(
                f"this voltage source fixes the voltage of circuit node {rd.nodes[key]!r}, which "
                "a node-flux LC network cannot hold; drive the node with a current source "
                "instead (a voltage source with a series impedance Z is the current source V/Z "
                "in parallel with Z)"
            )
        if key not in read and not re.fullmatch(r"in_\d+", key):
            raise ln.error(
                f"this voltage source drives node {key!r}, which no G source reads: physim reads "
                "a voltage source only as an input channel 'Vname in_k 0 PWL(...)' controlling "
                "G sources; drive the circuit with a current source instead"
            )
    sources = []
    for ln, node, ctrl, gain in rd.g_sources:
        if ctrl not in channel:
            raise ln.error(f"its control node {ctrl!r} is not driven by an input V source")
        sources.append({"node": rd.nodes[node], "input": channel[ctrl], "gain": gain})
    first = max(channel.values(), default=-1) + 1
    for i, (node, gain) in enumerate(rd.i_sources):
        sources.append({"node": rd.nodes[node], "input": first + i, "gain": gain})

    data: dict[str, object] = {
        "kind": "lc_network",
        "name": title.text or "imported",
        "description": ann.get("description", f"imported from {source}"),
        "dt": dt,
        "nodes": nodes,
        "elements": rd.elements,
        "sources": sources,
    }
    for key in ("n_inputs", "readout", "learnable", "task"):
        if key in ann:
            data[key] = ann[key]
    # the dense capacitance matrix below, and the device physim builds from it (a few
    # node x node matrices), must fit in the memory budget
    n = len(nodes)
    memory.check(
        memory.floats((n, n)) * MATRICES_PER_NODE_PAIR,
        f"a netlist of {n} nodes",
        f"physim builds dense node x node matrices; split the circuit or raise {memory.ENV_VAR}",
    )
    bare = parse_spec(data, source)

    from physim.spice.netlist import capacitance_matrix, nominal_values

    C = capacitance_matrix(bare, nominal_values(bare).values)
    V0 = np.zeros(len(nodes))
    phi0 = np.zeros(len(nodes))
    for key, (ln, v) in rd.ics.items():
        if key.startswith("flux_") and key[5:] in index:
            if key[5:] not in rd.sigma:
                raise ln.error(f"{key} has no integrator capacitor Cflux_{key[5:]}")
            phi0[index[key[5:]]] = v * rd.sigma[key[5:]]
        elif key in index:
            V0[index[key]] = v
        else:
            raise ln.error(f"v({key}) names no node of the circuit")
    for ln, ns, s in rd.jj_sigma:
        if any(rd.sigma.get(n) != s for n in ns):
            raise ln.error("its flux scale differs from the Cflux capacitors of its nodes")
    if rd.inductor_ic and not any(k.startswith("flux_") for k in rd.ics):
        raise rd.inductor_ic[0][0].error(
            "an initial inductor current is read only with the node fluxes it implies; give "
            "them as '.ic v(flux_<node>)=...' with flux integrators, or drop IC="
        )
    p0 = C @ V0
    upd: dict[str, object] = {}
    if np.any(p0 != 0):
        upd["p0"] = [float(x) for x in p0]
    if np.any(phi0 != 0):
        upd["q0"] = [float(x) for x in phi0]
    spec = parse_spec({**bare.model_dump(), **upd}, source) if upd else bare
    _check_builds(spec, source, tran[0])
    return Imported(spec, _dissipation(rd, keys, np.diag(C), seed, source))


def _check_builds(spec, source: str, tran: Line) -> None:
    """Refuse a netlist whose device physim could not build (a node without capacitance, a
    .tran step beyond the leapfrog's stability limit), with the line to fix, before any file
    is written."""
    from physim.stability import UnstableStepError

    try:
        spec.build()
    except UnstableStepError as err:
        raise tran.error(
            f"physim cannot simulate this circuit at the .tran step: {' '.join(str(err).split())}"
        ) from None
    except (ValueError, ArithmeticError) as err:
        raise NetlistError(
            f"{source}: physim cannot build the imported circuit: {' '.join(str(err).split())}"
        ) from None


def _dissipation(
    rd: _Reader, keys: list[str], c_diag: np.ndarray, seed: int | None, source: str
) -> NonidealSpec | None:
    if not rd.resistors:
        if rd.noise:
            raise rd.noise[0][0].error("a trnoise source needs a resistor across it (its loss)")
        return None
    g = np.zeros(len(keys))
    index = {k: i for i, k in enumerate(keys)}
    for _, node, _, R in rd.resistors:
        g[index[node]] += 1.0 / R
    temps = []
    noisy = {node for _, node, _, _, _ in rd.noise}
    for ln, node, _, rms, nt in rd.noise:
        if g[index[node]] == 0:
            raise ln.error("a trnoise source needs a resistor across it (its loss)")
        # rms² = 2 k_B T g / NT (white current noise of one-sided density 4kT/R, sampled at NT)
        temps.append(rms * rms * nt / (2.0 * BOLTZMANN * g[index[node]]))
    if rd.noise and noisy != {node for _, node, _, _ in rd.resistors}:
        ln = next(r[0] for r in rd.resistors if r[1] not in noisy)
        raise ln.error("this resistor has no trnoise source while others do: one bath, one T")
    T = temps[0] if temps else 0.0
    if any(abs(t - T) > TEMPERATURE_RTOL * T for t in temps):
        raise rd.noise[0][0].error(
            f"the trnoise sources imply different temperatures ({min(temps):.6g}..{max(temps):.6g} "
            "K); physim's dissipation has one bath temperature"
        )
    gamma = [float(x) for x in g / c_diag]
    diss = {"kind": "dissipation", "damping_rate": gamma, "temperature": T}
    if seed is not None:
        diss["seed"] = max(seed - 1, 0)
    return parse_nonideal({"name": "imported-loss", "sources": [diss]}, source)
