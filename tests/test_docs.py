"""The documentation site: a strict mkdocs build, and generated pages that match a fresh run.

``docs/generate.py`` writes the CLI reference, the catalogue pages and the tour (whose outputs
are printed by running the commands). Here the CLI and catalogue pages must equal a fresh
generation exactly, and each tour block must equal what its command prints now — numbers
within :data:`NUMBER_RTOL`, the rest exactly — so a change that moves a number fails until
``python docs/generate.py`` is rerun.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import generate  # noqa: E402  (docs/generate.py: not a package module)

#: the tour's numbers are deterministic (seeded); this covers round-off of another BLAS build
NUMBER_RTOL = 1e-6
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _same_up_to_numbers(shown: str, now: str) -> bool:
    if _NUMBER.sub("#", shown) != _NUMBER.sub("#", now):
        return False
    for a, b in zip(_NUMBER.findall(shown), _NUMBER.findall(now), strict=True):
        x, y = float(a), float(b)
        if abs(x - y) > NUMBER_RTOL * max(abs(x), abs(y)):
            return False
    return True


def test_number_comparison_can_fail():
    assert _same_up_to_numbers("cosine 0.994056 ok", "cosine 0.9940560000001 ok")
    assert not _same_up_to_numbers("cosine 0.994056 ok", "cosine 0.994 ok")
    assert not _same_up_to_numbers("cosine 0.994056 ok", "cosine 0.994056 fails")


@pytest.mark.parametrize("page", ["cli.md", "catalogues.md"])
def test_generated_reference_pages_are_current(page):
    assert (ROOT / "docs" / page).read_text() == generate.PAGES[page](), (
        f"docs/{page} is out of date: run python docs/generate.py"
    )


def _shown_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "tour.md").read_text()
    blocks = re.findall(r"```text\n\$ physim (.*?)\n(.*?)\n```", text, re.S)
    return [(cmd, out) for cmd, out in blocks]


def test_every_tour_output_is_what_the_command_prints_now():
    shown = _shown_blocks()
    commands = [argv for _, argv in generate.TOUR if argv is not None]
    assert [c for c, _ in shown] == [" ".join(a) for a in commands], "rerun docs/generate.py"
    for (cmd, out), argv in zip(shown, commands, strict=True):
        now = generate.run_command(argv)
        assert _same_up_to_numbers(out, now), (
            f"docs/tour.md shows another output of `physim {cmd}` than it prints now; "
            f"run python docs/generate.py\nshown:\n{out}\nnow:\n{now}"
        )


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="the docs extra is not installed (pip install '.[docs]')",
)
def test_mkdocs_build_strict(tmp_path):
    # broken links, missing pages and unresolvable API references fail a strict build
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    site = tmp_path / "site"
    assert (site / "index.html").exists()
    for page in ("tour", "cli", "api", "catalogues", "studies", "failing-loudly"):
        assert (site / page / "index.html").exists(), page
    assert "run_study" in (tmp_path / "site" / "api" / "index.html").read_text()
