"""One validation policy for every spec: no NaN or inf unless the field says what inf means."""

from __future__ import annotations

import math

import pytest

import physim.data.specs
import physim.hssm.config
import physim.instrument.specs
import physim.protocol.specs
import physim.specs  # noqa: F401  (imports every device family)
from physim.instrument.specs import NonidealError, parse_nonideal
from physim.spec_base import SpecModel
from physim.specs import SpecError, load_spec, parse_spec


def _all_spec_models() -> list[type]:
    out, todo = [], [SpecModel]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo += cls.__subclasses__()
    return out


def test_every_spec_model_refuses_non_finite_floats_by_default():
    models = _all_spec_models()
    assert len(models) > 20  # devices, elements, sources, protocol steps, training
    for cls in models:
        assert cls.model_config.get("allow_inf_nan") is False, cls.__name__


def test_fields_that_allow_inf_say_what_it_means():
    seen = 0
    for cls in _all_spec_models():
        for name, f in cls.model_fields.items():
            if "allow_inf_nan=True" in repr(f.annotation) or "AllowInfNan" in repr(f.annotation):
                seen += 1
                assert f.description and "inf" in f.description, f"{cls.__name__}.{name}"
    assert seen >= 1  # quality_factor


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_is_reported_by_its_field(bad):
    data = load_spec("two-mass").model_dump(mode="python")
    data["masses"][1] = bad
    with pytest.raises(SpecError, match=r"masses\.1: Input should be a finite number"):
        parse_spec(data)
    data = load_spec("two-mass").model_dump(mode="python")
    data["q0"][0] = bad
    with pytest.raises(SpecError, match=r"q0\.0: Input should be a finite number"):
        parse_spec(data)


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ({"kind": "adc", "target": "readout", "bits": 12, "full_scale": math.inf}, "full_scale"),
        ({"kind": "dissipation", "quality_factor": 10.0, "temperature": math.nan}, "temperature"),
        ({"kind": "drift", "relative_std": math.inf}, "relative_std"),
        ({"kind": "flip_error", "timing_error": math.nan}, "timing_error"),
        ({"kind": "dissipation", "quality_factor": 1e-300}, "quality_factor must be >= 0.001"),
        ({"kind": "mismatch", "seed": -1}, "seed"),
    ],
)
def test_absurd_non_ideality_values_are_refused(source, field):
    with pytest.raises(NonidealError, match=field):
        parse_nonideal({"name": "x", "sources": [source]})


def test_q_inf_is_lossless_and_round_trips():
    spec = parse_nonideal(
        {"name": "x", "sources": [{"kind": "dissipation", "quality_factor": math.inf}]}
    )
    again = physim.instrument.specs.nonideal_from_json(spec.model_dump_json())
    assert again == spec


def test_training_values_are_bounded():
    from physim.hssm.config import ConfigError, parse_train_spec

    for bad, field in (
        ({"lr": math.inf}, "lr"),
        ({"adam_eps": math.nan}, "adam_eps"),
        ({"betas": [0.9, 1.5]}, "betas"),
        ({"seed": -2}, "seed"),
        ({"model": {"eps": 5e-324}}, "eps must be >="),
    ):
        with pytest.raises(ConfigError, match=field):
            parse_train_spec(bad)


def test_hru_init_ranges_refuse_nan_and_disorder():
    with pytest.raises(SpecError, match=r"a_range\.1: Input should be a finite number"):
        parse_spec(
            {"kind": "linhru", "name": "x", "n_modes": 2, "n_inputs": 1, "a_range": [0, math.nan]}
        )
    with pytest.raises(SpecError, match=r"dt_raw_range = \(low, high\) needs low <= high"):
        parse_spec(
            {"kind": "linhru", "name": "x", "n_modes": 2, "n_inputs": 1, "dt_raw_range": [1, 0]}
        )


def test_complex_and_non_integer_inputs_are_refused():
    import numpy as np

    dev = physim.load_device("chain-16")
    u = np.zeros((5, 1, dev.n_inputs), dtype=complex)
    with pytest.raises(ValueError, match=r"must be real, got a complex array"):
        physim.simulate(dev, None, u)
    with pytest.raises(ValueError, match=r"must be real"):
        physim.simulate(dev, dev.theta0 + 0j, np.zeros((5, 1, dev.n_inputs)))
    two = physim.load_device("two-mass")
    with pytest.raises(ValueError, match=r"integer n_steps >= 1, got 2\.5"):
        physim.simulate(two, None, n_steps=2.5)
    theta = dev.theta0.copy()
    theta[dev.slices()["coupling"].start + 2] = np.nan
    with pytest.raises(ValueError, match=r"coupling\[2\] \(theta\[\d+\]\) = nan must be finite"):
        physim.simulate(dev, theta, np.zeros((5, 1, dev.n_inputs)))


def test_rhel_echo_checks_the_trajectory_against_its_inputs():
    import numpy as np

    from physim.rhel import rhel_echo

    dev = physim.load_device("chain-16")
    u = np.zeros((5, 2, dev.n_inputs))
    fwd = physim.simulate(dev, None, u[:, :1])
    with pytest.raises(ValueError, match=r"final state has shape \(1, 16\).*need \(2, 16\)"):
        rhel_echo(dev, None, u, fwd, np.ones((5, 2, dev.n_outputs)))


def test_element_without_type_names_type():
    data = load_spec("lc-ladder-8").model_dump(mode="python")
    del data["elements"][0]["type"]
    with pytest.raises(SpecError, match=r"elements\.0: missing 'type'"):
        parse_spec(data)


def test_given_state_shape_is_checked():
    import numpy as np

    from physim.instrument.hardware import Instrument

    inst = Instrument(physim.load_device("chain-16"))
    with pytest.raises(ValueError, match=r"q must have 16 entries.*got shape \(3,\)"):
        inst.prepare("given", 1, q=np.zeros(3), p=np.zeros(16))
