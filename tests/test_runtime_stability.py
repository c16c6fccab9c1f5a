"""ω·dt is checked wherever θ is written, not only at build: a programmed or learned θ that
crosses the leapfrog limit stops before the run, naming the parameter that moved."""

import numpy as np
import pytest

import physim
from physim.instrument.hardware import Instrument
from physim.protocol.engine import run_protocol
from physim.protocol.specs import load_protocol
from physim.spec_base import with_updates
from physim.stability import UnstableStepError, stability_ratio


def _protocol(n_steps: int = 300):
    p = load_protocol("rhel-centred-rerun")
    return with_updates(p, task=with_updates(p.task, n_steps=n_steps))


def test_programmed_theta_beyond_the_limit_is_refused_naming_the_parameter():
    dev = physim.load_device("lc-ladder-8")
    theta = dev.theta0.copy()
    theta[0] *= 1e-4  # C1 10^4 x smaller: its mode 100 x faster, far past ω·dt = 2
    assert stability_ratio(dev, dev.physical(theta))[0] > 2  # the premise
    with pytest.raises(
        UnstableStepError,
        match=r"dt·ω_max = \S+ at the programmed θ, beyond the leapfrog limit 2 .* the "
        r"parameter that moved most is capacitance C1 = 1.02e-13 F \(0.0001x its θ0",
    ):
        run_protocol(Instrument(dev, None), _protocol(), theta=theta)


def test_theta_that_stays_stable_runs_as_before():
    dev = physim.load_device("lc-ladder-8")
    theta = dev.theta0.copy()
    theta[0] *= 0.5
    assert stability_ratio(dev, dev.physical(theta))[0] < 2
    res = run_protocol(Instrument(dev, None), _protocol(60), theta=theta)
    assert all(np.all(np.isfinite(r.value)) for r in res.records)


@pytest.mark.parametrize("c", [1.5, 2.0])
def test_anti_damped_echo_is_flagged(c):
    from physim.instrument.specs import parse_nonideal
    from physim.warnings import PhysimWarning

    dev = physim.load_device("lc-ladder-8")
    ni = parse_nonideal(
        {"sources": [{"kind": "dissipation", "quality_factor": 100.0, "compensation": c}]}
    )
    with pytest.warns(PhysimWarning, match=rf"compensation = {c:g} ran the echo anti-damped"):
        run_protocol(Instrument(dev, ni), _protocol(60), check=True)


def test_lossless_or_damped_echo_is_not_flagged(recwarn):
    from physim.instrument.specs import parse_nonideal

    dev = physim.load_device("lc-ladder-8")
    for c in (0.0, 1.0):
        ni = parse_nonideal(
            {"sources": [{"kind": "dissipation", "quality_factor": 100.0, "compensation": c}]}
        )
        run_protocol(Instrument(dev, ni), _protocol(60), check=True)
    assert not [w for w in recwarn if "anti-damped" in str(w.message)]


def test_twin_at_a_moved_theta_beyond_the_limit_is_refused():
    # the BPTT digital twin (simulate) at a trained θ: refused before it runs to 1e160
    from physim.bptt import bptt_gradient
    from physim.protocol.task import build_task

    dev = physim.load_device("lc-ladder-8")
    theta = dev.theta0.copy()
    theta[3] *= 1e-4
    task = build_task(dev, _protocol(300).task)
    with pytest.raises(UnstableStepError, match=r"moved most is capacitance C4"):
        bptt_gradient(dev, theta, task.u, task.target, loss=task.loss)
