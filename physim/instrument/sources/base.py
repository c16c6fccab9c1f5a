"""What a non-ideality source kind declares: its spec class and its hooks on the instrument.

A kind is a :class:`Source` subclass registered in :data:`SOURCES` under its ``kind`` name
(physim's own kinds in this package, one module each; a user's package through the
``physim.sources`` entry-point group). Everything that lists source kinds is derived from the
registry: the pydantic union of :class:`~physim.instrument.specs.NonidealSpec`, ``physim
schema``, the study's source models and axis paths, the budget's levels and search directions,
the noise-stream numbers and the SPICE export's list of what a netlist realises.

An :class:`~physim.instrument.hardware.Instrument` builds one object per source of its spec
and calls, at each hook of an experiment, the objects whose class overrides that hook, in
ascending ``order``:

=================  ==========================================================================
``physics``        build the chip: element values ``w`` and input matrix ``B`` at θ (mismatch,
                   drift); return the changed arrays or ``None`` for "unchanged"
``built``          after the element values changed (the bath's O-step matrices)
``program``        θ on its way to the chip (parameter DAC)
``prepare``        start of a physical run (drift advance); return True when ``physics`` must
                   be re-evaluated
``drive``          the drive signal on its way to the chip (drive DAC)
``flip``           before the momentum flip (flip error); return the flip's gain factor
``kick``           a momentum kick on its way to the chip
``read``           a measurement on its way to the controller (``target`` "readout" or
                   "accumulator"); analog sources act before converters (lower ``order``)
=================  ==========================================================================

A source whose spec is at its zero value (:meth:`Source.is_zero`) is not called at all, so the
instrument with every source at zero runs exactly the twin's arithmetic.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from physim.registry import Registry
from physim.spec_base import InfFloat, Seed, SpecModel

if TYPE_CHECKING:
    from physim.instrument.converters import Reading
    from physim.instrument.hardware import Instrument

__all__ = [
    "HOOKS",
    "InfFloat",
    "Level",
    "NonNeg",
    "SOURCES",
    "Seed",
    "Source",
    "SpecModel",
    "register_source",
    "source_label",
]

NonNeg = Annotated[float, Field(ge=0)]

#: the hooks of an experiment, in the order the module docstring describes them
HOOKS = ("physics", "built", "program", "prepare", "drive", "flip", "kick", "read")


@dataclass(frozen=True)
class Level:
    """The knob of one source that the budget's tolerance search turns.

    ``worse`` is +1 when a larger value is a worse chip (σ, drift) and −1 when a smaller one is
    (Q, bits). ``lo``/``hi`` bound the search; ``integer`` levels are searched on integers.
    """

    field: str
    unit: str
    worse: int
    lo: float
    hi: float
    integer: bool = False


class Source:
    """One non-ideality source kind (subclass it; see the module docstring).

    Class attributes
    ----------------
    kind
        The ``kind`` tag of its spec.
    spec_class
        The pydantic model of its spec (``kind: Literal[...]``; a ``seed`` field when it draws
        random numbers; a ``target`` field when one chip can hold one source per target).
    targets
        The values of its ``target`` field, or ``("",)`` for a kind without targets.
    streams
        Noise-stream number per target (``reseed`` draws each source's seed from its own child
        stream). ``None``: derived from the kind's name, stable across physim versions and
        independent of the other kinds installed.
    levels
        The budget's searchable knob per target (absent: nothing to search).
    spice
        The targets a SPICE netlist realises (the rest are reported as instrument-only).
    order
        Position among the sources acting at the same hook (mismatch 10, drift 20, analog
        sources 50, converters 90).
    """

    kind: ClassVar[str]
    spec_class: ClassVar[type[SpecModel]]
    targets: ClassVar[tuple[str, ...]] = ("",)
    streams: ClassVar[dict[str, int] | None] = None
    levels: ClassVar[dict[str, Level]] = {}
    spice: ClassVar[frozenset[str]] = frozenset()
    order: ClassVar[int] = 50

    def __init__(self, spec: Any, instrument: Instrument):
        self.spec = spec
        self.instrument = instrument

    # ------------------------------------------------------------------ declarations
    @classmethod
    def is_zero(cls, spec: Any) -> bool:
        """Whether ``spec`` is this kind's zero value (the source is then skipped)."""
        return False

    @classmethod
    def check(cls, spec: Any, nonideal: Any) -> None:
        """Raise ``ValueError`` when ``spec`` cannot be combined with the other sources of
        ``nonideal`` (a :class:`~physim.instrument.specs.NonidealSpec`); default: no rule."""
        return None

    @classmethod
    def level_of(cls, spec: Any) -> Level | None:
        """The knob the budget searches for ``spec`` (default: ``levels`` of its target)."""
        return cls.levels.get(getattr(spec, "target", "") or "")

    @classmethod
    def extra_levels(cls, spec: Any) -> list[Level]:
        """Further knobs the budget searches at the source's own level (a bath temperature)."""
        return []

    @classmethod
    def stream(cls, target: str = "") -> int:
        """The noise-stream number of this kind (and target)."""
        if cls.streams is not None and target in cls.streams:
            return cls.streams[target]
        # past the built-in numbers; crc32 is stable across processes (unlike hash())
        return 1024 + zlib.crc32(f"{cls.kind}/{target}".encode()) % (1 << 30)

    @classmethod
    def has_seed(cls) -> bool:
        return "seed" in cls.spec_class.model_fields

    # ------------------------------------------------------------------ hooks (default: none)
    def physics(self, w: np.ndarray, B: np.ndarray):
        return None, None

    def built(self, phys) -> None:
        return None

    def program(self, theta: np.ndarray, groups: list[slice]) -> np.ndarray:
        return theta

    def prepare(self) -> bool:
        return False

    def drive(self, u: np.ndarray) -> np.ndarray:
        return u

    def flip(self) -> float:
        return 1.0

    def kick(self, dp: np.ndarray) -> np.ndarray:
        return dp

    def read(self, target: str, name: str, reading: Reading) -> Reading:
        return reading

    # ------------------------------------------------------------------ export (not a hook)
    def spice_values(self) -> dict[str, Any]:
        """Fields of :class:`physim.spice.netlist.BuiltValues` this source sets in a SPICE
        export of the instance (asked of every source, acting or not; default: none). Element
        values and gains need none: they are read from the instrument's built physics."""
        return {}


def acts_at(cls: type[Source], hook: str) -> bool:
    """Whether ``cls`` overrides ``hook``."""
    return getattr(cls, hook) is not getattr(Source, hook)


#: every non-ideality source kind: physim's own and those of installed plugins
SOURCES: Registry[type[Source]] = Registry("non-ideality source", "physim.sources")


def register_source(cls: type[Source]) -> type[Source]:
    """Class decorator: check a :class:`Source` subclass and register it under its ``kind``."""
    fields = cls.spec_class.model_fields
    if "kind" not in fields:
        raise TypeError(f"{cls.__name__}.spec_class needs a kind: Literal[{cls.kind!r}] field")
    has_target = "target" in fields
    if has_target == (cls.targets == ("",)):
        raise TypeError(
            f"{cls.__name__}: declare targets = (...) exactly when the spec has a target field"
        )
    SOURCES.register(cls.kind, cls)
    return cls


def source_label(source: Any) -> str:
    """``kind`` or ``kind/target`` of a source spec."""
    target = getattr(source, "target", None)
    return f"{source.kind}/{target}" if target else source.kind


def noise_streams() -> dict[tuple[str, str], int]:
    """(kind, target) → stream number of every random source kind, plus the instrument's own
    ``("prepare", "")`` = 0; raises when two kinds claim one stream."""
    out: dict[tuple[str, str], int] = {("prepare", ""): 0}
    for kind, cls in SOURCES.items():
        if not cls.has_seed():
            continue
        for t in cls.targets:
            n = cls.stream(t)
            clash = [k for k, v in out.items() if v == n]
            if clash:
                raise ValueError(
                    f"noise stream {n} of source {kind}/{t} is taken by {clash[0]}; give the "
                    "source class its own streams = {...}"
                )
            out[(kind, t)] = n
    return out
