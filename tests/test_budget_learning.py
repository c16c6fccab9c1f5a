"""Tolerances in learning terms: the parameter DAC judged by in-situ training, the overall
verdict, replicate chips until the interval is pinned down, and failed points as errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from physim.answers.budget import (
    BudgetPointError,
    make_runner,
    overall,
    point_task,
    tolerance,
    train_criterion,
)
from physim.instrument.specs import parse_nonideal
from physim.protocol.session import run_session
from physim.protocol.specs import load_protocol
from physim.specs import load_device

FACTOR = 2.0


def _dac(bits: int):
    return parse_nonideal(
        {"name": f"dac{bits}", "sources": [{"kind": "dac", "target": "parameters", "bits": bits}]}
    )


def _protocol(eps=1e-3):
    return load_protocol("rhel-centred-rerun").model_copy(update={"eps": eps})


@pytest.fixture(scope="module")
def ladder():
    return load_device("lc-ladder-8")


def test_a_coarse_parameter_dac_is_judged_at_the_theta_that_was_asked_for(ladder):
    """A 4-bit DAC writes a θ far from the requested one: the twins are at the requested θ, so
    the gradient is wrong (evaluated at the written θ both twins would agree with it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_session(ladder, _protocol(), _dac(4), seed=0)
    written = res.results[-1].theta
    assert not np.allclose(written, ladder.theta0, rtol=1e-3)  # the DAC did round
    assert res.fidelity.cosine < 0.9
    assert res.fidelity_as_built.cosine < 0.9


def test_the_dac_tolerance_by_training_holds_on_fresh_chips(ladder):
    """The level the budget claims in learning terms is where in-situ training ends within 2x
    of the ideal chip's loss, checked by training fresh replicate chips at it and at one bit
    fewer (twice the LSB); below it training does not move at all."""
    crit = train_criterion(FACTOR, epochs=20, lr=1e-2)
    run = make_runner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tol = tolerance(ladder, _protocol(), _dac(12), 0, replicates=2, criterion=crit, run=run)
        bits = int(tol["level"])
        assert tol["by"] == "train" and tol["unit"] == "bits"
        assert 6 <= bits <= 11, tol

        def ratios(b):
            tasks = [
                point_task(ladder, _protocol(), _dac(b), r, seed=0, measure=crit.measure)
                for r in (5, 6)  # chips the search never saw
            ]
            return [x["metrics"] for x in run(tasks)]

        at, beyond = ratios(bits), ratios(bits - 1)
    assert all(m["loss_ratio"] <= FACTOR for m in at), at
    assert all(m["loss_ratio"] > FACTOR for m in beyond), beyond
    # four bits: the updates are below one LSB, and the chip does not learn at all
    (frozen,) = ratios(4)[:1]
    assert frozen["loss_final"] == pytest.approx(frozen["loss_initial"], rel=1e-12)


def test_the_overall_verdict_says_whether_the_chip_as_specified_meets_the_target(ladder):
    from physim.answers.budget import gradient_criterion

    v = overall(ladder, _protocol(), _dac(4), gradient_criterion(0.99), replicates=2)
    assert not v["meets"] and "MISSES" in v["line"] and "cosine" in v["line"]
    v = overall(ladder, _protocol(), _dac(16), gradient_criterion(0.99), replicates=2)
    assert v["meets"] and v["passing"] == 2 and "meets" in v["line"]


def test_random_sources_get_replicate_chips_until_the_interval_is_pinned(ladder):
    """A thermal bath's tolerance differs from chip to chip: replicates are added beyond the
    first two until the 90 % interval spans at most 2x, or the report says it is not pinned."""
    non = parse_nonideal(
        {
            "name": "hot",
            "sources": [{"kind": "dissipation", "quality_factor": 1e4, "temperature": 3e3}],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tol = tolerance(ladder, _protocol(), non, 0, replicates=2, max_replicates=6)
    assert tol["replicates"] >= 2 and len(tol["per_replicate"]) == tol["replicates"]
    lo, hi = tol["interval"]
    assert lo <= tol["level"] <= hi
    if tol["pinned"]:
        assert hi / lo <= 2.0
    else:
        assert tol["replicates"] == 6 and "not pinned down" in tol["note"]


def test_a_point_that_fails_for_a_reason_not_the_chips_stops_the_budget(ladder):
    """A failure of the software or the spec (here a train measure of 0 epochs) is an error with
    its message, never a level that "fails even at the search bound"."""
    from physim.answers.budget import Criterion

    bad = Criterion("train", {"kind": "train", "epochs": 0, "lr": 1e-2}, "loss_ratio", 2.0, False)
    with pytest.raises(BudgetPointError, match="epochs"):
        tolerance(ladder, _protocol(), _dac(12), 0, replicates=1, criterion=bad)


def test_a_dac_that_writes_an_impossible_element_is_a_failing_level_not_an_error():
    """cmos-lc-4's small couplings round to 0 F at 3 bits: the chip fails there (ChipFailure),
    which a tolerance search reads as a level that fails, with the reason."""
    from physim.answers.budget import _outcome, gradient_criterion

    dev = load_device("cmos-lc-4")
    (res,) = make_runner()([point_task(dev, _protocol(), _dac(3), 0)])
    assert res["error"].startswith("ChipFailure: dac/parameters wrote")
    ok, why = _outcome(res, gradient_criterion(0.99), "dac=3")
    assert not ok and "dac/parameters" in why


def test_a_local_pool_compiles_when_the_main_module_imported_numba(tmp_path):
    """Spawned workers re-run the parent's main module, and the physim console script imports
    numba there. Setting NUMBA_NUM_THREADS after that made every compile in a worker fail
    ("Cannot set NUMBA_NUM_THREADS to a different value once the threads have been
    launched"): on a cold numba cache every point of `physim budget --workers N` failed."""
    script = tmp_path / "pool.py"
    script.write_text(
        textwrap.dedent(
            """
            import numba  # imported at the top, as the physim console script does

            from physim.study.engine import local_executor


            def compile_and_run(x):
                numba.set_num_threads(1)  # as run_point does: this launches the threads
                # a function no cache holds: the worker compiles it, as on a cold cache
                return numba.njit(lambda v: v * 2 + 1)(x)


            if __name__ == "__main__":
                with local_executor(2) as ex:
                    print(list(ex.map(compile_and_run, [1, 2, 3])))
            """
        )
    )
    res = subprocess.run(
        [sys.executable, "-W", "ignore", str(script)], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "[3, 5, 7]", res.stdout + res.stderr[-2000:]


@pytest.mark.parametrize(
    "source",
    [
        {"kind": "mismatch", "relative_dtod": 0.9},
        {"kind": "drift", "model": "random_walk", "relative_std": 1.0},
    ],
    ids=["mismatch", "drift"],
)
def test_a_spread_that_makes_an_element_impossible_names_its_source(source):
    """A 90 % fabrication spread gives a negative mass on some chip: the error names the
    mismatch (or drift) source, not "a learned value crossed zero — lower the learning rate",
    and it is a ChipFailure, which a budget reads as a failing level."""
    from physim.errors import ChipFailure

    dev = load_device("mems-array-8")
    p = load_protocol("rhel-centred-rerun")
    with warnings.catch_warnings(), pytest.raises(ChipFailure, match=source["kind"]) as err:
        warnings.simplefilter("ignore")
        for seed in range(20):
            non = parse_nonideal({"name": "x", "sources": [{**source, "seed": seed}]})
            run_session(dev, p, non, seed=seed)
    assert "learning rate" not in str(err.value)
