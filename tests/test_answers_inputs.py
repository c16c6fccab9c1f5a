"""``physim budget`` refuses inputs it cannot answer, in one line, before running anything
(or, for a task that does not fit in memory, with the failing point's own message)."""

import pytest

from physim.cli import main

BASE = ["budget", "lc-ladder-8", "--nonideal", "pcb-c0g", "--no-plot", "--steps", "30"]


@pytest.mark.parametrize("eps", ["nan", "0", "-1e-3", "inf", "1e300", "2"])
def test_budget_eps_out_of_range(eps, capsys):
    assert main([*BASE, f"--eps={eps}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("physim budget: error: --eps must be a nudge with ")
    assert f"got {float(eps)}" in err and "\n" not in err


@pytest.mark.parametrize("opt", ["--replicates", "--max-replicates"])
def test_budget_replicates_bounded(opt, capsys):
    assert main([*BASE, opt, str(10**9)]) == 2
    err = capsys.readouterr().err
    assert f"{opt} must be in 1..1000 (simulated chips per level), got 1000000000" in err


def test_budget_of_a_protocol_without_gradient(capsys):
    assert main([*BASE, "--protocol", "characterise"]) == 2
    err = capsys.readouterr().err
    assert "--protocol 'characterise' measures no gradient" in err
    assert "All-NaN" not in err


def test_budget_steps_beyond_the_memory_budget(capsys):
    assert main([*BASE[:-1], str(10**12), "--replicates", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "MemoryBudgetError" in err and "lower the task's n_steps (or --steps)" in err
    assert "\n" not in err and "Traceback" not in err


def test_budget_chip_that_fails_at_every_point(tmp_path, capsys):
    # a thermal bath at 1e300 K: the gradient overflows; one line, not a traceback
    bad = tmp_path / "hot.toml"
    bad.write_text(
        'name = "hot"\ndescription = "a bath no chip survives"\n'
        '[[sources]]\nkind = "dissipation"\nquality_factor = 100.0\ntemperature = 1e300\n'
    )
    assert main([*BASE[:3], str(bad), *BASE[4:], "--replicates", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("physim budget: error: budget point 0 failed: non-finite result")
    assert "\n" not in err


def test_eps_curve_with_no_error_at_any_eps_says_so():
    # the Python API (no CLI pre-check): a forward-only protocol measures no gradient error
    from physim.answers.budget import BudgetPointError, eps_curve
    from physim.instrument.specs import load_nonideal
    from physim.protocol.specs import load_protocol
    from physim.specs import load_device

    with pytest.raises(BudgetPointError, match=r"every point of the eps curve failed, at every"):
        eps_curve(
            load_device("lc-ladder-8"),
            load_protocol("characterise"),
            load_nonideal("pcb-c0g"),
            eps=[1e-3, 1e-2],
            replicates=1,
        )
