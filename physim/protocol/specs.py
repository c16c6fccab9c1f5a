"""Protocols as data: an experimental sequence of steps, validated as a whole before it runs.

Steps are pydantic models discriminated by ``op``:

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
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from physim.catalogues import Catalogue
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


class PrepareStep(SpecModel):
    op: Literal["prepare"]
    state: Literal["device", "zero", "thermal", "given"] = Field(
        "device", description="initial state of the run"
    )
    temperature: float | None = Field(
        None, ge=0, description="thermal state temperature, K (default: the bath's)"
    )
    q: list[float] | None = Field(None, description="given positions, device position unit")
    p: list[float] | None = Field(None, description="given momenta, device momentum unit")

    @model_validator(mode="after")
    def _given(self) -> PrepareStep:
        if (self.state == "given") != (self.q is not None and self.p is not None):
            raise ValueError("state = 'given' needs both q and p (and only then are they used)")
        return self


class IntegrateSpec(SpecModel):
    """Integrating readout: one accumulator of ∂H½/∂θ per parameter, read once at the end.

    ``gain`` sets the integrator's output gain so that it reads in gradient units:
    ``centred`` −δ·s/(2β), ``one_sided`` −δ·s/β (s = ``sign`` × the branch's sign), ``unit`` 1.
    ``combine = "differential"`` integrates Σ_branches sign·∂H½/∂θ in one accumulator.
    """

    name: str = Field(min_length=1, description="record name")
    gain: Literal["centred", "one_sided", "unit"] = Field("centred", description="output gain")
    sign: Literal[1, -1] = Field(1, description="extra sign of the gain")
    combine: Literal["branches", "differential"] = Field(
        "branches", description="one accumulator per branch, or one differential accumulator"
    )


class DriveStep(SpecModel):
    op: Literal["drive"]
    direction: Literal["forward", "reverse"] = Field("forward", description="time direction")
    input: Literal["task", "zero", "impulse", "step"] = Field("task", description="drive signal")
    amplitude: float = Field(1.0, description="impulse/step amplitude, input units")
    channel: int = Field(0, ge=0, description="input channel of an impulse or step")
    n_steps: int | None = Field(
        None, ge=1, description="length of a non-task drive, steps (default: the task's)"
    )
    nudge: bool = Field(False, description="kick ±β·e_k after each echo step (reverse only)")
    sign: Literal[1, -1] = Field(1, description="sign of the nudge (times the branch's sign)")
    measure: str | None = Field(None, description="trajectory readout record name")
    every: int = Field(1, ge=1, description="trajectory readout sampling, steps")
    integrate: IntegrateSpec | None = Field(None, description="integrating readout")


class FlipStep(SpecModel):
    op: Literal["flip"]


class SplitStep(SpecModel):
    op: Literal["split"]
    signs: list[Literal[1, -1]] = Field(
        default_factory=lambda: [1, -1], min_length=2, description="nudge sign of each branch"
    )


class KickStep(SpecModel):
    op: Literal["kick"]
    sign: Literal[1, -1] = Field(1, description="sign of the kick (times the branch's sign)")


class MeasureStep(SpecModel):
    op: Literal["measure"]
    name: str = Field(min_length=1, description="snapshot record name")


Step = Annotated[
    PrepareStep | DriveStep | FlipStep | SplitStep | KickStep | MeasureStep,
    Field(discriminator="op"),
]
STEP_OPS = ("drive", "flip", "kick", "measure", "prepare", "split")


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
    flipped = forward_done = measured_forward = split_done = False
    kick_sign: int | None = None
    accumulators: set[str] = set()
    records: set[str] = set()
    for i, st in enumerate(steps):
        where = f"steps[{i}] ({st.op})"
        if st.op == "prepare":
            flipped = forward_done = measured_forward = split_done = False
            kick_sign = None
        elif st.op == "flip":
            flipped = not flipped
        elif st.op == "split":
            if split_done:
                raise ValueError(f"{where}: the state is already split in this run")
            split_done = True
        elif st.op == "kick":
            if not measured_forward:
                raise ValueError(
                    f"{where}: a kick needs the error signal, which comes from a measured "
                    "forward drive of the task earlier in the same run (drive with measure = "
                    "'...' and every = 1)"
                )
            if not flipped:
                raise ValueError(
                    f"{where}: kick without a preceding flip; the nudge belongs to the echo, "
                    "which starts from the flipped final state — add {op = 'flip'} before it"
                )
            kick_sign = st.sign
        elif st.op == "measure":
            if st.name in records:
                raise ValueError(f"{where}: record name {st.name!r} is used twice")
            records.add(st.name)
        elif st.op == "drive":
            if st.input == "task" and st.n_steps is not None:
                raise ValueError(f"{where}: n_steps is the task's for input = 'task'; remove it")
            if st.direction == "reverse":
                if not flipped:
                    raise ValueError(
                        f"{where}: echo (reverse drive) without a preceding flip; replaying the "
                        "drive backwards only retraces the forward run after the momenta are "
                        "reversed — add {op = 'flip'} before it"
                    )
                if not forward_done:
                    raise ValueError(
                        f"{where}: a reverse drive replays a forward drive of the task, but "
                        "there is none earlier in this run"
                    )
                if st.input != "task":
                    raise ValueError(
                        f"{where}: a reverse drive replays the task; set input = 'task'"
                    )
            if st.nudge:
                if st.direction != "reverse":
                    raise ValueError(
                        f"{where}: nudge = true is only meaningful in an echo "
                        "(direction = 'reverse')"
                    )
                if not measured_forward:
                    raise ValueError(
                        f"{where}: nudging needs the error signal of a measured forward drive "
                        "(measure = '...', every = 1) earlier in this run"
                    )
                if kick_sign is not None and kick_sign != st.sign:
                    raise ValueError(
                        f"{where}: the echo is nudged with sign {st.sign} but was kicked with "
                        f"sign {kick_sign}; one echo has one nudge sign — make them equal"
                    )
            if st.integrate is not None:
                if st.integrate.combine == "differential" and not split_done:
                    raise ValueError(
                        f"{where}: a differential integrator combines parallel branches; add "
                        "{op = 'split'} before it or use combine = 'branches'"
                    )
                if st.integrate.name in accumulators | records:
                    raise ValueError(f"{where}: record name {st.integrate.name!r} is used twice")
                accumulators.add(st.integrate.name)
            if st.measure is not None:
                if st.measure in records | accumulators:
                    raise ValueError(f"{where}: record name {st.measure!r} is used twice")
                records.add(st.measure)
            if st.direction == "forward" and st.input == "task":
                if flipped:
                    raise ValueError(
                        f"{where}: a forward task drive after a flip runs the device backwards "
                        "in time; prepare a new run first"
                    )
                forward_done = True
                if st.measure is not None and st.every == 1:
                    measured_forward = True
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
