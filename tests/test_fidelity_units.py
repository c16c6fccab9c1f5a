"""One device written in two unit systems gives the same verdicts (physim.fidelity).

The second device is the first with its mass, length and time units changed (a = 2⁻³⁰ ≈ 1e-9,
b = 2⁻²⁰ ≈ 1e-6, c = 2⁻²⁰: kg → ~µg, m → ~µm, s → ~µs): masses × a, springs × a/c², Duffing terms × a/(b²c²),
input weights (forces per input unit) × a·b/c², the step × c, the bath temperature × the energy
unit a·b²/c² and flip jitter × c. Its trajectories are the first's times b, its loss times b²,
and every non-ideality acts alike, so every unit-free answer must agree; the raw SI cosine
does not (the groups' gradients move by 3 to 15 decades against each other), which is why it
is no verdict.

The factors are powers of two for one reason: the converters' auto-range picks a power-of-two
full scale in the device's own unit (a binary gain setting), so with other factors the same
chip's ADC would sit up to 2× differently inside its range — a real, if small, difference of
two instruments rather than of two unit systems. With powers of two every product is exact in
floating point and the two chips are the same to the last bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from physim.answers.budget import eps_curve, gradient_criterion, tolerance
from physim.fidelity import fidelity, step_units
from physim.instrument.specs import parse_nonideal
from physim.protocol.session import run_session
from physim.protocol.specs import load_protocol
from physim.specs import parse_spec

A, B, C = 2.0**-30, 2.0**-20, 2.0**-20  # mass, length, time units of the second system
ENERGY = A * B**2 / C**2


def _device(a: float = 1.0, b: float = 1.0, c: float = 1.0):
    base = parse_spec(
        {
            "kind": "oscillator_network",
            "name": "units-probe",
            "dt": 0.05,
            "masses": [1.0, 1.3, 0.8, 1.1],
            "springs": [{"node": i, "k": k} for i, k in enumerate((0.8, 1.7, 1.0, 2.4))],
            "couplings": [
                {"nodes": [0, 1], "k": 0.5},
                {"nodes": [1, 2], "k": 0.3},
                {"nodes": [2, 3], "k": 0.6},
                {"nodes": [0, 3], "k": 0.2},
            ],
            "quartic": [{"nodes": [1], "beta": 0.08}, {"nodes": [2, 3], "beta": 0.05}],
            "n_inputs": 2,
            "input_weights": {"kind": "random", "scale": 1.0, "seed": 5},
            "readout": [0, 3],
            "learnable": ["mass", "spring", "coupling", "quartic", "input_weight"],
        }
    )
    W = base.build().B_base
    data = base.model_dump()
    data.update(
        dt=base.dt * c,
        masses=[m * a for m in base.masses],
        springs=[{"node": s.node, "k": s.k * a / c**2} for s in base.springs],
        couplings=[{"nodes": list(x.nodes), "k": x.k * a / c**2} for x in base.couplings],
        quartic=[
            {"nodes": list(q.nodes), "beta": q.beta * a / (b**2 * c**2)} for q in base.quartic
        ],
        input_weights=(W * a * b / c**2).tolist(),
    )
    return parse_spec(data).build()


def _nonideal(energy: float = 1.0, c: float = 1.0, **levels):
    # a bath whose k_B T (1e-7 J) is small but not negligible beside the trajectories' energy
    src = {
        "dissipation": {"kind": "dissipation", "quality_factor": 300.0, "temperature": 1e16},
        "mismatch": {"kind": "mismatch", "relative_dtod": 0.01},
        "adc": {"kind": "adc", "target": "readout", "bits": 10},
        "acc": {"kind": "adc", "target": "accumulator", "bits": 14},
        "dac": {"kind": "dac", "target": "parameters", "bits": 12},
        "flip": {"kind": "flip_error", "timing_std": 2e-4},
    }
    for k, v in levels.items():
        src[k] = {**src[k], **v}
    src["dissipation"]["temperature"] *= energy
    src["flip"]["timing_std"] *= c
    return parse_nonideal({"name": "units", "sources": list(src.values())})


def _protocol(eps=1e-3):
    p = load_protocol("rhel-centred-rerun")
    task = p.task.model_copy(update={"n_steps": 120, "batch": 2})
    return p.model_copy(update={"task": task, "eps": eps})


@pytest.fixture(scope="module")
def pair():
    return _device(), _device(A, B, C)


def test_the_second_system_is_the_first_in_other_units(pair):
    d1, d2 = pair
    s1, s2 = step_units(d1), step_units(d2)
    ratio = s2 / s1
    for name, sl in d1.slices().items():
        assert np.allclose(ratio[sl], ratio[sl][0]), name  # one factor per group
    # the groups move against each other by many decades: a raw cosine cannot be invariant
    assert np.ptp(np.log10(ratio)) > 10


def test_one_execution_gives_the_same_unit_free_fidelity_and_a_different_raw_cosine(pair):
    d1, d2 = pair
    p = _protocol()
    r1 = run_session(d1, p, _nonideal(), seed=4)
    r2 = run_session(d2, p, _nonideal(ENERGY, C), seed=4)
    for f1, f2 in ((r1.fidelity, r2.fidelity), (r1.fidelity_as_built, r2.fidelity_as_built)):
        assert f1.cosine == pytest.approx(f2.cosine, rel=1e-9, abs=1e-9)
        assert f1.rel_error == pytest.approx(f2.rel_error, rel=1e-6)
        assert f1.worst_group == f2.worst_group
        for g in f1.groups:
            assert f1.groups[g]["cosine"] == pytest.approx(f2.groups[g]["cosine"], abs=1e-9)
            assert f1.groups[g]["share"] == pytest.approx(f2.groups[g]["share"], rel=1e-6)
    # the measured gradients themselves are the same up to the groups' unit factors
    s1, s2 = step_units(d1), step_units(d2)
    loss_unit = B**2
    assert np.allclose(s2 * r2.estimate / loss_unit, s1 * r1.estimate, rtol=1e-6, atol=0)
    # while the raw SI cosine is not a property of the chip: on the same, bit-identical chip
    # its distance from 1 moves by 15 % between the two systems
    d1_si, d2_si = 1 - r1.fidelity.cosine_si, 1 - r2.fidelity.cosine_si
    assert abs(d1_si / d2_si - 1) > 0.05, (d1_si, d2_si)


def test_the_fidelity_is_invariant_for_any_gradient_pair(pair):
    """Exact algebra on random gradients: θ-scaling cancels the units factor per group."""
    d1, d2 = pair
    rng = np.random.default_rng(0)
    g_ref, g_est = rng.normal(size=(2, d1.n_params))
    g_est = g_ref + 0.3 * g_est
    s1, s2 = step_units(d1), step_units(d2)
    f1 = fidelity(g_est / s1, g_ref / s1, d1)
    f2 = fidelity(g_est / s2 * 7.0, g_ref / s2 * 7.0, d2)  # 7: a change of the loss's unit
    assert f1.cosine == pytest.approx(f2.cosine, abs=1e-12)
    for g, d in f1.groups.items():
        assert d == pytest.approx(f2.groups[g], rel=1e-12)


@pytest.mark.parametrize(
    ("index", "scale_of"),
    [(0, None), (3, None), (5, "time")],
    ids=["quality_factor", "readout_bits", "flip_jitter"],
)
def test_budget_tolerances_agree_across_unit_systems(pair, index, scale_of):
    d1, d2 = pair
    p = _protocol()
    kw = dict(replicates=2, max_replicates=2, seed=1, criterion=gradient_criterion(0.99))
    t1 = tolerance(d1, p, _nonideal(), index, **kw)
    t2 = tolerance(d2, p, _nonideal(ENERGY, C), index, **kw)
    assert t1["level"] is not None, t1["note"]
    factor = C if scale_of == "time" else 1.0
    assert t2["level"] == pytest.approx(t1["level"] * factor, rel=1e-9)
    assert t2["per_replicate"] == pytest.approx([x * factor for x in t1["per_replicate"]])


def test_best_eps_agrees_across_unit_systems(pair):
    d1, d2 = pair
    p = _protocol()
    grid = np.logspace(-6, 0, 7)
    c1 = eps_curve(d1, p, _nonideal(), eps=grid, replicates=2, seed=2)
    c2 = eps_curve(d2, p, _nonideal(ENERGY, C), eps=grid, replicates=2, seed=2)
    assert c2["best_eps"] == pytest.approx(c1["best_eps"], rel=1e-9)
    assert c2["rel_error"] == pytest.approx(c1["rel_error"], rel=1e-6)


def test_auto_eps_agrees_across_unit_systems(pair):
    d1, d2 = pair
    p = _protocol("auto")
    r1 = run_session(d1, p, _nonideal(), seed=3)
    r2 = run_session(d2, p, _nonideal(ENERGY, C), seed=3)
    assert r2.results[-1].eps == pytest.approx(r1.results[-1].eps, rel=1e-9)
