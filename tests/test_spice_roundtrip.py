"""SPICE netlists in and out: export then import gives the same spec (hypothesis), SI values,
.param, as-built instances and the TOML the importer writes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from physim.families.lc import LCNetworkSpec
from physim.instrument.hardware import Instrument
from physim.instrument.specs import parse_nonideal
from physim.specs import load_spec, parse_spec
from physim.spice.instance import export_device, replicate_nonideal
from physim.spice.netlist import write_netlist
from physim.spice.parse import import_netlist, value
from physim.spice.tomlout import to_toml
from physim.stability import STABILITY_LIMIT, stability_ratio

#: initial charges cross the capacitance matrix twice (V = C⁻¹Q₀ written, Q₀ = C·V read):
#: cond(C) · a few ulps, with capacitances within two decades (cond ≲ 1e3)
IC_RTOL = 1e-11
#: the mismatch draw and the loss go through products and a Cholesky factor: round-off only
BUILT_RTOL = 1e-12

_finite = {"allow_nan": False, "allow_infinity": False}
_node = st.from_regex(r"[a-m][a-z0-9]{0,5}", fullmatch=True).filter(lambda s: s != "gnd")
_title = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,15}", fullmatch=True)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)


@st.composite
def spice_netlists(draw) -> LCNetworkSpec:
    """Random lc_network specs whose every feature SPICE can carry."""
    nodes = draw(st.lists(_node, min_size=1, max_size=5, unique_by=str.lower))
    terminal = st.sampled_from([*nodes, "gnd"])
    elements = []
    for i, nd in enumerate(nodes):
        a, b = (nd, "gnd") if draw(st.booleans()) else ("gnd", nd)
        C = draw(st.floats(1e-13, 1e-11, **_finite))
        elements.append({"type": "capacitor", "name": f"C{i}", "a": a, "b": b, "C": C})
    extra = draw(
        st.lists(
            st.tuples(st.sampled_from(["capacitor", "inductor", "josephson"]), terminal, terminal),
            max_size=6,
        )
    )
    for j, (kind, a, b) in enumerate(extra):
        if a == b or (a == "gnd" and b == "gnd"):
            continue
        el = {"type": kind, "a": a, "b": b}
        if kind == "capacitor":
            el.update(name=f"Cx{j}", C=draw(st.floats(1e-13, 1e-11, **_finite)))
        elif kind == "inductor":
            el.update(name=f"L{j}", L=draw(st.floats(1e-12, 1e-6, **_finite)))
        else:
            el.update(name=f"J{j}", E_J=draw(st.floats(0.0, 1e-21, **_finite)))
            if draw(st.booleans()):
                el["phi0"] = draw(st.floats(1e-16, 1e-14, **_finite))
        elements.append(el)
    n_in = draw(st.integers(1, 3))
    sources = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "node": st.sampled_from(nodes),
                    "input": st.integers(0, n_in - 1),
                    "gain": st.floats(-1.0, 1.0, **_finite),
                }
            ),
            max_size=3,
        )
    )
    n = len(nodes)
    nonzero = st.floats(1e-3, 1.0, **_finite) | st.floats(-1.0, -1e-3, **_finite)
    data = {
        "kind": "lc_network",
        "name": draw(_title),
        "description": draw(_text),
        "dt": draw(st.floats(1e-13, 1e-6, **_finite)),
        "nodes": nodes,
        "elements": elements,
        "sources": sources,
        "n_inputs": draw(st.sampled_from([None, n_in])) if sources else n_in,
        "readout": draw(st.none() | st.lists(st.sampled_from(nodes), min_size=1)),
        "q0": draw(st.none() | st.lists(nonzero.map(lambda x: 1e-15 * x), min_size=n, max_size=n)),
        "p0": draw(st.none() | st.lists(nonzero.map(lambda x: 1e-13 * x), min_size=n, max_size=n)),
        "learnable": draw(
            st.lists(
                st.sampled_from(
                    ["capacitance", "inverse_inductance", "josephson_energy", "input_weight"]
                ),
                unique=True,
            )
        ),
    }
    if draw(st.booleans()):
        data["task"] = {
            "kind": "sinusoid",
            "amplitude": draw(st.floats(-1e-12, 1e-12, **_finite)),
            "frequency": draw(st.floats(1e6, 1e10, **_finite)),
            "duration": draw(st.floats(1e-10, 1e-6, **_finite)),
        }
    # a step inside the leapfrog's stability limit (devices beyond it are refused at build):
    # the fastest mode from a build at a vanishing step, then a fraction of 2/ω_max
    probe = parse_spec({**data, "dt": 1e-30}).build()
    _, w_max = stability_ratio(probe, probe.physical(probe.theta0))
    if w_max > 0:
        data["dt"] = draw(st.floats(1e-3, 0.85, **_finite)) * STABILITY_LIMIT / w_max
    return parse_spec(data)


def _same_spec(a: LCNetworkSpec, b: LCNetworkSpec) -> None:
    da, db = a.model_dump(), b.model_dump()
    for key in ("q0", "p0"):
        x, y = da.pop(key), db.pop(key)
        assert (x is None) == (y is None), key
        if x is not None:
            np.testing.assert_allclose(y, x, rtol=0, atol=IC_RTOL * max(map(abs, x)))
    assert db == da


def _inputs(spec: LCNetworkSpec, n_steps: int = 3) -> np.ndarray:
    n_in = spec.build().n_inputs
    return np.linspace(-1.0, 1.0, n_steps * n_in).reshape(n_steps, n_in)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spice_netlists(), st.sampled_from([1e-16, 1e-15, 1.0]))
def test_export_then_import_gives_the_same_spec(spec, sigma):
    net = write_netlist(spec, _inputs(spec), flux_scale=sigma)
    back = import_netlist(net.text, "(hypothesis)")
    _same_spec(spec, back.spec)
    assert back.nonideal is None
    # and the TOML the importer writes loads back to the same spec
    import tomllib

    again = parse_spec(tomllib.loads(to_toml(back.spec.model_dump())))
    assert again == back.spec


@pytest.mark.parametrize("name", ["lc-ladder-8", "josephson-4"])
def test_catalogue_devices_round_trip_through_the_full_export(name, tmp_path):
    spec = load_spec(name)
    net, _ = export_device(spec)
    _same_spec(spec, import_netlist(net.text).spec)
    # the CLI writes a TOML that load_spec reads back as the same device
    (tmp_path / "x.toml").write_text(to_toml(import_netlist(net.text).spec.model_dump()))
    _same_spec(spec, load_spec(tmp_path / "x.toml"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1f", 1e-15),
        ("1F", 1e-15),  # SPICE: F is femto, not farad
        ("2.5p", 2.5e-12),
        ("3n", 3e-9),
        ("4u", 4e-6),
        ("10uH", 1e-5),
        ("5m", 5e-3),
        ("5MEG", 5e6),
        ("2k", 2e3),
        ("1g", 1e9),
        ("1.5e-9", 1.5e-9),
        ("-2e3", -2e3),
        ("{2*cc}", 2e-12),
        ("{sqrt(4)*1n}", 2e-9),
        ("cc", 1e-12),
    ],
)
def test_values_read_si_suffixes_params_and_expressions(text, expected):
    assert value(text, {"cc": 1e-12}) == pytest.approx(expected, rel=1e-15)


def test_a_hand_written_netlist_with_params_resistors_and_sources():
    text = """rc tank
* a parallel LC tank with a loss resistor, driven by a sine current
.param cval=2n lval={4*250n}
C1 top 0 {cval}
L1 top 0 lval
R1 top gnd 1k      ; 1 kOhm shunt
I1 0 top SIN(0 2m 1meg)
I2 top 0 DC 1m
.tran 1n 1u
.end
"""
    imp = import_netlist(text)
    s = imp.spec
    assert s.name == "rc tank" and s.dt == 1e-9 and s.nodes == ["top"]
    assert [e.type for e in s.elements] == ["capacitor", "inductor"]
    assert s.elements[0].C == pytest.approx(2e-9) and s.elements[1].L == pytest.approx(1e-6)
    # I1 pushes current into top, I2 pulls it out: gains +2 mA and -1 mA on their own inputs
    assert [(x.node, x.input, x.gain) for x in s.sources] == [("top", 0, 2e-3), ("top", 1, -1e-3)]
    diss = imp.nonideal.get("dissipation")
    assert diss.damping_rate == [pytest.approx(1.0 / (1e3 * 2e-9))]  # γ = 1/(R C)
    assert diss.temperature == 0.0


def test_an_as_built_instance_exports_the_instruments_own_mismatch_and_loss():
    spec = load_spec("lc-ladder-8")
    ni = parse_nonideal(
        {
            "name": "chip",
            "sources": [
                {"kind": "mismatch", "relative_dtod": 0.05, "input_dtod": 0.05, "seed": 4},
                {"kind": "dissipation", "damping_rate": 3e5, "temperature": 300.0, "seed": 2},
            ],
        }
    )
    net, _ = export_device(spec, nonideal=ni, replicate=3)
    imp = import_netlist(net.text)
    # the imported nominal device built plainly equals the instrument's as-built instance
    inst = Instrument(spec.build(), replicate_nonideal(ni, 3))
    inst.program(None)
    dev = imp.spec.build()
    np.testing.assert_allclose(dev.w_base, inst.phys.w, rtol=BUILT_RTOL)
    np.testing.assert_allclose(dev.B_base, inst.phys.B, rtol=BUILT_RTOL)
    assert not np.allclose(dev.w_base, spec.build().w_base, rtol=1e-3)  # really mismatched
    diss = imp.nonideal.get("dissipation")
    np.testing.assert_allclose(diss.damping_rate, 3e5, rtol=BUILT_RTOL)
    assert diss.temperature == pytest.approx(300.0, rel=1e-9)
    assert diss.seed == replicate_nonideal(ni, 3).get("dissipation").seed
    assert "trnoise(" in net.text and "setseed" in net.text


def test_replicates_are_different_chips_and_reproducible():
    spec = load_spec("lc-ladder-8")
    ni = parse_nonideal({"sources": [{"kind": "mismatch", "relative_dtod": 0.02, "seed": 1}]})
    texts = [export_device(spec, nonideal=ni, replicate=r)[0].text for r in (0, 1, 0)]
    assert texts[0] == texts[2] and texts[0] != texts[1]


def test_instrument_record_is_the_trajectory_of_run_and_simulate():
    """The probe physim's side of spice-check uses: the same states as the readout of
    Instrument.run and as physim.simulate (ideal instrument, same kernel)."""
    from physim.simulate import simulate

    device = load_spec("josephson-4").build()
    u = np.linspace(-1.0, 1.0, 40 * 2).reshape(40, 1, 2)
    inst = Instrument(device)
    inst.program(None)
    inst.prepare("device", 1)
    q, p = inst.record(u)
    inst.prepare("device", 1)
    out = inst.run(u, sample_every=1, readout=device.readout)
    np.testing.assert_array_equal(out.samples[:, 0], q @ device.readout.T)
    traj = simulate(device, None, u, record=True)
    np.testing.assert_allclose(q, traj.q[1:], rtol=0, atol=1e-15 * np.max(np.abs(traj.q)))
    np.testing.assert_allclose(p, traj.p[1:], rtol=0, atol=1e-15 * np.max(np.abs(traj.p)))
