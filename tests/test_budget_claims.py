"""The budget tables (docs/answers.md, README verdicts): every claim checked by brute force.

``scripts/readme_budgets.py`` runs ``physim budget --by train`` for each technology preset on
its device and writes ``results/budget/PRESET.json`` (rendered by
``scripts/readme_results.py``). Here each claimed tolerance is rebuilt on chips the search
never saw:

* a source whose replicate chips all found the same level (no randomness: bits, Q alone) must
  pass on every fresh chip at the claim and fail on every one a step beyond it (one bit fewer,
  or 2× the level);
* a random source gives every chip its own tolerance (one measurement's noise realisation; on
  mems-array-8 the amplifier's spans 17× over 12 chips), so "2× beyond" still passes many chips
  and cannot be the check. The claim is the typical chip's level (a geometric mean) with a 90 %
  interval; it is rebuilt by the same per-chip search on 12 chips of another study seed, and the
  two geometric means must agree within 3 standard errors of their difference (Welch; a 0.3 %
  chance of a false alarm for log-normal spreads).

The full scan (every preset, both criteria) is ``slow``; the default suite checks the PCB
preset's gradient claims.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from physim.answers.budget import (
    Criterion,
    _outcome,
    _with_level,
    gradient_criterion,
    make_runner,
    point_task,
    tolerance,
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
#: the study seed of the fresh chips a random source's claim is rebuilt on
FRESH_SEED = 1000
FRESH_CHIPS = 12


def _reports() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def test_every_preset_names_a_catalogue_device_and_has_a_budget():
    devices = catalogue()
    for name in NONIDEALS.entries():
        spec = load_nonideal(name)
        assert spec.pairs_with in devices, (name, spec.pairs_with)
        assert (RESULTS / f"{name}.json").exists(), f"run scripts/readme_budgets.py --only {name}"


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


def _agree(claimed: list, fresh: list) -> tuple[bool, str]:
    """Welch comparison of two samples of per-chip levels in log space, at 3 standard errors."""
    a = np.log([x for x in claimed if x is not None])
    b = np.log([x for x in fresh if x is not None])
    if a.size < 2 or b.size < 2:
        return False, f"too few bracketed chips ({a.size}, {b.size})"
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    diff = abs(a.mean() - b.mean())
    return diff <= 3 * se, f"geometric means {math.exp(a.mean()):.3g} vs {math.exp(b.mean()):.3g}"


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
        if kind == "random":
            only = preset.model_copy(update={"sources": [src]})
            fresh = tolerance(
                device,
                protocol,
                only,
                0,
                replicates=FRESH_CHIPS,
                max_replicates=FRESH_CHIPS,
                seed=FRESH_SEED,
                run=run,
                criterion=crit,
                level=None if lv.field == SOURCES.get(src.kind).level_of(src).field else lv,
            )
            ok, what = _agree(t["per_replicate"], fresh["per_replicate"])
            if not ok:
                wrong.append(f"{t['source']} ({by}): fresh chips disagree: {what}")
            continue
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
        if "good" in outcome and not all(outcome["good"]):
            wrong.append(f"{t['source']} ({by}): fails at the claimed {good:g}: {outcome['good']}")
        if "bad" in outcome and any(outcome["bad"]):
            wrong.append(f"{t['source']} ({by}): passes a step beyond the claim, at {bad:g}")
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
