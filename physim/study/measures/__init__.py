"""Study measures: one module per kind, registered in :data:`MEASURES` (see :mod:`.base`).
Importing this package imports every module in it, which registers physim's own kinds (adding
a kind is adding a module here); installed plugins (``physim.measures`` entry points) are
loaded the first time the registry is read."""

import importlib
import pkgutil

from physim.study.measures.base import (
    MEASURES,
    Measure,
    MetricTable,
    Point,
    metric_info,
    register_measure,
)

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "MEASURES",
    "Measure",
    "MetricTable",
    "Point",
    "metric_info",
    "register_measure",
]
