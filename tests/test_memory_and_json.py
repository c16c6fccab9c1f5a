"""One memory budget refuses huge allocations up front; JSON output is strict."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import physim
from physim import jsonio, memory
from physim.memory import ENV_VAR, MemoryBudgetError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1000", 1000), ("8GB", 8e9), ("512MiB", 512 << 20), ("1.5 GiB", 1.5 * (1 << 30))],
)
def test_budget_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv(ENV_VAR, raw)
    assert memory.budget_bytes() == int(expected)


def test_budget_as_a_fraction_and_default(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "0.25")
    assert memory.budget_bytes() == int(0.25 * memory.total_memory())
    monkeypatch.delenv(ENV_VAR)
    assert memory.budget_bytes() == int(memory.DEFAULT_FRACTION * memory.total_memory())


def test_bad_budget_says_the_forms(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "lots")
    with pytest.raises(MemoryBudgetError, match=r"PHYSIM_MEMORY_BUDGET must be bytes.*got 'lots'"):
        memory.budget_bytes()


def test_huge_sizes_are_refused_before_allocating(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "64MiB")
    dev = physim.load_device("chain-16")
    with pytest.raises(MemoryBudgetError, match=r"for 1000000000000 steps.*7.28 TiB.*64 MiB"):
        physim.simulate(physim.load_device("two-mass"), None, n_steps=10**12)
    with pytest.raises(MemoryBudgetError, match=r"P = 10000000 modes.*lower n_modes"):
        physim.parse_spec(
            {"kind": "linhru", "name": "big", "n_modes": 10**7, "n_inputs": 8}
        ).build()
    from physim.protocol.specs import parse_protocol
    from physim.protocol.task import build_task

    proto = physim.protocol.specs.load_protocol("rhel-centred").model_dump()
    proto["task"]["n_steps"] = 10**12
    spec = parse_protocol(proto)
    with pytest.raises(MemoryBudgetError, match=r"task of 1000000000000 steps.*n_steps"):
        build_task(dev, spec.task, spec.loss)


def test_strict_json_maps_non_finite_to_null_and_flags_it():
    text = jsonio.dumps({"a": 1.0, "b": [math.nan, 2.0], "c": {"d": np.float64(np.inf)}})
    data = json.loads(text, parse_constant=lambda c: pytest.fail(c))
    assert data["b"] == [None, 2.0] and data["c"]["d"] is None
    assert data["non_finite"] == ["b[0] = nan", "c.d = inf"]
