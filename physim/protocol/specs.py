"""Protocols as data: an experimental sequence of steps, validated as a whole before it runs.

Steps are pydantic models discriminated by ``op``, one per registered step kind
(:data:`physim.protocol.steps.STEPS`, which also holds each step's sequence rules and engine
behaviour); the built-ins:

* ``prepare`` — start a physical run from the device's state, zero, a thermal state or a given
  state (one branch);
* ``drive`` — apply an input (the task's, an impulse, a step, or nothing) forward in time or
  replayed in reverse. A drive can carry readouts: ``measure`` (trajectory readout every
  ``every`` steps, O(L) memory) and ``integrate`` (integrating readout of ∂H½/∂θ, one
  accumulator per parameter, O(1) memory), and ``nudge`` (kick by ±β·e_k after each echo step);
* ``flip`` — reverse the momenta;
* ``split`` — copy the state into parallel branches with nudge signs (a simulation
  idealisation: a chip cannot be copied);
* ``kick`` — one momentum kick ±β·e_K by the error at the final forward state;
* ``measure`` — one snapshot of the readout now.

The nudge β is fixed once per protocol execution, at the end of the first measured forward run
of the task (``eps`` times the rms final momentum over the largest error when ``relative_eps``),
so that ± echoes are nudged by equal and opposite amounts even when runs differ.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from physim.catalogues import Catalogue
from physim.protocol.steps import (  # noqa: F401 (the built-in step specs, re-exported)
    STEPS,
    DriveStep,
    FlipStep,
    IntegrateSpec,
    KickStep,
    MeasureStep,
    PrepareStep,
    SequenceState,
    SplitStep,
)
from physim.spec_base import EPS_MIN, Seed, SpecError, SpecModel, format_validation_error


class TaskSpec(SpecModel):
    """The data a protocol runs on: smooth random inputs and a teacher device's outputs.

    ``teacher``: inputs are white noise smoothed over ``smoothing`` steps and scaled to
    ``input_std``; the target is the readout of the same device at θ_teacher = θ0 · (1 +
    teacher_spread · ξ). ``device``: the device spec's own built-in task (e.g. two-mass).
    """

    kind: Literal["teacher", "device"] = Field("teacher", description="where the task comes from")
    n_steps: int = Field(200, ge=1, description="sequence length L, steps")
    batch: int = Field(1, ge=1, description="sequences driven in parallel")
    input_std: float = Field(1.0, gt=0, description="rms of the input, input units")
    smoothing: int = Field(10, ge=1, description="moving-average length of the input, steps")
    teacher_spread: float = Field(0.1, ge=0, description="relative offset of the teacher θ (1)")
    seed: Seed = Field(0, description="seed of the task's inputs and teacher")


#: one protocol step: the union of the registered step kinds' specs, discriminated on ``op``
Step = Annotated[
    Union[tuple(k.spec for k in STEPS.ordered())],  # noqa: UP007 (a union built from a tuple)
    Field(discriminator="op"),
]
#: the valid ops, sorted (for messages)
STEP_OPS = tuple(sorted(STEPS.names()))


class EstimatorSpec(SpecModel):
    """How the gradient is formed from records: the sum of the named accumulator readings
    (each already in gradient units through its integrator gain), pulled back to θ."""

    kind: Literal["sum", "none"] = Field("sum", description="estimator")
    records: list[str] = Field(default_factory=list, description="accumulator records to sum")


class AutoEpsSpec(SpecModel):
    """How ``eps = "auto"`` calibrates ε (see :mod:`physim.protocol.autoeps`): the gradient is
    measured ``repeats`` times at each of ``n_eps`` log-spaced ε in [lo, hi]."""

    lo: float = Field(1e-6, gt=0, description="smallest calibration ε (same unit as eps)")
    hi: float = Field(1.0, gt=0, description="largest calibration ε (same unit as eps)")
    n_eps: int = Field(7, ge=3, le=25, description="calibration grid points (1)")
    repeats: int = Field(2, ge=2, le=16, description="measurements per grid point (1)")

    @model_validator(mode="after")
    def _order(self) -> AutoEpsSpec:
        if not self.lo < self.hi:
            raise ValueError(
                f"auto_eps needs lo < hi, got lo = {self.lo}, hi = {self.hi}; e.g. lo = 1e-6, hi = 1"
            )
        return self


class ProtocolSpec(SpecModel):
    """An experimental sequence (see module docstring)."""

    name: str = Field(min_length=1, description="catalogue name")
    description: str = ""
    loss: Literal["mse", "final"] = Field("mse", description="loss on the measured readout")
    eps: Annotated[float, Field(ge=EPS_MIN)] | Literal["auto"] = Field(
        1e-6,
        description="nudge strength ε, relative (1) unless relative_eps (then in the momentum "
        'unit), or "auto" to calibrate it on the instrument',
    )
    auto_eps: AutoEpsSpec = Field(
        default_factory=AutoEpsSpec, description='calibration grid of eps = "auto"'
    )
    relative_eps: bool = Field(True, description="ε relative to the final momenta")

    @field_validator("eps", mode="before")
    @classmethod
    def _eps_number_or_auto(cls, v):
        # one message for the union (a number or "auto") instead of one per member
        if isinstance(v, str):
            if v != "auto":
                raise ValueError(f'must be a number or "auto", got {v!r}')
            return v
        if isinstance(v, bool) or not isinstance(v, int | float) or not EPS_MIN <= v < math.inf:
            raise ValueError(
                f"must be a finite number greater than or equal to {EPS_MIN:.3g} (the smallest "
                f'relative nudge float64 resolves), or "auto", got {v!r}'
            )
        return v

    task: TaskSpec = Field(default_factory=TaskSpec, description="inputs and targets")
    steps: list[Step] = Field(min_length=1, description="the sequence")
    estimator: EstimatorSpec = Field(default_factory=lambda: EstimatorSpec(kind="none"))

    @model_validator(mode="after")
    def _check_sequence(self) -> ProtocolSpec:
        validate_sequence(self)
        return self


def validate_sequence(spec: ProtocolSpec) -> None:
    """Reject sequences that cannot run, with the reason (raises ValueError)."""
    steps = spec.steps
    if steps[0].op != "prepare":
        raise ValueError(
            f"steps[0] is a {steps[0].op!r}; a protocol must start with op = 'prepare' "
            "(the instrument's state is undefined before it)"
        )
    seq = SequenceState()
    for i, st in enumerate(steps):
        STEPS.get(st.op).check(st, seq, f"steps[{i}] ({st.op})")
    accumulators = seq.accumulators
    if spec.eps == "auto" and spec.estimator.kind != "sum":
        raise ValueError(
            'eps = "auto" calibrates ε from measured gradients, but this protocol has no '
            "gradient estimator; give a number for eps or add [estimator] kind = 'sum'"
        )
    if spec.estimator.kind == "sum":
        if not spec.estimator.records:
            raise ValueError("estimator: kind = 'sum' needs records = [accumulator names]")
        for r in spec.estimator.records:
            if r not in accumulators:
                raise ValueError(
                    f"estimator: record {r!r} is not an integrating readout of this protocol; "
                    f"available: {sorted(accumulators) or 'none'}"
                )


_ADAPTER: TypeAdapter = TypeAdapter(ProtocolSpec)


class ProtocolError(SpecError):
    """A protocol file failed validation; the message names the field, value and fix."""


def _format(err: ValidationError, source: str) -> str:
    return format_validation_error(err, "protocol", source, tags={"op": STEP_OPS})


def parse_protocol(data: dict, source: str = "(mapping)") -> ProtocolSpec:
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        raise ProtocolError(_format(err, source)) from None


def protocol_from_json(text: str) -> ProtocolSpec:
    try:
        return _ADAPTER.validate_json(text)
    except ValidationError as err:
        raise ProtocolError(_format(err, "(json)")) from None


#: the protocol catalogue (``protocols/``); see :mod:`physim.catalogues` for the lookup order
PROTOCOLS = Catalogue("protocols", "protocol", "physim protocols", parse_protocol, ProtocolError)


def protocol_catalogue() -> dict[str, Path]:
    """Catalogue name → TOML path of the shipped protocols."""
    return PROTOCOLS.entries()


def load_protocol(name_or_path: str | Path) -> ProtocolSpec:
    """A protocol from a catalogue name (``rhel-centred``) or a path to a TOML file."""
    return PROTOCOLS.load(name_or_path)
