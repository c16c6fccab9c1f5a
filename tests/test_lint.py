"""``ruff check`` is part of the test suite: a lint finding fails it like a wrong number."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("physim", "tests", "benchmarks", "examples", "docs")


def _ruff() -> list[str]:
    exe = shutil.which("ruff")
    if exe is not None:
        return [exe]
    try:
        import ruff  # noqa: F401  (the test extra installs ruff)
    except ImportError:
        pytest.fail("ruff is not installed; pip install 'physim[test]'")
    return [sys.executable, "-m", "ruff"]


def test_ruff_check_finds_nothing():
    res = subprocess.run(
        [*_ruff(), "check", "--no-cache", *TARGETS], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, f"ruff check {' '.join(TARGETS)}:\n{res.stdout}{res.stderr}"
