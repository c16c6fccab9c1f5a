"""Non-ideality sources: one module per kind, registered in :data:`SOURCES` (see
:mod:`.base`). Importing this package registers physim's own kinds; installed plugins
(``physim.sources`` entry points) are loaded the first time the registry is read."""

from physim.instrument.sources import adc, dac, dissipation, drift, flip_error, mismatch, numerics
from physim.instrument.sources.base import (
    HOOKS,
    SOURCES,
    InfFloat,
    Level,
    NonNeg,
    Seed,
    Source,
    SpecModel,
    acts_at,
    noise_streams,
    register_source,
    source_label,
)

__all__ = [
    "HOOKS",
    "SOURCES",
    "InfFloat",
    "Level",
    "NonNeg",
    "Seed",
    "Source",
    "SpecModel",
    "acts_at",
    "adc",
    "dac",
    "dissipation",
    "drift",
    "flip_error",
    "mismatch",
    "noise_streams",
    "numerics",
    "register_source",
    "source_label",
]
