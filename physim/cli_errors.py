"""How ``physim``'s command line reports an error: one line, never a traceback for user error.

Exit codes: 2 for bad input (a spec, a path, an option), 3 for a numerical fault of the
simulation (:class:`physim.errors.NumericalFault`), 130 for Ctrl-C. Anything else is a bug of
physim and keeps its traceback.
"""

from __future__ import annotations

import sys

from numba.core.errors import NumbaError
from pydantic import ValidationError

from physim.errors import NumericalFault

EXIT_USER = 2
EXIT_FAULT = 3
EXIT_INTERRUPT = 130

#: errors that bad input causes (a ValidationError is a ValueError; OSError covers
#: IsADirectoryError, FileExistsError, PermissionError and h5py's unreadable files)
USER_ERRORS = (ValueError, KeyError, OSError, ImportError, OverflowError, NumbaError)


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (multi-line spec errors joined by '; ')."""
    if isinstance(err, ValidationError):
        from physim.spec_base import validation_message

        return validation_message(err)
    if isinstance(err, KeyError) and err.args:
        msg = str(err.args[0])
    elif isinstance(err, OSError) and err.filename is not None and err.strerror:
        msg = f"{err.filename}: {err.strerror}"
    else:
        msg = str(err) or type(err).__name__
    if isinstance(err, NumbaError):
        msg = "a kernel rejected the input types: " + msg.splitlines()[0]
    parts = [p.strip() for p in msg.splitlines() if p.strip()]
    if len(parts) > 1 and parts[0].endswith(":"):
        return parts[0] + " " + "; ".join(parts[1:])
    return "; ".join(parts)


def report_error(command: str, err: BaseException) -> int:
    """Print ``err`` as one line on stderr and return the exit code; re-raise physim's bugs."""
    if isinstance(err, KeyboardInterrupt):
        print(f"physim {command}: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPT
    if isinstance(err, NumericalFault):
        print(f"physim {command}: numerical fault: {one_line(err)}", file=sys.stderr)
        return EXIT_FAULT
    if isinstance(err, USER_ERRORS):
        print(f"physim {command}: error: {one_line(err)}", file=sys.stderr)
        return EXIT_USER
    raise err
