"""The command line reports user errors, numerical faults and Ctrl-C in one line, no traceback."""

from __future__ import annotations

import json

import pytest

from physim import cli
from physim.cli import main
from physim.cli_errors import EXIT_FAULT, EXIT_INTERRUPT, EXIT_USER


def _one_line_error(capsys, pattern: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("physim ")]
    assert len(lines) == 1, err
    assert pytest.importorskip("re").search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["run", "two-mass", "rhel-centred-rerun", "--batch", "0"], r"batch: .*greater than or equal to 1"),
        (["run", "two-mass", "rhel-centred-rerun", "--epochs", "-3"], r"epochs must be an integer >= 0, got -3"),
        (["run", "two-mass", "rhel-centred-rerun", "--epochs", "2", "--lr", "-1"], r"lr must be a positive"),
        (["run", "two-mass", "rhel-centred-rerun", "--eps", "5e-324"], r"eps: .*greater than or equal"),
        (["run", "chain-16", "rhel-centred", "--steps", "1000000000000"], r"memory budget.*n_steps"),
        (["gradcheck", "two-mass", "--steps", "1000000000000"], r"memory budget.*lower --steps"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_errors(argv, pattern, capsys):
    assert main(argv) == EXIT_USER
    _one_line_error(capsys, pattern)


def test_a_directory_given_as_a_device_file(tmp_path, capsys):
    d = tmp_path / "dev.toml"
    d.mkdir()
    assert main(["gradcheck", str(d)]) == EXIT_USER
    _one_line_error(capsys, r"dev\.toml")


def test_multi_line_spec_errors_become_one_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('kind = "oscillator_network"\nname = "x"\ndt = nan\nmasses = [1.0, inf]\n')
    assert main(["gradcheck", str(path)]) == EXIT_USER
    line = _one_line_error(capsys, r"dt: Input should be a finite number")
    assert "masses.1: Input should be a finite number" in line


def test_an_unstable_device_is_refused_with_the_largest_stable_dt(tmp_path, capsys):
    path = tmp_path / "stiff.toml"
    path.write_text(
        'kind = "oscillator_network"\nname = "stiff"\ndt = 1.0\nmasses = [1.0]\n'
        "springs = [{ node = 0, k = 100.0 }]\n"
    )
    assert main(["gradcheck", str(path)]) == EXIT_USER
    _one_line_error(capsys, r"dt·ω_max must be < 2.*use dt < 0\.2 s")


def test_a_numerical_fault_exits_3_with_run_and_step(capsys):
    argv = ["run", "two-mass", "rhel-centred-rerun", "--epochs", "4", "--lr", "1e6"]
    assert main(argv) == EXIT_FAULT
    _one_line_error(capsys, r"numerical fault: epoch \d+ of in-situ training.* run at step \d+")


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_devices", interrupted)
    assert main(["devices"]) == EXIT_INTERRUPT
    _one_line_error(capsys, r"physim devices: interrupted \(Ctrl-C\)")


def test_bugs_keep_their_traceback(monkeypatch):
    def bug(args):
        raise AttributeError("internal")

    monkeypatch.setattr(cli, "_cmd_devices", bug)
    with pytest.raises(AttributeError, match="internal"):
        main(["devices"])


def test_characterise_runs_on_every_catalogue_device(capsys):
    import physim

    for name in physim.catalogue():
        assert main(["run", name, "characterise", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["loss"] is None and out["cost"]["n_runs"] == 2


def test_run_json_is_strict(capsys):
    assert main(["run", "chain-16", "rhel-centred", "--steps", "50", "--json"]) == 0
    text = capsys.readouterr().out
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
