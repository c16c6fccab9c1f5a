"""One memory budget for every large allocation, checked before it is made.

Every command and driver that allocates something the size of a sequence (inputs, targets,
readouts, recorded trajectories, echo records, a deep model's activations) first estimates the
bytes and calls :func:`check`, which refuses with the estimate and the fix instead of letting
the allocation fail (or the machine swap) later.

The budget is ``PHYSIM_MEMORY_BUDGET`` when set — bytes, or a number with a unit (``"8GB"``,
``"512MiB"``), or a fraction of the machine's memory (``"0.25"``) — and otherwise
:data:`DEFAULT_FRACTION` of the physical memory.
"""

from __future__ import annotations

import os
import re

import numpy as np

#: the environment variable that sets the budget (see module docstring)
ENV_VAR = "PHYSIM_MEMORY_BUDGET"
#: default budget as a fraction of physical memory: leaves room for the OS, the interpreter,
#: numba's compiled code and other processes on a shared machine
DEFAULT_FRACTION = 0.5
#: used when the physical memory cannot be read (non-POSIX): 8 GiB
FALLBACK_TOTAL = 8 << 30
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
    "TB": 1e12,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
    "TIB": 1 << 40,
}
_FLOAT = 8  # bytes per float64


class MemoryBudgetError(ValueError):
    """An allocation would exceed the memory budget (the message gives the estimate and fix)."""


def total_memory() -> int:
    """Physical memory of the machine, bytes."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return FALLBACK_TOTAL


def budget_bytes() -> int:
    """The memory budget in bytes (see module docstring)."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return int(DEFAULT_FRACTION * total_memory())
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)", raw)
    unit = m.group(2).upper() if m else None
    if m is None or unit not in _UNITS:
        raise MemoryBudgetError(
            f"{ENV_VAR} must be bytes, a size like 8GB or 512MiB, or a fraction of memory like "
            f"0.25, got {raw!r}"
        )
    value = float(m.group(1))
    if unit == "" and value <= 1.0:
        return int(value * total_memory())
    return int(value * _UNITS[unit])


def human(n_bytes: float) -> str:
    """Bytes in binary units, e.g. ``'3.2 GiB'``."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.3g} {unit}"
    return f"{int(n_bytes)} B"


def floats(*shapes: tuple[int, ...]) -> int:
    """Bytes of float64 arrays of the given shapes (exact integers: no overflow)."""
    return sum(_FLOAT * int(np.prod([int(d) for d in s], dtype=object)) for s in shapes)


def check(n_bytes: int, what: str, fix: str) -> int:
    """Refuse with :class:`MemoryBudgetError` when ``n_bytes`` exceeds the budget."""
    budget = budget_bytes()
    if n_bytes > budget:
        raise MemoryBudgetError(
            f"{what} needs about {human(n_bytes)}, above the memory budget of {human(budget)} "
            f"({ENV_VAR}, default {DEFAULT_FRACTION:.0%} of this machine's memory); {fix}"
        )
    return n_bytes
