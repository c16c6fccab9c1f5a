"""Study measures: one module per kind, registered in :data:`MEASURES` (see :mod:`.base`).
Importing this package registers physim's own kinds; installed plugins (``physim.measures``
entry points) are loaded the first time the registry is read."""

from physim.study.measures import gradient, offline_vs_insitu, train
from physim.study.measures.base import (
    MEASURES,
    Measure,
    MetricTable,
    Point,
    metric_info,
    register_measure,
)

__all__ = [
    "MEASURES",
    "Measure",
    "MetricTable",
    "Point",
    "gradient",
    "metric_info",
    "offline_vs_insitu",
    "register_measure",
    "train",
]
