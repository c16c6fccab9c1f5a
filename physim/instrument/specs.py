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

from pathlib import Path
from typing import Annotated, Union

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from physim.catalogues import Catalogue
from physim.instrument.energy import EnergySpec
from physim.instrument.sources import SOURCES, noise_streams
from physim.instrument.sources.adc import ADCSpec
from physim.instrument.sources.dac import DACSpec
from physim.instrument.sources.dissipation import BOLTZMANN, Q_MIN, DissipationSpec
from physim.instrument.sources.drift import DriftSpec
from physim.instrument.sources.flip_error import FlipErrorSpec
from physim.instrument.sources.mismatch import MismatchSpec
from physim.instrument.sources.numerics import NumericsSpec
from physim.spec_base import SpecError, SpecModel, format_validation_error

__all__ = [
    "ADCSpec",
    "BOLTZMANN",
    "DACSpec",
    "DissipationSpec",
    "DriftSpec",
    "EnergySpec",
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
    pairs_with: str | None = Field(
        None,
        description="the catalogue device this technology preset describes (the README's "
        "budget tables run each preset on it)",
    )
    sources: list[SourceSpec] = Field(default_factory=list, description="non-ideality sources")
    energy: EnergySpec | None = Field(
        None, description="per-technology flip-stage and reset figures (energy per update)"
    )

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
    return format_validation_error(err, "non-ideality spec", source, tags={"kind": SOURCE_KINDS})


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


#: the technology presets (``nonideal/``); see :mod:`physim.catalogues` for the lookup order
NONIDEALS = Catalogue("nonideal", "preset", "physim nonideals", parse_nonideal, NonidealError)


def nonideal_catalogue() -> dict[str, Path]:
    """Catalogue name → TOML path of the shipped technology presets, sorted by name."""
    return NONIDEALS.entries()


def load_nonideal(path: str | Path | None) -> NonidealSpec:
    """A non-ideality spec from a catalogue name (``pcb-c0g``) or a TOML file (``None`` = the
    ideal instrument)."""
    if path is None:
        return NonidealSpec()
    return NONIDEALS.load(path)


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
