"""Study specs: expansion, per-point validation errors, seeding (no worker processes here)."""

import copy

import numpy as np
import pytest

from physim.cli import main
from physim.instrument.hardware import Instrument
from physim.instrument.specs import NonidealSpec, nonideal_from_json, parse_nonideal, reseed
from physim.specs import spec_from_json
from physim.study import StudyError, count_points, expand, load_study, parse_study, study_catalogue
from physim.study.store import StudyStore

BASE = {
    "name": "t",
    "replicates": 2,
    "base": {
        "device": "lc-ladder-8",
        "protocol": "rhel-centred-rerun",
        "nonideal": {
            "sources": [
                {"kind": "dissipation", "quality_factor": 100.0, "temperature": 1e9},
                {"kind": "mismatch", "relative_dtod": 0.02},
            ]
        },
        "set": {"protocol.task.n_steps": 40},
    },
    "axes": [{"path": "nonideal.dissipation.quality_factor", "name": "Q", "values": [30.0, 300.0]}],
}


def study(**changes):
    d = copy.deepcopy(BASE)
    for k, v in changes.items():
        d[k] = v
    return parse_study(d)


def test_grid_expansion_order_and_count():
    s = study(axes=BASE["axes"] + [{"path": "protocol.eps", "logspace": [1e-4, 1e-2, 3]}])
    plan = expand(s)
    assert plan.n_points == count_points(s) == 2 * 3 * 2
    assert plan.coords(0) == {"Q": 30.0, "eps": 1e-4, "replicate": 0}
    assert plan.coords(3) == {"Q": 30.0, "eps": 1e-3, "replicate": 1}
    assert plan.axes[1].values == np.logspace(-4, -2, 3).tolist()
    assert plan.axes[1].log_scale
    assert plan.axes[0].units == "1" and plan.axes[1].units == "1"
    t = plan.task(3)
    assert '"eps":0.001' in t.protocol and '"n_steps":40' in t.protocol


def test_units_come_from_the_field_description():
    plan = expand(study(axes=[{"path": "nonideal.dissipation.temperature", "values": [4.0]}]))
    assert plan.axes[0].units == "K"
    assert plan.axes[0].long_name == "bath temperature T"


def test_zip_and_latin_hypercube():
    z = expand(
        study(
            combine="zip",
            axes=[
                {"path": "protocol.eps", "values": [1e-3, 1e-2]},
                {"path": "nonideal.dissipation.quality_factor", "values": [10.0, 20.0]},
            ],
        )
    )
    assert z.combos == ((1e-3, 10.0), (1e-2, 20.0))
    lhs = expand(
        study(
            combine="latin-hypercube",
            n_samples=8,
            axes=[
                {"path": "protocol.eps", "loguniform": [1e-4, 1e-2]},
                {"path": "task.n_steps", "name": "L", "uniform": [20, 60]},
            ],
        )
    )
    eps = np.array([c[0] for c in lhs.combos])
    # one sample in each of the 8 equal strata of log(eps): the defining property of LHS
    strata = np.floor((np.log(eps) - np.log(1e-4)) / (np.log(1e-2) - np.log(1e-4)) * 8)
    assert sorted(strata.tolist()) == list(range(8))
    assert all(isinstance(c[1], int) for c in lhs.combos)


def test_unknown_path_lists_the_valid_fields():
    with pytest.raises(
        StudyError,
        match=r"has no field 'qualty_factor'; valid fields: quality_factor, damping_rate",
    ):
        expand(study(axes=[{"path": "nonideal.dissipation.qualty_factor", "values": [1.0]}]))
    with pytest.raises(StudyError, match=r"valid kinds: adc, amplifier, dac, dissipation"):
        expand(study(axes=[{"path": "nonideal.noise.bits", "values": [1]}]))
    with pytest.raises(
        StudyError, match=r"protocol has no field 'epsilon'; valid fields: name, .*eps"
    ):
        expand(study(axes=[{"path": "protocol.epsilon", "values": [1.0]}]))
    with pytest.raises(StudyError, match=r"must start with one of device, protocol, nonideal"):
        expand(study(axes=[{"path": "chip.dt", "values": [1.0]}]))
    # the gradient measure has no options: say so and name the measures that have the field
    # (this listed "valid fields:" followed by nothing)
    with pytest.raises(
        StudyError,
        match=r"valid fields: none \(it takes no options\); epochs is an option of the "
        r"offline_vs_insitu and train measure: set \[measure\] kind first",
    ):
        expand(study(axes=[{"path": "measure.epochs", "values": [1, 2]}]))


def test_an_axis_over_a_source_the_base_lacks_adds_it_or_says_what_it_needs():
    """The base has no ADC: an axis over its bits adds one with its defaults; without a target
    (the ADC needs one) the study says which paths would do, instead of failing with 'bits'."""
    with pytest.raises(
        StudyError,
        match=r"path 'nonideal.adc.bits': the base has no adc source, and a new one needs "
        r"target; name its target in the path: nonideal.adc.readout.bits or "
        r"nonideal.adc.accumulator.bits",
    ):
        expand(study(axes=[{"path": "nonideal.adc.bits", "values": [8, 12]}]))
    plan = expand(study(axes=[{"path": "nonideal.adc.accumulator.bits", "values": [8, 12]}]))
    added = [nonideal_from_json(plan.task(i).nonideal).get("adc", "accumulator") for i in (0, 2)]
    assert [a.bits for a in added] == [8, 12]
    assert plan.axes[0].values == [8, 12]


def test_wrong_type_names_the_point_path_and_value():
    with pytest.raises(
        StudyError,
        match=r"point 1 of 2 \(Q = 'high'\): nonideal.dissipation.quality_factor = 'high' is "
        r"rejected by the nonideal spec",
    ):
        expand(
            study(
                axes=[
                    {
                        "path": "nonideal.dissipation.quality_factor",
                        "name": "Q",
                        "values": [10.0, "high"],
                    }
                ]
            )
        )
    with pytest.raises(StudyError, match=r"replicates: Input should be a valid integer.*'three'"):
        study(replicates="three")


def test_out_of_range_value_at_one_point():
    axes = [{"path": "nonideal.adc.bits", "values": [8, 60]}]
    ni = {"sources": [{"kind": "adc", "target": "accumulator", "bits": 12}]}
    s = study(axes=axes, base={**BASE["base"], "nonideal": ni})
    with pytest.raises(
        StudyError,
        match=r"point 1 of 2 \(bits = 60\): nonideal.adc.bits = 60 .*less than or equal to 48",
    ):
        expand(s)


def test_empty_axis_and_oversized_grid_are_refused():
    with pytest.raises(StudyError, match=r"axis 'protocol.eps' has no values; give at least one"):
        expand(study(axes=[{"path": "protocol.eps", "values": []}]))
    big = [
        {"path": "protocol.eps", "logspace": [1e-6, 1e-1, 1000]},
        {"path": "nonideal.dissipation.quality_factor", "logspace": [10.0, 1e5, 5000]},
    ]
    with pytest.raises(StudyError, match=r"has 10,000,000 points .*over max_points = 100,000"):
        expand(study(axes=big, replicates=2))


def test_changed_study_in_the_same_folder_names_restart(tmp_path):
    StudyStore(tmp_path, expand(study()))
    with pytest.raises(StudyError, match=r"holds a different study .*--restart"):
        StudyStore(tmp_path, expand(study(replicates=3)))
    StudyStore(tmp_path, expand(study(replicates=3)), restart=True)


def _chip(plan, i):
    t = plan.task(i)
    dev = spec_from_json(t.device).build()
    return Instrument(dev, nonideal_from_json(t.nonideal), seed=t.seed)


def test_same_replicate_is_the_same_chip_and_replicates_differ():
    plan = expand(study(axes=[{"path": "nonideal.mismatch.relative_dtod", "values": [0.01, 0.02]}]))
    a0, a1 = _chip(plan, 0), _chip(plan, 1)  # sigma = 0.01, replicates 0 and 1
    b0 = _chip(plan, 2)  # sigma = 0.02, replicate 0
    # the same chip: the fabrication draw xi is equal, so the spread doubles exactly with sigma
    np.testing.assert_allclose(b0.w_factor - 1, 2 * (a0.w_factor - 1), rtol=1e-12)
    assert not np.allclose(a0.w_factor, a1.w_factor)
    assert plan.task(0).seed == plan.task(2).seed != plan.task(1).seed


def test_reseed_gives_every_source_its_own_stream():
    ni = parse_nonideal(
        {
            "sources": [
                {"kind": "dissipation", "quality_factor": 10.0},
                {"kind": "adc", "target": "accumulator", "bits": 12},
            ]
        }
    )
    a, sa = reseed(ni, np.random.SeedSequence(0))
    b, sb = reseed(ni, np.random.SeedSequence(1))
    seeds_a = [s.seed for s in a.sources]
    assert len(set(seeds_a + [sa])) == 3
    assert seeds_a != [s.seed for s in b.sources] and sa != sb
    # adding a source leaves the other sources' streams alone
    more = NonidealSpec(
        sources=[*ni.sources, parse_nonideal({"sources": [{"kind": "mismatch"}]}).sources[0]]
    )
    c, sc = reseed(more, np.random.SeedSequence(0))
    assert [s.seed for s in c.sources[:2]] == seeds_a and sc == sa


def test_physim_run_noise_seed_redraws_the_noise(tmp_path, capsys):
    ni = tmp_path / "n.toml"
    ni.write_text('[[sources]]\nkind = "mismatch"\nrelative_dtod = 0.05\n')
    out = []
    for s in ("0", "1", "0"):
        main(
            [
                "run",
                "lc-ladder-8",
                "rhel-centred",
                "--nonideal",
                str(ni),
                "--steps",
                "30",
                "--noise-seed",
                s,
                "--json",
            ]
        )
        out.append(capsys.readouterr().out)
    assert out[0] != out[1] and out[0] == out[2]


def test_catalogue_studies_expand_within_budget():
    names = set(study_catalogue())
    assert {"lc-ladder-noise-budget", "chain-16-mismatch", "eps-vs-adc", "josephson-cryo"} <= names
    for name in names:
        plan = expand(load_study(name))
        assert 0 < plan.n_points <= 500
    t = expand(load_study("lc-ladder-noise-budget")).axes
    temps = next(a for a in t if a.dim == "temperature").values
    assert min(temps) >= 4.0 and max(temps) <= 400.0


def test_studies_lists_the_catalogue_name_first(capsys):
    assert main(["studies"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(ln.split()[0] for ln in lines) == sorted(study_catalogue())
