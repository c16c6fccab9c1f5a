"""The command line's conventions: pure --json, plain --help, compile notice, progress, train."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from physim import feedback
from physim.cli import build_parser, main
from physim.hssm.commands import TRAIN_DATA, resolve_train_spec
from physim.hssm.config import DATASETS


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "Hamiltonian" in out and "schema" in out
    assert "``" not in out and ":func:" not in out


def test_run_json_with_log_and_epochs_is_pure_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(feedback, "PROGRESS_DELAY_S", 0.0)  # show the bar even for a short run
    log = tmp_path / "x.h5"
    argv = ["run", "two-mass", "rhel-centred", "--epochs", "3", "--json", "--log", str(log)]
    assert main(argv) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert out["loss_first"] > out["loss_last"]
    assert f"wrote {log}" in cap.err and "in-situ training" in cap.err and "3/3" in cap.err


def test_gradcheck_json_is_pure_json_with_a_progress_bar(capsys, monkeypatch):
    monkeypatch.setattr(feedback, "PROGRESS_DELAY_S", 0.0)
    assert main(["gradcheck", "two-mass", "--steps", "50", "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["passed"] is True
    assert "finite differences" in cap.err


def test_compare_gradients_json_is_pure_json(capsys):
    argv = ["compare-gradients", "--blocks", "1", "--hidden", "4", "--ssm", "4", "--length", "16"]
    assert main([*argv, "--batch", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["min_cosine"] > 0.999


def test_no_compile_notice_when_the_cache_is_warm(capsys):
    # the session fixture in conftest.py has compiled (or loaded) every core kernel
    assert feedback.cold_kernels() == 0
    assert feedback.compile_notice() is False
    assert capsys.readouterr().err == ""


def test_compile_notice_when_the_cache_is_cold(tmp_path):
    """An empty NUMBA_CACHE_DIR is a cold cache: one line on stderr, before any compiling."""
    code = "from physim.feedback import compile_notice; print(compile_notice())"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty")}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    assert proc.stderr.startswith("compiling kernels (first run only, about 60 s)…")


def _subcommands(parser, prefix=()):
    """(command words, defaults) of every leaf sub-command of ``parser``."""
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser._defaults
        return
    for name, sub in subs[0].choices.items():
        yield from _subcommands(sub, (*prefix, name))


def test_every_simulating_command_gives_the_compile_notice():
    """A command that runs numba kernels declares it where it is defined (kernels=True), so the
    cold-cache notice cannot drift from the command set (it once named a `study` command that
    did not exist, and `sweep run` compiled for ~40 s in silence)."""
    declared = {
        " ".join(words) for words, d in _subcommands(build_parser()) if d.get("kernels", False)
    }
    assert declared == {
        "gradcheck",
        "demo",
        "run",
        "replay",
        "train",
        "compare-gradients",
        "sweep run",
        "budget",
        "spice-check",
    }


@pytest.mark.parametrize(
    "argv, notice", [(["sweep", "run", "no-such-study"], True), (["devices"], False)]
)
def test_main_gives_the_compile_notice_before_simulating_commands(argv, notice, monkeypatch):
    calls = []
    monkeypatch.setattr(feedback, "compile_notice", lambda: calls.append(argv))
    main(argv)
    assert bool(calls) is notice


def test_train_accepts_every_dataset_and_the_usual_overrides():
    assert set(TRAIN_DATA) == set(DATASETS) and {"tiny", "copy"} <= set(TRAIN_DATA)
    parser = build_parser()
    for data in ("tiny", "copy"):
        argv = ["train", "--data", data, "--steps", "7", "--lr", "3e-3", "--batch", "5"]
        spec = resolve_train_spec(parser.parse_args([*argv, "--length", "40"]))
        assert (spec.data, spec.n_steps, spec.lr, spec.batch_size, spec.length) == (
            data,
            7,
            3e-3,
            5,
            40,
        )


@pytest.mark.parametrize(
    ("flag", "value", "pattern"),
    [("--batch", "0", "batch_size"), ("--lr", "-1", "lr"), ("--length", "0", "length")],
)
def test_train_overrides_are_validated_by_the_config_model(flag, value, pattern, capsys):
    assert main(["train", "--data", "tiny", flag, value]) == 2
    assert pattern in capsys.readouterr().err


def test_the_demo_progress_bar_counts_epochs_not_measurements(tmp_path, capsys):
    # the final measurement after the last update was counted as one more epoch (101 of 100)
    from physim.demo import run_demo

    run_demo(epochs=4, out=tmp_path, plot=False)
    bar = capsys.readouterr().err.replace("\r", "\n")
    assert "4/4" in bar and "5/" not in bar
