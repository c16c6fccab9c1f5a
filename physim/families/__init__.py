"""Device families: each is a registered :class:`Family` (spec class, numba kernels, hooks).

The built-in families register here, in a fixed order that fixes their family ids (network 0,
linhru 1, nonlinhru 2); third-party ones come from the ``physim.families`` entry-point group
(see :mod:`physim.families.base` and :mod:`physim.registry`).

To add a family: write its kernel module (the kernels of :data:`KERNELS`, optionally the fused
ones of :data:`FUSED_KERNELS`) and one module with its spec class and its registered
:class:`Family`; then import that module below (a built-in) or declare it as an entry point (a
package of your own). The ``DeviceSpec`` union, ``physim schema`` and the numba dispatch follow.
"""

from physim.families.base import FAMILIES, FUSED_KERNELS, KERNELS, Family

# isort: off
# the built-ins, imported for their registration, in family-id order (network 0, linhru 1,
# nonlinhru 2): oscillator_network, lc_network, linhru, nonlinhru
from physim.families import oscillator  # noqa: E402, F401
from physim.families import lc  # noqa: E402, F401
from physim.families import hru  # noqa: E402, F401

# isort: on

__all__ = ["FAMILIES", "FUSED_KERNELS", "KERNELS", "Family"]
