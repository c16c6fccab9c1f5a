"""Shared pieces of the pydantic specs people write (TOML / JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError


class SpecModel(BaseModel):
    """Base of every spec: unknown fields are errors, instances are immutable, and no float
    field (nor any float inside a list or tuple) accepts NaN or ±inf — except a field typed
    :data:`InfFloat`, whose description must say what inf means (e.g. Q = inf is lossless).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


#: a float that may be inf (never NaN in effect: the field's validator rejects it); its field
#: description must say what inf means
InfFloat = Annotated[float, Field(allow_inf_nan=True)]
#: seeds of numpy generators are non-negative integers
Seed = Annotated[int, Field(ge=0)]


#: a physical magnitude that is divided by (a mass, a capacitance, an inductance, a step): at
#: least the smallest normal float64, so that its inverse is finite (5e-324 kg would give inf)
def _normal(v: float) -> float:
    if v < np.finfo(np.float64).tiny:
        raise ValueError(f"must be at least 2.2e-308 so that its inverse is finite, got {v!r}")
    return v


Positive = Annotated[float, Field(gt=0), AfterValidator(_normal)]
#: the smallest relative nudge whose kick changes a momentum of the final state's size: one
#: float64 ulp relative (below it p ± ε·|p| rounds back to p)
EPS_MIN = float(np.finfo(np.float64).eps)


class RandomMatrixSpec(SpecModel):
    """A seeded random matrix: entries ~ N(0, (scale / sqrt(n_columns))²) or U[−scale, scale]."""

    kind: Literal["random"] = "random"
    distribution: Literal["normal", "uniform"] = Field("normal", description="entry distribution")
    scale: Annotated[float, Field(gt=0, description="entry scale, in the matrix's unit")] = 1.0
    seed: Seed = Field(0, description="seed of the generator that draws the entries")

    def draw(self, shape: tuple[int, int]) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        if self.distribution == "uniform":
            return rng.uniform(-self.scale, self.scale, size=shape)
        return rng.normal(0.0, self.scale / np.sqrt(max(1, shape[1])), size=shape)


class SinusoidTaskSpec(SpecModel):
    """A built-in task: follow target(t) = offset + amplitude · sin(2π f t + phase) on one output.

    Used by ``physim demo`` (the two-mass demo of the RHEL authors).
    """

    kind: Literal["sinusoid"] = "sinusoid"
    output: int = Field(0, ge=0, description="index of the readout output that must follow")
    offset: float = Field(0.0, description="target offset, in the readout unit")
    amplitude: float = Field(1.0, description="target amplitude, in the readout unit")
    frequency: float = Field(0.1, gt=0, description="target frequency, Hz")
    phase: float = Field(0.0, description="target phase, rad")
    duration: float = Field(10.0, gt=0, description="length of one run, s")

    def n_steps(self, dt: float) -> int:
        """Steps of one run at the integrator step ``dt``."""
        return int(round(self.duration / dt))

    def target(self, dt: float) -> tuple[int, np.ndarray]:
        n_steps = self.n_steps(dt)
        t = dt * np.arange(1, n_steps + 1)
        return n_steps, self.offset + self.amplitude * np.sin(
            2 * np.pi * self.frequency * t + self.phase
        )


def matrix_field(
    value: list[list[float]] | RandomMatrixSpec | None, shape: tuple[int, int], what: str
) -> np.ndarray:
    """Materialise a matrix given explicitly or as a random spec, checking its shape."""
    from physim import memory

    memory.check(
        memory.floats(shape),
        f"{what} of shape {shape}",
        f"lower the sizes that set {what}'s shape (e.g. n_inputs)",
    )
    if value is None:
        return np.zeros(shape)
    if isinstance(value, RandomMatrixSpec):
        return value.draw(shape)
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {arr.shape}")
    return arr


def vector_field(value: list[float] | None, n: int, what: str) -> np.ndarray:
    if value is None:
        return np.zeros(n)
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(
            f"{what} must have {n} entries, got {arr.shape[0] if arr.ndim else 'a scalar'}"
        )
    return arr


class SpecError(ValueError):
    """A spec file or mapping failed validation; the message names the field, value and fix."""


def _got(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    if isinstance(value, list) and len(text) > 60:
        return f"a list of {len(value)}"
    return text


def _problem(
    e: dict, tags: Mapping[str, Sequence[str]], skip: int, messages: Mapping[str, str]
) -> str:
    loc = ".".join(str(x) for x in e["loc"][skip:]) or "(top level)"
    if e["type"] in messages:
        return f"{loc}: {messages[e['type']]} (got {_got(e.get('input'))})"
    msg = e["msg"].removeprefix("Value error, ")
    ctx = e.get("ctx") or {}
    disc = str(ctx.get("discriminator", "")).strip("'")
    if e["type"] == "union_tag_invalid":
        valid = sorted(t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(","))
        msg += f"; valid {disc}s: {', '.join(valid)}"
    elif e["type"] == "union_tag_not_found":
        msg = (
            f"missing '{disc}'; add {disc} = one of {', '.join(sorted(tags[disc]))}"
            if disc in tags
            else f"missing '{disc}'; every entry here needs a {disc} field"
        )
    elif e["type"] == "extra_forbidden":
        msg += "; remove it or check the spelling of the field name"
    return f"{loc}: {msg} (got {_got(e.get('input'))})"


def format_validation_error(
    err: ValidationError,
    what: str,
    source: str = "",
    *,
    tags: Mapping[str, Sequence[str]] | None = None,
    skip: int = 0,
    messages: Mapping[str, str] | None = None,
) -> str:
    """The one message of a pydantic error, for every spec loader and the CLI.

    ``invalid <what> <source>:`` then one line per problem, ``  field.path: what must hold
    (got value)``: an unknown tag lists the valid ones, a missing tag says which to add (the
    valid values of discriminator ``d`` from ``tags[d]``), an unknown field asks to check its
    spelling. ``skip`` drops leading location parts (e.g. a union member's tag);
    ``messages`` replaces pydantic's message of an error type (e.g. ``extra_forbidden``).
    """
    head = f"invalid {what} {source}".rstrip() + ":"
    return "\n".join(
        [head, *("  " + _problem(e, tags or {}, skip, messages or {}) for e in err.errors())]
    )


def validation_message(err: ValidationError, source: str = "") -> str:
    """A pydantic error as one line (the CLI's form of :func:`format_validation_error`)."""
    text = format_validation_error(err, source or err.title)
    head, *lines = text.splitlines()
    return head + " " + "; ".join(line.strip() for line in lines)


def with_updates(spec: SpecModel, **changes) -> SpecModel:
    """A copy of ``spec`` with ``changes``, validated like the original (the one way to
    override a spec, e.g. from the command line: ``model_copy(update=...)`` skips validation).
    """
    return type(spec).model_validate({**spec.model_dump(), **changes})
