"""Fuzz every catalogue spec: each mutation either runs or is refused by a message naming the field.

A mutation replaces one leaf of a spec (devices, protocols, a non-ideality spec with every source
kind, training configurations) by a hostile value, deletes a key or adds an unknown one; the
result is parsed and, when accepted, built and run for a few steps. Allowed outcomes:

* success — and then no float of the accepted spec is NaN, and none is ±inf outside
  :data:`~physim.spec_base.InfFloat` fields (Q = inf);
* a ``ValueError`` (spec, stability, memory) whose message names the mutated field;
* a :class:`~physim.errors.NumericalFault` while running (loud, with run and step).

Anything else (TypeError, OverflowError, IndexError, a traceback of physim's own) fails.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import physim
from physim.errors import NumericalFault
from physim.hssm.config import PRESETS, parse_train_spec
from physim.hssm.model import HSSM
from physim.instrument.hardware import Instrument
from physim.instrument.specs import parse_nonideal
from physim.protocol.engine import run_protocol
from physim.protocol.specs import TaskSpec, load_protocol, parse_protocol, protocol_catalogue
from physim.protocol.task import build_task
from physim.spec_base import with_updates
from physim.specs import load_spec, parse_spec
from physim.stability import StabilityWarning

DEVICES = {n: load_spec(n).model_dump(mode="python") for n in physim.catalogue()}
PROTOCOLS = {n: load_protocol(n).model_dump(mode="python") for n in protocol_catalogue()}
NONIDEAL = {
    "name": "every-source",
    "sources": [
        {"kind": "dissipation", "quality_factor": 200.0, "temperature": 1e-3, "seed": 1},
        {"kind": "mismatch", "relative_dtod": 0.01, "input_dtod": 0.01, "seed": 2},
        {"kind": "drift", "model": "one_over_f", "relative_std": 1e-3, "seed": 3},
        {"kind": "flip_error", "gain_error": 1e-3, "timing_std": 1e-4, "seed": 4},
        {"kind": "dac", "target": "parameters", "bits": 12},
        {"kind": "dac", "target": "drive", "bits": 12, "full_scale": 4.0},
        {"kind": "adc", "target": "readout", "bits": 14, "noise_lsb": 0.5, "seed": 5},
        {"kind": "adc", "target": "accumulator", "bits": 20, "dither": True, "seed": 6},
    ],
}
TRAIN = {n: s.model_dump(mode="python") for n, s in PRESETS.items()}
#: a few steps: every mutation runs end to end in milliseconds
N_STEPS = 6

HOSTILE = st.sampled_from(
    [
        math.nan,
        math.inf,
        -math.inf,
        0,
        0.0,
        -0.0,
        -1,
        -1.0,
        1e300,
        -1e300,
        1e-300,
        5e-324,
        10**12,
        2.5,
        True,
        None,
        "x",
        "",
        [],
        [math.nan],
        {"a": 1},
        complex(1, 1).real,
    ]
)


def _leaves(obj, path=()):
    """Paths to every leaf (and every list / table, which can be replaced whole)."""
    out = [path] if path else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _leaves(v, (*path, k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out += _leaves(v, (*path, i))
    return out


def _set(obj, path, value, delete=False):
    if isinstance(obj, tuple):
        obj = list(obj)
    if len(path) == 1:
        if delete and isinstance(obj, dict):
            obj.pop(path[0], None)
        else:
            obj[path[0]] = value
        return obj
    obj[path[0]] = _set(obj[path[0]], path[1:], value, delete)
    return obj


def _copy(obj):
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_copy(v) for v in obj]
    return obj


@st.composite
def mutations(draw, base: dict):
    data = _copy(base)
    paths = _leaves(data)
    how = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
    if how == "add" or not paths:
        tables = [()] + [p for p in paths if isinstance(_get(data, p), dict)]
        where = draw(st.sampled_from(tables))
        key = "surplus_field"
        if where:
            _get(data, where)[key] = 1.0
        else:
            data[key] = 1.0
        return data, (*where, key)
    path = draw(st.sampled_from(paths))
    if how == "delete":
        return _set(data, path, None, delete=True), path
    return _set(data, path, draw(HOSTILE)), path


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def _names(path) -> list[str]:
    return [p for p in path if isinstance(p, str)]


#: every key name a spec can have: a cross-field check (an estimator naming a record that a
#: mutated step no longer produces) names the field that refers to the mutated one
ALL_KEYS = {
    k
    for base in (*DEVICES.values(), *PROTOCOLS.values(), NONIDEAL, *TRAIN.values())
    for p in _leaves(base)
    for k in _names(p)
} | {"kind", "type", "op"}


def _assert_names_field(err: Exception, path) -> None:
    msg = str(err)
    names = _names(path)
    if not names or any(n in msg for n in names):
        return
    named = [k for k in ALL_KEYS if f"{k}:" in msg or f"{k} =" in msg or f"{k}[" in msg]
    assert named, f"{path}: the message names no field: {msg}"


def _assert_finite(spec) -> None:
    """No NaN anywhere, ±inf only in InfFloat fields (quality_factor)."""
    for path in _leaves(spec.model_dump(mode="python")):
        v = _get(spec.model_dump(mode="python"), path)
        if isinstance(v, float) and not math.isfinite(v):
            assert not math.isnan(v), f"NaN accepted at {path}"
            assert "quality_factor" in _names(path), f"inf accepted at {path}"


def _device_run(spec) -> None:
    dev = spec.build()
    rng = np.random.default_rng(0)
    u = rng.normal(size=(N_STEPS, 1, dev.n_inputs)) if dev.n_inputs else None
    target = np.ones((N_STEPS, 1, dev.n_outputs))
    physim.rhel_gradient(dev, None, u, target, n_steps=N_STEPS, batch=1)


def _protocol_run(spec, device_name="chain-16") -> None:
    dev = physim.load_device(device_name)
    spec = with_updates(spec, task=with_updates(spec.task, n_steps=N_STEPS))
    task = build_task(dev, spec.task, spec.loss)
    run_protocol(Instrument(dev, None), spec, task=task)


def _nonideal_run(spec) -> None:
    dev = physim.load_device("lc-ladder-8")
    proto = load_protocol("rhel-centred")
    task = build_task(dev, TaskSpec(n_steps=N_STEPS, batch=1), proto.loss)
    run_protocol(Instrument(dev, spec), proto, task=task)


def _train_run(spec) -> None:
    net = HSSM.build(spec.model, 2, 2, "classification", spec.seed)
    params = net.init_params(spec.seed)
    X = np.random.default_rng(0).normal(size=(2, N_STEPS, 2))
    net.loss_and_grad(params, X, np.array([0, 1]), algo=spec.algo)


def _check(parse, run, data, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StabilityWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            spec = parse(data)
        except ValueError as err:
            _assert_names_field(err, path)
            return
        _assert_finite(spec)
        try:
            run(spec)
        except NumericalFault:
            return
        except ValueError as err:  # build-time checks: stability, memory, shapes
            _assert_names_field_or_physics(err, path)


def _assert_names_field_or_physics(err: Exception, path) -> None:
    msg = str(err)
    # a refused build names the field, or the physical quantity the field changed
    physics = ("dt·ω_max", "memory budget", "must be positive", "eps", "nudge", "shape")
    if any(p in msg for p in physics):
        return
    _assert_names_field(err, path)


_FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)
_FUZZ_SLOW = settings(_FUZZ, max_examples=300)


@pytest.mark.parametrize("name", sorted(DEVICES))
@_FUZZ
@given(data=st.data())
def test_fuzz_devices(name, data):
    mutated, path = data.draw(mutations(DEVICES[name]))
    _check(parse_spec, _device_run, mutated, path)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@_FUZZ
@given(data=st.data())
def test_fuzz_protocols(name, data):
    mutated, path = data.draw(mutations(PROTOCOLS[name]))
    _check(parse_protocol, _protocol_run, mutated, path)


@_FUZZ
@given(data=st.data())
def test_fuzz_nonideal(data):
    mutated, path = data.draw(mutations(NONIDEAL))
    _check(parse_nonideal, _nonideal_run, mutated, path)


@_FUZZ
@given(data=st.data())
def test_fuzz_training_configs(data):
    name = data.draw(st.sampled_from(sorted(TRAIN)))
    mutated, path = data.draw(mutations(TRAIN[name]))
    _check(parse_train_spec, _train_run, mutated, path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["devices", "protocols", "nonideal", "training"])
@_FUZZ_SLOW
@given(data=st.data())
def test_fuzz_many(kind, data):
    if kind == "devices":
        base, parse, run = (
            DEVICES[data.draw(st.sampled_from(sorted(DEVICES)))],
            parse_spec,
            _device_run,
        )
    elif kind == "protocols":
        base, parse, run = (
            PROTOCOLS[data.draw(st.sampled_from(sorted(PROTOCOLS)))],
            parse_protocol,
            _protocol_run,
        )
    elif kind == "nonideal":
        base, parse, run = NONIDEAL, parse_nonideal, _nonideal_run
    else:
        base, parse, run = (
            TRAIN[data.draw(st.sampled_from(sorted(TRAIN)))],
            parse_train_spec,
            _train_run,
        )
    mutated, path = data.draw(mutations(base))
    _check(parse, run, mutated, path)
