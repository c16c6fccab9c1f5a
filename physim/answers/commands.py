"""Sub-commands of ``physim`` for chip designers: ``nonideals`` and ``budget``.

``register(subparsers)`` adds them to an argparse sub-parser set; each sets ``func`` to a
function of the parsed arguments that returns the exit code.
"""

from __future__ import annotations

import argparse


def _cmd_nonideals(args: argparse.Namespace) -> int:
    from physim.instrument.specs import load_nonideal, nonideal_catalogue

    for name, path in nonideal_catalogue().items():
        spec = load_nonideal(path)
        kinds = ", ".join(
            s.kind + (f"/{s.target}" if getattr(s, "target", None) else "") for s in spec.sources
        )
        first = " ".join(spec.description.split()).split(". ")[0]
        print(f"{name:<22} [{kinds}]  {first}")
    return 0


def register(subparsers) -> None:
    """Add ``nonideals`` and ``budget`` to ``physim``'s sub-parsers."""
    p = subparsers.add_parser(
        "nonideals", help="list the technology presets of non-idealities (name first)"
    )
    p.set_defaults(func=_cmd_nonideals)
