"""Device specs: clear errors for bad input, exact JSON round trips, random valid specs build."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import physim
from physim.specs import SpecError, load_device, load_spec, parse_spec, spec_from_json
from physim.stability import UnstableStepError

CATALOGUE = sorted(physim.catalogue())


def _spec_dict(name: str) -> dict:
    return load_spec(name).model_dump(mode="json")


# ---------------------------------------------------------------------------- user errors
def test_unknown_device_kind_names_the_kind_and_the_valid_ones():
    with pytest.raises(SpecError, match=r"'quantum_blob'.*valid kinds: .*oscillator_network"):
        parse_spec({"kind": "quantum_blob", "name": "x"})


def test_missing_kind_says_how_to_fix():
    data = _spec_dict("two-mass")
    del data["kind"]
    with pytest.raises(SpecError, match=r"missing 'kind'; add kind = one of"):
        parse_spec(data)


def test_unknown_catalogue_name():
    with pytest.raises(KeyError, match=r"unknown device 'no-such-device'.*chain-16"):
        load_spec("no-such-device")


def test_device_from_a_toml_path(tmp_path):
    path = tmp_path / "my-ladder.toml"
    path.write_text(physim.catalogue()["lc-ladder-8"].read_text())
    mine, shipped = load_device(path), load_device("lc-ladder-8")
    np.testing.assert_array_equal(mine.theta0, shipped.theta0)
    with pytest.raises(FileNotFoundError, match=r"no device file .*missing\.toml"):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("kind = 'lc_network\n")
    with pytest.raises(SpecError, match=r"bad\.toml: not valid TOML"):
        load_spec(bad)


def test_unknown_field_is_rejected():
    data = _spec_dict("two-mass")
    data["stiffness"] = 3.0
    with pytest.raises(SpecError, match=r"stiffness.*Extra inputs are not permitted"):
        parse_spec(data)


def test_negative_mass_names_field_and_value():
    data = _spec_dict("two-mass")
    data["masses"][1] = -1.25
    with pytest.raises(
        SpecError, match=r"masses\.1: Input should be greater than 0 \(got -1\.25\)"
    ):
        parse_spec(data)


def test_negative_learned_mass_is_caught_at_run_time():
    data = _spec_dict("two-mass")
    data["learnable"] = ["mass", "spring"]
    device = parse_spec(data).build()
    theta = device.theta0.copy()
    theta[device.slices()["mass"]][0] = -0.5
    with pytest.raises(ValueError, match=r"mass 'mass\[0\]' must be positive, got .*-0\.5"):
        physim.simulate(device, theta, None, n_steps=3)


@pytest.mark.parametrize("value", [0.0, -1e-9])
def test_non_positive_capacitance_names_field_and_value(value):
    data = _spec_dict("lc-ladder-8")
    data["elements"][2]["C"] = value
    with pytest.raises(
        SpecError,
        match=rf"elements\.2\.capacitor\.C: Input should be greater than 0 \(got {value}\)",
    ):
        parse_spec(data)


def test_netlist_element_on_undefined_node():
    data = _spec_dict("lc-ladder-8")
    data["elements"][9]["b"] = "n9"
    with pytest.raises(SpecError, match=r"elements\[9\] \(L1\)\.b: node 'n9' is not defined"):
        parse_spec(data)


def test_source_on_undefined_node():
    data = _spec_dict("lc-ladder-8")
    data["sources"][0]["node"] = "nx"
    with pytest.raises(SpecError, match=r"sources\[0\]\.node: node 'nx' is not defined"):
        parse_spec(data)


def test_coupling_on_missing_mass():
    data = _spec_dict("two-mass")
    data["couplings"][0]["nodes"] = [0, 2]
    with pytest.raises(SpecError, match=r"couplings\[0\]\.nodes = 2 is not a mass index \(0 … 1\)"):
        parse_spec(data)


@pytest.mark.parametrize("name", ["lc-ladder-8", "two-mass"])
def test_empty_readout_is_rejected(name):
    data = _spec_dict(name)
    data["readout"] = []
    with pytest.raises(SpecError, match=r"readout: .*at least 1 item"):
        parse_spec(data)


def test_quartic_term_joining_a_mass_to_itself_is_rejected():
    data = _spec_dict("duffing-chain-5")
    data["quartic"][0]["nodes"] = [2, 2]
    with pytest.raises(SpecError, match=r"quartic\[0\] joins mass 2 to itself"):
        parse_spec(data)


def test_lc_island_without_capacitance_to_ground():
    data = {
        "kind": "lc_network",
        "name": "floating",
        "dt": 1e-9,
        "nodes": ["a", "b"],
        "elements": [
            {"type": "capacitor", "name": "C1", "a": "a", "b": "b", "C": 1e-9},
            {"type": "inductor", "name": "L1", "a": "a", "L": 1e-6},
        ],
    }
    with pytest.raises(ValueError, match=r"capacitance matrix is singular"):
        parse_spec(data).build()


def test_input_shape_mismatch():
    device = load_device("chain-16")
    with pytest.raises(
        ValueError, match=r"must have shape \(n_steps, batch, 1\), got \(10, 2, 3\)"
    ):
        physim.simulate(device, None, np.zeros((10, 2, 3)))
    with pytest.raises(ValueError, match=r"has 1 inputs: pass u with shape"):
        physim.simulate(device, None, None, n_steps=10)


def test_target_shape_mismatch():
    device = load_device("chain-16")
    u = np.zeros((10, 2, 1))
    with pytest.raises(
        ValueError, match=r"MSE target must have shape \(10, 2, 2\).*got \(10, 2, 3\)"
    ):
        physim.rhel_gradient(device, None, u, np.zeros((10, 2, 3)))
    with pytest.raises(ValueError, match=r"MSE target must have shape \(10, 2, 2\).*got \(10, 2\)"):
        physim.bptt_gradient(device, None, u, np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"final-time target must have shape \(2, 2\)"):
        physim.rhel_gradient(device, None, u, np.zeros((10, 2, 2)), loss=physim.FinalLoss())


def test_theta_shape_mismatch():
    device = load_device("chain-16")
    u = np.zeros((10, 1, 1))
    with pytest.raises(
        ValueError, match=r"theta for device 'chain-16' must have shape \(33,\), got \(5,\)"
    ):
        physim.simulate(device, np.zeros(5), u)
    with pytest.raises(ValueError, match=r"must have shape \(33,\)"):
        physim.rhel_gradient(device, np.zeros(34), u, np.zeros((10, 1, 2)))


# ---------------------------------------------------------------------------- round trips
def _assert_round_trip(spec) -> None:
    again = spec_from_json(spec.model_dump_json())
    assert again == spec
    d1, d2 = spec.build(), again.build()
    np.testing.assert_array_equal(d1.theta0, d2.theta0)
    np.testing.assert_array_equal(d1.w_base, d2.w_base)
    np.testing.assert_array_equal(d1.B_base, d2.B_base)
    assert [g.name for g in d1.groups] == [g.name for g in d2.groups]


@pytest.mark.parametrize("name", CATALOGUE)
def test_catalogue_spec_json_round_trip_is_exact(name):
    spec = load_spec(name)
    _assert_round_trip(spec)
    assert spec.name == name  # catalogue entries are named after their file


_finite = {"allow_nan": False, "allow_infinity": False}
_positive = st.floats(min_value=1e-3, max_value=1e3, **_finite)
_value = st.floats(min_value=-1e3, max_value=1e3, **_finite)
_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


@st.composite
def oscillator_specs(draw) -> dict:
    n = draw(st.integers(1, 6))
    node = st.integers(0, n - 1)
    data: dict = {
        "kind": "oscillator_network",
        "name": draw(_names),
        "description": draw(st.text(max_size=30)),
        "dt": draw(st.floats(1e-4, 1.0, **_finite)),
        "masses": draw(st.lists(_positive, min_size=n, max_size=n)),
        "springs": draw(
            st.lists(st.fixed_dictionaries({"node": node, "k": _positive}), max_size=n)
        ),
    }
    if n >= 2:
        pairs = st.lists(node, min_size=2, max_size=2, unique=True)
        data["couplings"] = draw(
            st.lists(st.fixed_dictionaries({"nodes": pairs, "k": _positive}), max_size=2 * n)
        )
        quart_nodes = st.one_of(st.lists(node, min_size=1, max_size=1), pairs)
    else:
        quart_nodes = st.lists(node, min_size=1, max_size=1)
    data["quartic"] = draw(
        st.lists(st.fixed_dictionaries({"nodes": quart_nodes, "beta": _value}), max_size=n)
    )
    n_in = draw(st.integers(0, 3))
    data["n_inputs"] = n_in
    if n_in:
        data["input_weights"] = draw(
            st.one_of(
                st.none(),
                st.lists(st.lists(_value, min_size=n_in, max_size=n_in), min_size=n, max_size=n),
                st.fixed_dictionaries(
                    {
                        "kind": st.just("random"),
                        "distribution": st.sampled_from(["normal", "uniform"]),
                        "scale": _positive,
                        "seed": st.integers(0, 2**31),
                    }
                ),
            )
        )
    data["readout"] = draw(
        st.one_of(
            st.none(),
            st.lists(node, min_size=1, max_size=n),
            st.lists(st.lists(_value, min_size=n, max_size=n), min_size=1, max_size=3),
        )
    )
    for key in ("q0", "p0"):
        data[key] = draw(st.one_of(st.none(), st.lists(_value, min_size=n, max_size=n)))
    data["learnable"] = draw(
        st.lists(
            st.sampled_from(["mass", "spring", "coupling", "quartic", "input_weight"]), unique=True
        )
    )
    return data


_node_names = st.text("abcdefxyz_", min_size=1, max_size=4).filter(
    lambda s: s not in ("gnd", "0", "ground")
)


@st.composite
def lc_specs(draw) -> dict:
    nodes = draw(st.lists(_node_names, min_size=1, max_size=5, unique=True))
    terminal = st.sampled_from([*nodes, "gnd"])
    elements = []
    # every node gets a capacitor to ground (listed either way round) so C is invertible
    for i, nd in enumerate(nodes):
        a, b = (nd, "gnd") if draw(st.booleans()) else ("gnd", nd)
        C = draw(st.floats(1e-12, 1e-6, **_finite))
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
        el = {"type": kind, "name": f"X{j}", "a": a, "b": b}
        if kind == "capacitor":
            el["C"] = draw(st.floats(1e-12, 1e-6, **_finite))
        elif kind == "inductor":
            el["L"] = draw(st.floats(1e-9, 1e-3, **_finite))
        else:
            el["E_J"] = draw(st.floats(0.0, 1e-21, **_finite))
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
    data = {
        "kind": "lc_network",
        "name": draw(_names),
        "dt": draw(st.floats(1e-12, 1e-6, **_finite)),
        "nodes": nodes,
        "elements": elements,
        "sources": sources,
        "n_inputs": draw(st.sampled_from([None, n_in])) if sources else n_in,
        "readout": draw(st.one_of(st.none(), st.lists(st.sampled_from(nodes), min_size=1))),
        "learnable": draw(
            st.lists(
                st.sampled_from(
                    ["capacitance", "inverse_inductance", "josephson_energy", "input_weight"]
                ),
                unique=True,
            )
        ),
    }
    return data


_HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _build_unless_unstable(spec):
    """The device, or None when its step is beyond the leapfrog limit (refused by name)."""
    try:
        return spec.build()
    except UnstableStepError as err:
        assert "dt·ω_max must be < 2" in str(err) and "use dt <" in str(err)
        return None


@_HYPOTHESIS
@given(oscillator_specs())
def test_random_oscillator_specs_round_trip_and_build(data):
    spec = parse_spec(data)
    device = _build_unless_unstable(spec)
    if device is None:
        return
    _assert_round_trip(spec)
    assert device.n_dof == len(data["masses"])
    assert device.n_inputs == data["n_inputs"]
    assert device.theta0.shape == (sum(g.size for g in device.groups),)


@_HYPOTHESIS
@given(lc_specs())
def test_random_lc_netlists_round_trip_and_build(data):
    spec = parse_spec(data)
    device = _build_unless_unstable(spec)
    if device is None:
        return
    _assert_round_trip(spec)
    assert device.n_dof == len(data["nodes"])
    n_out = len(data["readout"]) if data["readout"] is not None else len(data["nodes"])
    assert device.n_outputs == n_out
