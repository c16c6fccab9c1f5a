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
#: numbers this small on both sides are round-off (a relative error of 7.5e-11 between twins
#: that agree): another BLAS build moves them by more than NUMBER_RTOL, and they mean "0"
ROUNDOFF = 1e-9
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _same_up_to_numbers(shown: str, now: str) -> bool:
    if _NUMBER.sub("#", shown) != _NUMBER.sub("#", now):
        return False
    for a, b in zip(_NUMBER.findall(shown), _NUMBER.findall(now), strict=True):
        x, y = float(a), float(b)
        if max(abs(x), abs(y)) < ROUNDOFF:
            continue
        if abs(x - y) > NUMBER_RTOL * max(abs(x), abs(y)):
            return False
    return True


def test_number_comparison_can_fail():
    assert _same_up_to_numbers("cosine 0.994056 ok", "cosine 0.9940560000001 ok")
    assert not _same_up_to_numbers("cosine 0.994056 ok", "cosine 0.994 ok")
    assert not _same_up_to_numbers("cosine 0.994056 ok", "cosine 0.994056 fails")
    assert _same_up_to_numbers("rel. error 7.505e-11", "rel. error 9.1e-11")
    assert not _same_up_to_numbers("rel. error 7.505e-11", "rel. error 2.0e-08")


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


def _concept_blocks() -> list[tuple[str, str, str]]:
    return [
        (page.name, cmd, out)
        for page in generate.concept_pages()
        for cmd, out in generate.run_blocks(page.read_text())
    ]


def test_concept_pages_have_command_blocks_and_the_marker_parses():
    blocks = _concept_blocks()
    assert blocks, "no <!-- docs-run --> block in docs/*.md"
    # an empty block (as written before the first generation) ends at its own fence
    text = "<!-- docs-run -->\n```text\n$ physim devices\n```\nprose\n```text\nother\n```\n"
    assert generate.run_blocks(text) == [("devices", "")]


@pytest.mark.parametrize(
    ("page", "cmd", "shown"), _concept_blocks(), ids=[f"{p}:{c}" for p, c, _ in _concept_blocks()]
)
def test_every_docs_run_block_is_what_the_command_prints_now(page, cmd, shown):
    import shlex

    now = generate.run_command(shlex.split(cmd))
    assert _same_up_to_numbers(shown, now), (
        f"docs/{page} shows another output of `physim {cmd}` than it prints now; "
        f"run python docs/generate.py\nshown:\n{shown}\nnow:\n{now}"
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
