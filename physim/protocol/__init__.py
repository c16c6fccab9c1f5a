"""Protocols as data, the one engine that runs them, and estimators from records only."""

from physim.fidelity import fidelity
from physim.protocol.engine import run_protocol
from physim.protocol.estimate import estimate_gradient, ideal_gradient
from physim.protocol.specs import ProtocolSpec, load_protocol, parse_protocol, protocol_catalogue
from physim.protocol.task import Task, build_task

__all__ = [
    "ProtocolSpec",
    "Task",
    "build_task",
    "estimate_gradient",
    "fidelity",
    "ideal_gradient",
    "load_protocol",
    "parse_protocol",
    "protocol_catalogue",
    "run_protocol",
]
