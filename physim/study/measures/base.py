"""What a study measure kind declares: its spec, its run function, its metric table and plot
defaults.

A kind is a :class:`Measure` subclass registered in :data:`MEASURES` under its ``kind`` name
(physim's own in this package, one module each; a user's package through the
``physim.measures`` entry-point group). The study spec's ``[measure]`` union, the dispatch of
:func:`physim.study.task.run_point`, the variables of ``results.nc`` (units and long names)
and the defaults of ``physim sweep plot`` all come from the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from physim.registry import Registry
from physim.spec_base import SpecModel

#: name → (units, long name) of every variable a measure returns
MetricTable = dict[str, tuple[str, str]]


@dataclass(frozen=True)
class Point:
    """What a measure's run function gets: one point's built specs and its seeds.

    ``device_json`` / ``protocol_json`` are the point's spec JSON as the study sent it (a key
    for per-worker caches of references that depend on neither chip nor replicate); ``log`` is
    the path of the point's own H5MD log, or ``None``.
    """

    device: Any
    protocol: Any
    nonideal: Any
    measure: Any
    seed: int
    device_json: str
    protocol_json: str
    log: str | None = None


class Measure:
    """One study measure kind (subclass it and register it with :func:`register_measure`).

    Class attributes
    ----------------
    kind
        The ``kind`` tag of its spec.
    spec_class
        The pydantic model of the ``[measure]`` table (``kind: Literal[...]`` and its options).
    plot_metric
        The variable ``physim sweep plot`` draws by default.
    thresholds
        Metric → the level ``physim sweep plot`` marks (a line or a contour).
    threshold_notes
        Metric → what its threshold means, in a few words (the line's legend).
    bounds
        Metric → (low, high), the range its values can take (a yield in [0, 1]):
        ``physim sweep plot`` keeps the ± 1 std band of the replicates inside it.
    log_metrics
        Positive metrics ``physim sweep plot`` draws on a log axis (ratios over decades).
    finite
        Metrics that must be finite when present; a point returning a non-finite one is
        recorded as failed.
    """

    kind: ClassVar[str]
    spec_class: ClassVar[type[SpecModel]]
    plot_metric: ClassVar[str]
    thresholds: ClassVar[dict[str, float]] = {}
    threshold_notes: ClassVar[dict[str, str]] = {}
    bounds: ClassVar[dict[str, tuple[float, float]]] = {}
    log_metrics: ClassVar[tuple[str, ...]] = ()
    finite: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def metrics(cls, groups: tuple[str, ...]) -> MetricTable:
        """Every metric this measure returns, with (units, long name), in order; ``groups``
        are the device's parameter groups (for per-group metrics)."""
        raise NotImplementedError

    @classmethod
    def run(cls, point: Point) -> dict[str, float]:
        """Measure one point (one chip); returns metric name → value."""
        raise NotImplementedError


#: every study measure kind: physim's own and those of installed plugins
MEASURES: Registry[type[Measure]] = Registry("study measure", "physim.measures")


def register_measure(cls: type[Measure]) -> type[Measure]:
    """Class decorator: check a :class:`Measure` subclass and register it under its ``kind``."""
    if "kind" not in cls.spec_class.model_fields:
        raise TypeError(f"{cls.__name__}.spec_class needs a kind: Literal[{cls.kind!r}] field")
    MEASURES.register(cls.kind, cls)
    return cls


def metric_info(kind: str, groups: tuple[str, ...]) -> MetricTable:
    """Every metric a ``kind`` measurement returns, with (units, long name), in order."""
    return dict(MEASURES.get(kind).metrics(groups))
