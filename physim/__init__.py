"""physim: simulate self-learning Hamiltonian hardware trained in situ by RHEL.

The names below load on first use (PEP 562), so that importing a light module such as
:mod:`physim.logs` does not import the numba kernels.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from physim._version import __version__

#: public name → the module that defines it
_EXPORTS = {
    "bptt_gradient": "physim.bptt",
    "loss_value": "physim.bptt",
    "Device": "physim.device",
    "FinalLoss": "physim.losses",
    "MSELoss": "physim.losses",
    "rhel_gradient": "physim.rhel",
    "Trajectory": "physim.simulate",
    "energy": "physim.simulate",
    "simulate": "physim.simulate",
    "catalogue": "physim.specs",
    "load_device": "physim.specs",
    "load_spec": "physim.specs",
    "parse_spec": "physim.specs",
}

__all__ = [
    "Device",
    "FinalLoss",
    "MSELoss",
    "Trajectory",
    "__version__",
    "bptt_gradient",
    "catalogue",
    "energy",
    "load_device",
    "load_spec",
    "loss_value",
    "parse_spec",
    "rhel_gradient",
    "simulate",
]

if TYPE_CHECKING:
    from physim.bptt import bptt_gradient, loss_value
    from physim.device import Device
    from physim.losses import FinalLoss, MSELoss
    from physim.rhel import rhel_gradient
    from physim.simulate import Trajectory, energy, simulate
    from physim.specs import catalogue, load_device, load_spec, parse_spec


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    try:  # a submodule used as an attribute (``physim.specs`` after ``import physim``)
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module 'physim' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    """``physim`` itself: importing the submodule ``physim.simulate`` must not replace the
    function ``physim.simulate`` (the import system sets the submodule as an attribute)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
