"""JSON Schemas of the specs people write, and the ``physim schema KIND`` command.

:data:`SCHEMAS` is the one table from a spec kind's name to the pydantic model (or annotated
union) that validates it; ``physim schema KIND`` prints that model's JSON Schema. Every field
carries its description, and every physical field's description ends in its SI unit (``"integrator
step δ, s"``; ``(1)`` marks a dimensionless number), so the schema doubles as the reference of
units. A new kind of spec (e.g. a study) becomes visible by adding one entry; the device kinds
are the registered families' (:data:`physim.families.FAMILIES`), listed with their ``summary``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from physim.families import FAMILIES


def _device():
    from physim.specs import DeviceSpec

    return DeviceSpec


def _protocol():
    from physim.protocol.specs import ProtocolSpec

    return ProtocolSpec


def _nonideal():
    from physim.instrument.specs import NonidealSpec

    return NonidealSpec


def _train():
    from physim.hssm.config import TrainSpec

    return TrainSpec


def _study():
    from physim.study.spec import StudySpec

    return StudySpec


def _family_spec(kind) -> Callable[[], Any]:
    return lambda: kind.spec


#: spec kind → (what it describes, a function returning its model); the imports of the other
#: spec modules stay lazy
SCHEMAS: dict[str, tuple[str, Callable[[], Any]]] = {
    "device": ("any device TOML (discriminated on `kind`)", _device),
    **{k.name: (k.summary or f"device: {k.name}", _family_spec(k)) for k in FAMILIES.ordered()},
    "protocol": ("an experimental sequence (protocols/*.toml)", _protocol),
    "nonideal": ("instrument non-idealities (`--nonideal FILE`)", _nonideal),
    "train": ("an HSSM training config (`physim train --config FILE`)", _train),
    "study": ("a robustness study (`physim sweep run STUDY`, studies/*.toml)", _study),
}


def json_schema(kind: str) -> dict:
    """The JSON Schema (draft 2020-12, as pydantic writes it) of spec ``kind``."""
    if kind not in SCHEMAS:
        raise KeyError(
            f"unknown spec kind {kind!r}: pick one of {', '.join(SCHEMAS)} (`physim schema` lists "
            "them)"
        )
    schema = TypeAdapter(SCHEMAS[kind][1]()).json_schema()
    schema.setdefault("title", kind)
    return schema


def _cmd_schema(args: argparse.Namespace) -> int:
    if args.kind is None:
        for name, (what, _) in SCHEMAS.items():
            print(f"{name:<20} {what}")
        return 0
    print(json.dumps(json_schema(args.kind), indent=2, ensure_ascii=False))
    return 0


def register(subparsers) -> None:
    """Add ``schema`` to ``physim``'s sub-parsers."""
    p = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of a spec kind, units in the field descriptions",
        description="Print the JSON Schema of a spec (device kinds, protocol, nonideal, train). "
        "Without KIND, list the kinds.",
    )
    p.add_argument("kind", nargs="?", choices=list(SCHEMAS), metavar="KIND", help="spec kind")
    p.set_defaults(func=_cmd_schema)
