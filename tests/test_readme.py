"""Every ```bash snippet and ```toml block of README.md and of the documentation pages
(``docs/*.md``) works as written.

Blocks are taken in order: the README first, then the pages by name. A ``<!-- readme-test: file=NAME -->`` comment right before a
TOML block saves it as NAME in a scratch directory, so that later shell snippets can use it as
the README tells the reader to. Every TOML block must validate against one of the spec models
of :data:`physim.schema.SCHEMAS`. Every shell snippet runs with ``bash -e`` in that directory,
unless the comment right before it is ``<!-- readme-test: skip=REASON -->`` with a REASON from
:data:`SKIP_REASONS` (installing packages, or a run of many minutes); ``<!-- readme-test: slow
-->`` marks a snippet that runs but belongs to the slow tier.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from physim.schema import SCHEMAS, json_schema

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: the README and the documentation pages whose snippets run here (the generated pages hold none)
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
#: the only reasons a README shell snippet may be left unrun (the marker must name one)
SKIP_REASONS = ("installs packages", "runs for many minutes")
#: a README snippet that is not marked slow must finish within this (the suite's budget)
SNIPPET_TIMEOUT_S = 600
#: the README promises that its non-ideality example measures a gradient this good
PCB_MIN_COSINE = 0.99

_FENCE = re.compile(
    r"(?:<!--\s*readme-test:\s*(?P<marker>[^>]*?)\s*-->\s*\n)?```(?P<lang>[a-z]*)\n(?P<body>.*?)```",
    re.S,
)


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    marker: str
    line: int
    page: str = "README.md"

    @property
    def id(self) -> str:
        where = "" if self.page == "README.md" else f"{self.page}:"
        return f"{where}{self.lang}@L{self.line}"


def readme_blocks() -> list[Block]:
    out = []
    for page in PAGES:
        text = page.read_text()
        for m in _FENCE.finditer(text):
            line = text.count("\n", 0, m.start("lang")) + 1
            marker = (m["marker"] or "").strip()
            out.append(Block(m["lang"], m["body"], marker, line, str(page.relative_to(ROOT))))
    return out


BLOCKS = readme_blocks()
TOML = [b for b in BLOCKS if b.lang == "toml"]
BASH = [b for b in BLOCKS if b.lang == "bash"]


def _validators():
    from physim.hssm.config import parse_train_spec
    from physim.instrument.specs import parse_nonideal
    from physim.protocol.specs import parse_protocol
    from physim.specs import parse_spec
    from physim.study.spec import parse_study

    return {
        "device": parse_spec,
        "protocol": parse_protocol,
        "nonideal": parse_nonideal,
        "train": parse_train_spec,
        "study": parse_study,
    }


def validate_toml(body: str):
    """The spec a README TOML block describes: the first kind of SCHEMAS that accepts it.

    Kinds with a parser of their own (which checks more than the model, e.g. a protocol's
    step sequence) use it; any other kind added to SCHEMAS is validated by its model.
    """
    data = tomllib.loads(body)
    parsers = _validators()
    errors = []
    for kind, (_, model) in SCHEMAS.items():
        try:
            if kind in parsers:
                return kind, parsers[kind](data, "README")
            return kind, TypeAdapter(model()).validate_python(data)
        except ValueError as err:  # pydantic's ValidationError is a ValueError
            errors.append(f"{kind}: {str(err).splitlines()[0]}")
    raise AssertionError("no spec model accepts this TOML block: " + "; ".join(errors))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A scratch directory holding every ``file=`` TOML block and links to the repo's data."""
    d = tmp_path_factory.mktemp("readme")
    # the README's commands are written from the repository root
    for entry in (
        "devices",
        "protocols",
        "studies",
        "nonideal",
        "examples",
        "tests",
        "pyproject.toml",
    ):
        if (ROOT / entry).exists():
            (d / entry).symlink_to(ROOT / entry)
    for b in TOML:
        if b.marker.startswith("file="):
            (d / b.marker.removeprefix("file=")).write_text(b.body)
    return d


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["MPLBACKEND"] = "Agg"
    return env


def _physim_shell(body: str) -> str:
    """``physim`` as a shell function running this checkout's CLI with this interpreter."""
    py = shlex.quote(sys.executable)
    return f'physim() {{ {py} -m physim.cli "$@"; }}\npython() {{ {py} "$@"; }}\n{body}'


def test_readme_has_blocks():
    assert TOML and BASH, "README.md lost its ```toml / ```bash blocks"


@pytest.mark.parametrize("block", TOML, ids=[b.id for b in TOML])
def test_toml_block_validates(block):
    kind, spec = validate_toml(block.body)
    if hasattr(spec, "build"):
        spec.build()  # a device compiles, not only parses


def _bash_params():
    params = []
    for b in BASH:
        marks = []
        if b.marker.startswith("skip="):
            reason = b.marker.removeprefix("skip=")
            assert reason in SKIP_REASONS, (
                f"{b.page} line {b.line}: skip reason {reason!r} is not one of {SKIP_REASONS}"
            )
            marks.append(pytest.mark.skip(reason=f"README marks it: {reason}"))
        elif b.marker == "slow":
            marks.append(pytest.mark.slow)
        else:
            assert not b.marker or b.marker.startswith("file="), (
                f"{b.page} line {b.line}: unknown readme-test marker {b.marker!r}"
            )
        params.append(pytest.param(b, marks=marks, id=b.id))
    return params


@pytest.mark.parametrize("block", _bash_params())
def test_bash_block_runs(block, workdir):
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", _physim_shell(block.body)],
        cwd=workdir,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=SNIPPET_TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"{block.page} line {block.line} failed (exit {proc.returncode}):\n{block.body}\n"
        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )
    assert "Traceback" not in proc.stderr


def _pcb_command() -> list[str]:
    """The README's `physim run ... --nonideal pcb.toml` command line, as written."""
    for b in BASH:
        for line in b.body.splitlines():
            if line.startswith("physim run") and "pcb.toml" in line:
                return shlex.split(line)[1:]
    raise AssertionError("README.md has no `physim run ... --nonideal pcb.toml` snippet")


def _run_cli(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "physim.cli", *argv],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=SNIPPET_TIMEOUT_S,
    )


def _pcb_dir(workdir: Path, tmp_path: Path) -> Path:
    """A fresh directory with the README's pcb.toml (the shell snippets' run.h5 stays theirs:
    logs are never overwritten)."""
    (tmp_path / "pcb.toml").write_text((workdir / "pcb.toml").read_text())
    return tmp_path


def test_pcb_example_is_accurate_and_quiet(workdir, tmp_path):
    """As written, the pcb example measures cosine >= 0.99, with no warning."""
    proc = _run_cli([*_pcb_command(), "--json"], _pcb_dir(workdir, tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # --json with --log: stdout is JSON only
    assert out["fidelity_vs_ideal_twin"]["cosine"] >= PCB_MIN_COSINE
    assert "warning" not in proc.stderr


def test_pcb_example_warns_at_the_default_eps(workdir, tmp_path):
    """Without the README's --eps the gradient is rounding, and physim says so."""
    argv = _pcb_command()
    if "--eps" in argv:
        i = argv.index("--eps")
        argv = argv[:i] + argv[i + 2 :]
    proc = _run_cli([*argv, "--json"], _pcb_dir(workdir, tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["fidelity_vs_ideal_twin"]["cosine"] < PCB_MIN_COSINE
    assert re.search(r"warning: the accumulator ADC reads the gradient at .* LSB", proc.stderr)
    assert "raise eps to >=" in proc.stderr


def test_readme_links_every_schema_kind():
    text = README.read_text()
    assert "physim schema" in text
    for kind in SCHEMAS:
        json.dumps(json_schema(kind))


def test_a_toml_block_no_spec_accepts_is_reported():
    with pytest.raises(AssertionError, match=r"no spec model accepts this TOML block: device: "):
        validate_toml('kind = "oscillator_network"\nname = "x"\ndt = -1\nmasses = [1.0]\n')


def test_skip_markers_need_a_listed_reason():
    text = README.read_text()
    reasons = re.findall(r"<!--\s*readme-test:\s*skip=([^>]*?)\s*-->", text)
    assert reasons and set(reasons) <= set(SKIP_REASONS)


#: the README guides; the reference lives in docs/ (issue 25 asks for at most ~250 lines)
README_MAX_LINES = 250


def _commands(parser, prefix: str = "") -> list[str]:
    """Every leaf command of the CLI (``sweep run``, ``budget``, …)."""
    import argparse

    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _commands(sub, f"{prefix}{name} ") or [f"{prefix}{name}"]
    return out


def test_readme_is_short_and_its_command_table_is_complete():
    from physim.cli import build_parser

    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    table = [ln for ln in text.splitlines() if ln.startswith("| `physim ")]
    listed = {re.match(r"\| `physim ([a-z-]+(?: [a-z]+)?)", ln)[1] for ln in table}
    missing = [c for c in _commands(build_parser()) if c not in listed]
    assert not missing, f"README's command table lacks {missing}"
    assert "## Contents" in text
