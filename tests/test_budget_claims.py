"""The README's budget tables: written by the script, and every claim checked by brute force.

``scripts/readme_budgets.py`` runs ``physim budget --by train`` for each technology preset on
its device and writes ``results/budget/PRESET.json`` and the README section. Here each claimed
tolerance is rebuilt on chips the search never saw (replicates 100 …):

* a source whose replicate chips all found the same level (no randomness: bits, Q alone, a
  drift on a fixed seed) must pass on every fresh chip at the claim and fail on every one a
  step beyond it (one bit fewer, or 2× the level);
* a random source (its chips differ; the claim is the typical chip, with a 90 % interval) must
  pass on a majority of fresh chips at 2× better than the claim and fail on a majority at 2×
  beyond it.

The full scan (every preset, both criteria) is ``slow``; the default suite checks the PCB
preset's gradient claims.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import pytest

from physim.answers.budget import (
    Criterion,
    _outcome,
    _with_level,
    gradient_criterion,
    make_runner,
    point_task,
    train_criterion,
)
from physim.instrument.sources import SOURCES, source_label
from physim.instrument.specs import NONIDEALS, load_nonideal
from physim.protocol.specs import load_protocol
from physim.specs import catalogue, load_device
from physim.study.engine import local_executor

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "budget"
FRESH = range(100, 106)


def _script():
    spec = importlib.util.spec_from_file_location(
        "readme_budgets", ROOT / "scripts/readme_budgets.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _reports() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def test_every_preset_names_a_catalogue_device_and_has_a_budget():
    devices = catalogue()
    for name in NONIDEALS.entries():
        spec = load_nonideal(name)
        assert spec.pairs_with in devices, (name, spec.pairs_with)
        assert (RESULTS / f"{name}.json").exists(), f"run scripts/readme_budgets.py --only {name}"


def test_the_readme_budget_section_is_the_scripts_output():
    mod = _script()
    text = (ROOT / "README.md").read_text()
    section = text.split(mod.BEGIN, 1)[1].split(mod.END, 1)[0]
    for rep in _reports():
        assert mod.table(rep) in section, (
            f"README out of date for {rep['preset']}: rerun the script"
        )


def _cases(rep: dict, by: str):
    key = "tolerances" if by == "gradient" else "tolerances_train"
    for t in rep.get(key, []):
        if t["level"] is not None:
            yield t


def _levels(t: dict) -> tuple[str, float, float]:
    """(kind, level where chips must pass, level where they must fail); see the docstring."""
    level, worse = float(t["level"]), t["worse"]
    per = [x for x in t["per_replicate"] if x is not None]
    fixed = len(set(per)) == 1
    if t["unit"] == "bits":  # a step is one bit (twice or half the LSB)
        return (
            ("fixed", level, level + worse) if fixed else ("random", level - worse, level + worse)
        )
    step = 2.0**worse  # ×2 in the worse direction
    return ("fixed", level, level * step) if fixed else ("random", level / step, level * step)


def _knob(preset, t: dict):
    """(index of the source, its Level) that a tolerance row searched."""
    for i, src in enumerate(preset.sources):
        cls = SOURCES.get(src.kind)
        for lv in [cls.level_of(src), *cls.extra_levels(src)]:
            if lv is None or lv.field != t["field"]:
                continue
            if t["source"] in (source_label(src), f"{source_label(src)}/{lv.field}"):
                return i, lv
    raise KeyError(f"no source of {preset.name} searched as {t['source']}")


def _check(rep: dict, by: str, run) -> list[str]:
    device = load_device(rep["device"])
    protocol = load_protocol(rep["protocol"]).model_copy(update={"eps": rep["eps_used"]})
    preset = load_nonideal(rep["preset"])
    crit: Criterion = (
        gradient_criterion(rep["target"])
        if by == "gradient"
        else train_criterion(rep["train"]["factor"], rep["train"]["epochs"], rep["train"]["lr"])
    )
    wrong = []
    for t in _cases(rep, by):
        idx, lv = _knob(preset, t)
        src = preset.sources[idx]
        kind, good, bad = _levels(t)
        outcome = {}
        for name, level in (("good", good), ("bad", bad)):
            if not lv.lo <= level <= lv.hi:
                continue
            non = preset.model_copy(
                update={
                    "name": f"{t['source']}={level:g}",
                    "sources": [_with_level(src, lv, level)],
                }
            )
            tasks = [point_task(device, protocol, non, r, measure=crit.measure) for r in FRESH]
            outcome[name] = [_outcome(r, crit, t["source"])[0] for r in run(tasks)]
        n = len(FRESH)
        if kind == "fixed":
            if "good" in outcome and not all(outcome["good"]):
                wrong.append(
                    f"{t['source']} ({by}): fails at the claimed {good:g}: {outcome['good']}"
                )
            if "bad" in outcome and any(outcome["bad"]):
                wrong.append(f"{t['source']} ({by}): passes a step beyond the claim, at {bad:g}")
        else:
            if "good" in outcome and sum(outcome["good"]) <= n // 2:
                wrong.append(f"{t['source']} ({by}): most chips fail at 2x better, {good:g}")
            if "bad" in outcome and sum(outcome["bad"]) > n // 2:
                wrong.append(f"{t['source']} ({by}): most chips pass at 2x beyond, {bad:g}")
    return wrong


def test_the_pcb_presets_gradient_claims_hold_on_fresh_chips():
    (rep,) = [r for r in _reports() if r["preset"] == "pcb-c0g"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _check(rep, "gradient", make_runner()) == []


@pytest.mark.slow
@pytest.mark.parametrize("by", ["gradient", "train"])
@pytest.mark.parametrize("preset", sorted(NONIDEALS.entries()))
def test_every_budget_claim_holds_on_fresh_chips(preset, by):
    (rep,) = [r for r in _reports() if r["preset"] == preset]
    with warnings.catch_warnings(), local_executor(2) as ex:
        warnings.simplefilter("ignore")
        assert _check(rep, by, make_runner(ex)) == []


def test_the_levels_a_claim_is_checked_at():
    bits = {"level": 8.0, "worse": -1, "unit": "bits", "per_replicate": [8.0, 8.0]}
    assert _levels(bits) == ("fixed", 8.0, 7.0)
    assert _levels({**bits, "per_replicate": [7.0, 9.0]}) == ("random", 9.0, 7.0)
    q = {"level": 50.0, "worse": -1, "unit": "Q (1)", "per_replicate": [40.0, 60.0]}
    assert _levels(q) == ("random", 100.0, 25.0)
    t = {"level": 10.0, "worse": 1, "unit": "K", "per_replicate": [10.0, None, 10.0]}
    assert _levels(t) == ("fixed", 10.0, 20.0)
