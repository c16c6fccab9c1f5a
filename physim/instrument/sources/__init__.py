"""Non-ideality sources: one module per kind, registered in :data:`SOURCES` (see
:mod:`.base`). Importing this package imports every module in it, which registers physim's own
kinds (adding a kind is adding a module here); installed plugins (``physim.sources`` entry
points) are loaded the first time the registry is read."""

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
from physim.registry import import_kind_modules

import_kind_modules(__name__, __path__)

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
    "noise_streams",
    "register_source",
    "source_label",
]
