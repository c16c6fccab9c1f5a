"""Protocol steps as registered kinds: each brings its spec (``op``) and its behaviour.

A step kind is a :class:`Step` subclass registered in :data:`STEPS` under its ``op``; it
declares

* ``spec``: the pydantic model of the step (``op: Literal[name]``); the ``steps`` union of
  :class:`~physim.protocol.specs.ProtocolSpec` and the list of valid ops are built from the
  registry;
* :meth:`Step.check`: where in a sequence the step may stand (sequence validation, before
  anything runs), reading and updating a :class:`SequenceState`;
* :meth:`Step.allocate`: the arrays it allocates (the protocol's memory check);
* :meth:`Step.execute`: what it does to the instrument, given the engine's :class:`RunState`,
  and the records it measured.

:func:`physim.protocol.engine.run_protocol` stays the one interpreter: it owns the loop and the
run state and calls these hooks in order. The built-in steps are one module each in this
package — ``prepare``, ``drive``, ``flip``, ``split``, ``kick`` and ``measure`` (documented in
:mod:`physim.protocol.specs`), registered below in that order; a package adds one through the
``physim.steps`` entry-point group (see :mod:`physim.registry`)::

    [project.entry-points."physim.steps"]
    wait = "my_package.steps:Wait"

(``tests/plugins/duffing_family`` adds a ``probe`` step this way.) A step's ``execute`` reads
and writes only the :class:`RunState` and the instrument's operations; the engine never
branches on ``op``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, get_args

import numpy as np

from physim.protocol.records import Record
from physim.registry import Registry, RegistryError
from physim.spec_base import SpecModel

if TYPE_CHECKING:
    from physim.instrument.hardware import Instrument
    from physim.protocol.task import Task


@dataclass
class SequenceState:
    """What sequence validation knows at a step (reset by each ``prepare``)."""

    flipped: bool = False
    forward_done: bool = False
    measured_forward: bool = False
    split_done: bool = False
    kick_sign: int | None = None
    accumulators: set[str] = field(default_factory=set)
    records: set[str] = field(default_factory=set)

    def new_run(self) -> None:
        self.flipped = self.forward_done = self.measured_forward = self.split_done = False
        self.kick_sign = None


@dataclass
class MemoryTally:
    """Floats a protocol allocates, step by step (see ``check_protocol_memory``)."""

    task: Task
    n_inputs: int
    n_outputs: int
    total: int = 0
    branches: int = 1


@dataclass
class RunState:
    """The engine's state while it interprets one protocol (the controller's memory)."""

    instrument: Instrument
    protocol: Any
    task: Task
    u_task: np.ndarray
    check: bool
    signs: np.ndarray = field(default_factory=lambda: np.ones(1))
    beta: float | None = None
    dLdy: np.ndarray | None = None
    loss_value: float | None = None
    n_runs: int = 0
    n_steps: int = 0
    n_prepared: int = 0
    energy: float = 0.0
    #: work the drives delivered into the device, and received back from it, summed over
    #: each drive's trajectories by sign, and the friction loss so far, in the device's energy
    #: unit (None: it has none)
    work: float | None = None
    work_returned: float | None = None
    dissipated: float | None = None
    #: what a loss-compensating gain stage supplied during the echoes (same unit)
    compensation: float | None = None
    run: int = 0
    range_checked: bool = False

    @property
    def device(self):
        return self.instrument.device


class Step:
    """A registered protocol step kind (subclass, set ``name`` and ``spec``, register)."""

    #: the step's ``op``
    name: ClassVar[str]
    #: its pydantic model; ``op: Literal[name]``
    spec: ClassVar[type[SpecModel]]

    @classmethod
    def check(cls, st, seq: SequenceState, where: str) -> None:
        """Raise ValueError (naming ``where``) if ``st`` cannot run here; update ``seq``."""

    @classmethod
    def allocate(cls, st, mem: MemoryTally) -> None:
        """Add to ``mem.total`` the floats ``st`` allocates."""

    @classmethod
    def execute(cls, st, index: int, run: RunState) -> list[Record]:
        """Act on ``run.instrument``; return the records measured by this step."""
        raise NotImplementedError(f"protocol step {cls.name!r} has no execute()")


class StepRegistry(Registry[type[Step]]):
    """:class:`~physim.registry.Registry` of protocol steps; checks each kind's spec."""

    def validate(self, kind_cls: type[Step]) -> None:
        where = f"protocol step {kind_cls.__module__}.{kind_cls.__qualname__}"
        if not (isinstance(kind_cls, type) and issubclass(kind_cls, Step)):
            raise RegistryError(f"{where} must subclass physim.protocol.steps.Step")
        fields = getattr(getattr(kind_cls, "spec", None), "model_fields", None)
        if fields is None or "op" not in fields:
            raise RegistryError(f"{where}: spec must be a pydantic model with an `op` field")
        if get_args(fields["op"].annotation) != (kind_cls.name,):
            raise RegistryError(
                f"{where}: its spec's field op must be Literal[{kind_cls.name!r}], got "
                f"{fields['op'].annotation!r}"
            )
        if kind_cls.execute.__func__ is Step.execute.__func__:
            raise RegistryError(f"{where}: define execute(st, index, run)")


#: every protocol step: the built-ins below, then the ``physim.steps`` entry points
STEPS: StepRegistry = StepRegistry("protocol step", "physim.steps")


# isort: off
# the built-ins, imported for their registration, in the order of the steps union
from physim.protocol.steps import prepare  # noqa: E402, F401
from physim.protocol.steps import drive  # noqa: E402, F401
from physim.protocol.steps import flip  # noqa: E402, F401
from physim.protocol.steps import split  # noqa: E402, F401
from physim.protocol.steps import kick  # noqa: E402, F401
from physim.protocol.steps import measure  # noqa: E402, F401
from physim.protocol.steps.drive import DriveStep, IntegrateSpec  # noqa: E402
from physim.protocol.steps.flip import FlipStep  # noqa: E402
from physim.protocol.steps.kick import KickStep  # noqa: E402
from physim.protocol.steps.measure import MeasureStep  # noqa: E402
from physim.protocol.steps.prepare import PrepareStep  # noqa: E402
from physim.protocol.steps.split import SplitStep  # noqa: E402

# isort: on

__all__ = [
    "STEPS",
    "DriveStep",
    "FlipStep",
    "IntegrateSpec",
    "KickStep",
    "MeasureStep",
    "MemoryTally",
    "PrepareStep",
    "RunState",
    "SequenceState",
    "SplitStep",
    "Step",
    "StepRegistry",
]
