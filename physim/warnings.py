"""The one warnings mechanism of physim: results that are probably wrong but not impossible.

A wrong number is worse than an error, but some results are only *probably* wrong — readings
below one ADC LSB, a junction driven far past 2π, a trivially ±1 cosine. Those are delivered
with a :class:`PhysimWarning` whose text says, in one line, what was received, what it means
and how to fix it, e.g.::

    adc (accumulator, 16 bits) reads the gradient at 0.3 LSB: the gradient is mostly rounding;
    raise eps to >= 3e-4 (now 1e-6) or use more bits

Filter them like any Python warning (``warnings.simplefilter("error", PhysimWarning)`` turns
them into exceptions; ``python -W error::physim.warnings.PhysimWarning`` from the shell).
"""

from __future__ import annotations

import warnings as _warnings


class PhysimWarning(UserWarning):
    """A result physim delivers but believes is probably wrong (see the message for the fix)."""


def warn(received: str, meaning: str, fix: str, *, stacklevel: int = 2) -> None:
    """Issue a :class:`PhysimWarning` reading ``"<received>: <meaning>; <fix>"``.

    Parameters
    ----------
    received
        What was measured or given, with its numbers (``"J1 winds 1.2e+06 turns"``).
    meaning
        What must hold and why the result is doubtful (``"the drive is 1.6e+04 × I_c"``).
    fix
        What to change, concretely (``"lower the source gain below 6.1e-08 A"``).
    stacklevel
        As for :func:`warnings.warn`, counted from the caller of this function.
    """
    _warnings.warn(f"{received}: {meaning}; {fix}", PhysimWarning, stacklevel=stacklevel + 1)


def cli_format(message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` for the command line: ``physim: warning: <message>``.

    A :class:`PhysimWarning` is addressed to the user, so the file and line of the library
    code that raised it are left out; other warnings keep Python's format.
    """
    if issubclass(category, PhysimWarning):
        return f"physim: warning: {message}\n"
    return _default_format(message, category, filename, lineno, line)


_default_format = _warnings.formatwarning
