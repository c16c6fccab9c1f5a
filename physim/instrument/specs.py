"""Non-ideality specs: what a user writes to describe an imperfect instrument.

A :class:`NonidealSpec` is a list of *sources*, each a pydantic model discriminated by ``kind``
and carrying its own ``seed`` when it draws random numbers, so that switching one source on or
off never changes the draws of another. Every source at its zero value (Q = ∞, T = 0, no
spread, no drift, perfect flip, converters absent) reproduces the ideal run bit for bit.

TOML form::

    name = "pcb-lc"
    [[sources]]
    kind = "dissipation"
    quality_factor = 100.0
    temperature = 300.0
    seed = 1
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Union

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from physim.instrument.sources import SOURCES, noise_streams
from physim.instrument.sources.adc import ADCSpec
from physim.instrument.sources.dac import DACSpec
from physim.instrument.sources.dissipation import BOLTZMANN, Q_MIN, DissipationSpec
from physim.instrument.sources.drift import DriftSpec
from physim.instrument.sources.flip_error import FlipErrorSpec
from physim.instrument.sources.mismatch import MismatchSpec
from physim.instrument.sources.numerics import NumericsSpec
from physim.spec_base import SpecModel
from physim.specs import SpecError, catalogue_dir

__all__ = [
    "ADCSpec",
    "BOLTZMANN",
    "DACSpec",
    "DissipationSpec",
    "DriftSpec",
    "FlipErrorSpec",
    "MismatchSpec",
    "NOISE_STREAMS",
    "NonidealError",
    "NonidealSpec",
    "NumericsSpec",
    "Q_MIN",
    "SOURCE_KINDS",
    "SourceSpec",
    "load_nonideal",
    "nonideal_catalogue",
    "nonideal_from_json",
    "parse_nonideal",
    "reseed",
]

#: every source kind: physim's own (:mod:`physim.instrument.sources`) and installed plugins'
SOURCE_KINDS: tuple[str, ...] = SOURCES.names()
#: the discriminated union of every registered source spec (built once, here, from the registry)
SourceSpec = Annotated[
    Union[tuple(SOURCES.get(k).spec_class for k in SOURCE_KINDS)],  # noqa: UP007
    Field(discriminator="kind"),
]


class NonidealSpec(SpecModel):
    """The imperfections of one simulated instrument (empty = ideal)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=False
    )

    name: str = Field("ideal", description="label used in logs and plots")
    description: str = ""
    sources: list[SourceSpec] = Field(default_factory=list, description="non-ideality sources")

    @model_validator(mode="after")
    def _unique(self) -> NonidealSpec:
        seen: set[tuple[str, str]] = set()
        for i, s in enumerate(self.sources):
            key = (s.kind, getattr(s, "target", ""))
            if key in seen:
                what = f"{s.kind} (target {key[1]})" if key[1] else s.kind
                raise ValueError(f"sources[{i}]: a second {what} source; merge them into one entry")
            seen.add(key)
        # rules between sources belong to the source kind that imposes them
        for s in self.sources:
            SOURCES.get(s.kind).check(s, self)
        return self

    def get(self, kind: str, target: str | None = None):
        """The source of ``kind`` (and ``target``), or ``None``."""
        for s in self.sources:
            if s.kind == kind and (target is None or getattr(s, "target", None) == target):
                return s
        return None


_ADAPTER: TypeAdapter = TypeAdapter(NonidealSpec)


class NonidealError(SpecError):
    """A non-ideality file failed validation; the message names field, value and fix."""


def _format(err: ValidationError, source: str) -> str:
    lines = [f"invalid non-ideality spec {source}:"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        got = e.get("input")
        got_s = "a table" if isinstance(got, dict) else repr(got)
        msg = e["msg"]
        if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            msg = f"{msg}; valid kinds: {', '.join(SOURCE_KINDS)}"
        if e["type"] == "extra_forbidden":
            msg = f"{msg}; remove it or check the spelling of the field name"
        lines.append(f"  {loc}: {msg} (got {got_s})")
    return "\n".join(lines)


def parse_nonideal(data: dict, source: str = "(mapping)") -> NonidealSpec:
    """Validate a mapping as a :class:`NonidealSpec`."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        raise NonidealError(_format(err, source)) from None


def nonideal_from_json(text: str) -> NonidealSpec:
    try:
        return _ADAPTER.validate_json(text)
    except ValidationError as err:
        raise NonidealError(_format(err, "(json)")) from None


def nonideal_catalogue() -> dict[str, Path]:
    """Catalogue name → TOML path of the shipped technology presets, sorted by name."""
    return {p.stem: p for p in sorted(catalogue_dir("nonideal").glob("*.toml"))}


def load_nonideal(path: str | Path | None) -> NonidealSpec:
    """A non-ideality spec from a catalogue name (``pcb-c0g``) or a TOML file (``None`` = the
    ideal instrument)."""
    if path is None:
        return NonidealSpec()
    name = str(path)
    path = Path(path)
    if not path.exists():
        presets = nonideal_catalogue()
        if path.suffix == ".toml" or name not in presets:
            raise FileNotFoundError(
                f"no non-ideality file {name!r} and no preset of that name; presets: "
                f"{', '.join(presets)} (list them with `physim nonideals`)"
            )
        path = presets[name]
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise NonidealError(f"{path}: not valid TOML: {err}") from None
    return parse_nonideal(data, str(path))


# Fixed stream numbers of every random source, so that a source's seed depends only on its kind
# (and converter target) and never on the order or presence of the other sources; each source
# class declares its own (physim.instrument.sources), the instrument's preparation is stream 0.
NOISE_STREAMS: dict[tuple[str, str], int] = noise_streams()


def _stream_seed(seq: np.random.SeedSequence, key: tuple[str, str]) -> int:
    child = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, NOISE_STREAMS[key]))
    return int(child.generate_state(1, dtype=np.uint64)[0])


def reseed(nonideal: NonidealSpec, seq: np.random.SeedSequence) -> tuple[NonidealSpec, int]:
    """Re-draw the seed of every random source from one ``numpy.random.SeedSequence``.

    Each source's new seed comes from its own child stream ``NOISE_STREAMS[(kind, target)]`` of
    ``seq`` (mismatch draw, thermal noise, drift, flip error, each ADC's noise and dither), so
    adding or removing one source never changes another's draws.

    Returns
    -------
    (NonidealSpec, int)
        The spec with new seeds, and the seed of the instrument's own draws (thermal state
        preparation) to pass as ``Instrument(..., seed=...)``.
    """
    sources = []
    for s in nonideal.sources:
        if "seed" in type(s).model_fields:
            s = s.model_copy(update={"seed": _stream_seed(seq, (s.kind, getattr(s, "target", "")))})
        sources.append(s)
    return nonideal.model_copy(update={"sources": sources}), _stream_seed(seq, ("prepare", ""))
