"""The input of one study point: a frozen record, picklable for any executor."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to run one point, as spec JSON (the provenance of its log).

    Built by :meth:`physim.study.expand.Plan.task` and :func:`physim.answers.budget.point_task`;
    run by :func:`physim.study.task.run_point`. The seeds are resolved:
    :func:`physim.seeding.replicate_chip` has re-seeded every source of ``nonideal`` and given
    ``seed`` (the instrument's own draws) for the point's replicate.
    """

    #: point number in its plan (or batch); results are keyed by it
    index: int
    #: device spec JSON
    device: str
    #: protocol spec JSON
    protocol: str
    #: non-ideality spec JSON, every source seeded for the replicate
    nonideal: str
    #: measure spec JSON (``{"kind": "gradient"}``, ...)
    measure: str
    #: seed of the instrument's own draws (thermal state preparation)
    seed: int
    #: path of the point's own H5MD log, or None
    log: str | None = None

    def with_(self, **changes: Any) -> PointTask:
        """A copy with ``changes`` (e.g. ``index=`` or ``log=``)."""
        return replace(self, **changes)

    def measure_spec(self) -> dict[str, Any]:
        """The measure as a mapping."""
        return json.loads(self.measure)
