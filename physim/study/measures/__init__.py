"""Study measures: one module per kind, registered in :data:`MEASURES` (see :mod:`.base`).
Importing this package imports every module in it, which registers physim's own kinds (adding
a kind is adding a module here); installed plugins (``physim.measures`` entry points) are
loaded the first time the registry is read."""

from physim.registry import import_kind_modules
from physim.study.measures.base import (
    MEASURES,
    Measure,
    MetricTable,
    Point,
    metric_info,
    register_measure,
)

import_kind_modules(__name__, __path__)

__all__ = [
    "MEASURES",
    "Measure",
    "MetricTable",
    "Point",
    "metric_info",
    "register_measure",
]
