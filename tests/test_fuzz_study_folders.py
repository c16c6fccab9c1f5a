"""Fuzz study TOMLs and study folders: every hostile input is a one-line error or works.

* a study table with one leaf replaced by a hostile value, a key deleted or an unknown one
  added is either a :class:`StudySpec` (and then expands, or is refused by a StudyError) or
  refused by a StudyError — never a TypeError, IndexError or another traceback;
* a finished study folder whose ``journal.jsonl``, ``study.json`` or ``results.csv`` is
  replaced by hostile text gives ``sweep status`` / ``sweep table`` exit 0 or a one-line error
  with exit 2 — never a traceback and never a count of more points done than the study has.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tomllib
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from physim.catalogues import CatalogueError
from physim.cli import main
from physim.study import StudyError, expand, parse_study, run_study

STUDY = """
name = "fuzz"
replicates = 2
[base]
device = "lc-ladder-8"
set = { "task.n_steps" = 20 }
[executor]
timeout = 5
[[axes]]
path = "protocol.eps"
values = [1e-3, 1e-2]
"""
BASE = tomllib.loads(STUDY)

HOSTILE = st.one_of(
    st.sampled_from(
        [math.nan, math.inf, -math.inf, -1, 0, 2**63, 1e308, "", "x", [], {}, [1, "a"], None, True]
    ),
    st.text(max_size=8),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _leaves(d, path=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(d, list) and d and isinstance(d[0], dict | list):
        for i, v in enumerate(d):
            yield from _leaves(v, (*path, i))
    yield path


def _mutate(d: dict, path: tuple, how: str, value) -> dict:
    d = copy.deepcopy(d)
    if not path:
        return d
    *head, last = path
    node = d
    for k in head:
        node = node[k]
    if how == "delete" and isinstance(node, dict):
        node.pop(last, None)
    elif how == "add" and isinstance(node, dict):
        node["unknown_key"] = value
    else:
        node[last] = value
    return d


PATHS = list(_leaves(BASE))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), st.sampled_from(["replace", "delete", "add"]), HOSTILE)
def test_mutated_study_is_a_study_or_a_study_error(path, how, value):
    data = _mutate(BASE, path, how, value)
    try:
        spec = parse_study(data)
    except StudyError:
        return
    try:
        plan = expand(spec)
    except (StudyError, ValueError, CatalogueError):  # e.g. a value the point's spec refuses
        return
    assert 1 <= plan.n_points <= spec.max_points


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz-folder")
    with ThreadPoolExecutor(1) as ex:
        run_study(parse_study(BASE), executor=ex, out=out)
    return out


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10) | st.floats() | st.text(max_size=5),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=8,
)
JOURNAL_LINE = st.one_of(
    JSONISH.map(json.dumps),
    st.fixed_dictionaries(
        {"index": JSONISH, "metrics": JSONISH, "error": JSONISH, "seconds": JSONISH}
    ).map(json.dumps),
    st.text(max_size=30),
)


def _check(argv, capsys, n_points: int) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("physim sweep: error: "), err
    for line in out.splitlines():  # never "3 of 2 points done"
        if " points done" in line:
            done = int(line.split(": ", 1)[1].split(" of ")[0])
            assert 0 <= done <= n_points, line


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(JOURNAL_LINE, min_size=1, max_size=4), st.booleans())
def test_hostile_journal(folder, tmp_path_factory, capsys, lines, keep_real):
    d = tmp_path_factory.mktemp("j") / "d"
    shutil.copytree(folder, d)
    real = (d / "journal.jsonl").read_text().splitlines() if keep_real else []
    (d / "journal.jsonl").write_text("\n".join([*real, *lines]) + "\n")
    _check(["sweep", "status", str(d)], capsys, 4)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(JSONISH.map(json.dumps), st.text(max_size=40)))
def test_hostile_study_json(folder, tmp_path_factory, capsys, text):
    d = tmp_path_factory.mktemp("s") / "d"
    shutil.copytree(folder, d)
    (d / "study.json").write_text(text)
    _check(["sweep", "status", str(d)], capsys, 4)


CSV_CELL = st.text(alphabet='ab,0.1\n"x ', max_size=12)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(CSV_CELL, max_size=5), st.booleans())
def test_hostile_results_csv(folder, tmp_path_factory, capsys, rows, keep_header):
    d = tmp_path_factory.mktemp("c") / "d"
    shutil.copytree(folder, d)
    head = (d / "results.csv").read_text().splitlines()[:1] if keep_header else []
    (d / "results.csv").write_text("\n".join([*head, *rows]))
    _check(["sweep", "table", str(d)], capsys, 4)
