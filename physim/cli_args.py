"""Argument types and parser settings shared by every ``physim`` sub-command.

* :func:`count` reads a whole number also when written as ``1e12`` or ``2_000`` (the README
  writes long runs that way); ``1.5`` is refused, naming the value.
* :func:`settle` applies :func:`count` to every ``type=int`` option and lets an option take a negative number in scientific notation
  (``--eps -1e-3``): argparse's own pattern knows only ``-3`` and ``-0.5`` and reads ``-1e-3``
  as an unknown option, so the value's own check never ran.
"""

from __future__ import annotations

import argparse
import re

#: negative numbers including exponents (argparse's default misses ``-1e-3`` and ``-1E5``)
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def count(text: str) -> int:
    """A whole number: ``200``, ``2_000``, ``1e12``; not ``1.5`` nor ``abc``."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r} (= {value:g})")
    return int(value)


def settle(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Apply both rules to ``parser`` and every sub-parser, once all are registered: each
    ``type=int`` option reads whole numbers through :func:`count`, and ``-1e-3`` is a value."""
    parser._negative_number_matcher = NEGATIVE_NUMBER  # the attribute argparse consults
    for action in parser._actions:
        if action.type is int:
            action.type = count
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(p): p for p in action.choices.values()}.values():
                settle(sub)
    return parser
