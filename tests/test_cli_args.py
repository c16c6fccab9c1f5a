"""Command-line values written as the README writes them: counts as ``1e12``, negative
numbers in scientific notation as option values, and a log into a missing folder."""

import argparse

import pytest

from physim.cli import build_parser, main
from physim.cli_args import count


@pytest.mark.parametrize(("text", "value"), [("200", 200), ("2_000", 2000), ("1e12", 10**12)])
def test_count_reads_whole_numbers_in_any_spelling(text, value):
    assert count(text) == value and isinstance(count(text), int)


@pytest.mark.parametrize("text", ["1.5", "abc", "1e-3"])
def test_count_refuses_what_is_not_a_whole_number(text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"whole number, got '{text}'"):
        count(text)


def test_every_integer_option_reads_1e12():
    parser = build_parser()
    assert parser.parse_args(["run", "lc-ladder-8", "rhel-centred", "--steps", "1e12"]).steps == (
        10**12
    )
    assert parser.parse_args(["train", "--steps", "2e3"]).steps == 2000
    assert parser.parse_args(["gradcheck", "two-mass", "--n-fd", "3e0"]).n_fd == 3


def test_steps_1e12_reaches_the_memory_check(capsys):
    # the README's example: refused at once with the estimate, not as "invalid int value"
    assert main(["run", "lc-ladder-8", "rhel-centred", "--steps", "1e12"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("physim run: error: the task of 1000000000000 steps") and "TiB" in err


def test_a_negative_exponent_value_reaches_the_option_check(capsys):
    # argparse alone reads `-1e-3` as an unknown option ("expected one argument")
    args = build_parser().parse_args(["run", "two-mass", "rhel-centred", "--eps", "-1e-3"])
    assert args.eps == -1e-3
    assert main(["run", "two-mass", "rhel-centred", "--eps", "-1e-3"]) == 2
    assert "eps" in capsys.readouterr().err


def test_a_log_into_a_missing_folder_names_the_folder(tmp_path, capsys):
    log = tmp_path / "nope" / "x.h5"
    assert main(["run", "two-mass", "rhel-centred", "--log", str(log)]) == 2
    err = capsys.readouterr().err
    assert f"its folder {log.parent} does not exist" in err and ".lock" not in err
    assert not log.parent.exists()
