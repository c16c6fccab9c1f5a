"""Non-ideality sources: one module per kind, registered in :data:`SOURCES` (see
:mod:`.base`). Importing this package imports every module in it, which registers physim's own
kinds (adding a kind is adding a module here); installed plugins (``physim.sources`` entry
points) are loaded the first time the registry is read."""

import importlib
import pkgutil

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

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

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
