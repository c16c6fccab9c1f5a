"""Device specs: the discriminated union, TOML loading and the shipped catalogue.

``DeviceSpec`` is the union of the registered families' spec classes
(:data:`physim.families.FAMILIES`), discriminated on ``kind``: a family registered by a
package's entry point is a device kind like the built-ins.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Union

from pydantic import Field, TypeAdapter, ValidationError

from physim.device import Device
from physim.families import FAMILIES

#: every registered family's spec, discriminated on ``kind``
DeviceSpec = Annotated[
    Union[tuple(k.spec for k in FAMILIES.ordered())],  # noqa: UP007 (a union built from a tuple)
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter = TypeAdapter(DeviceSpec)


class SpecError(ValueError):
    """A spec file or mapping failed validation; the message names the field, value and fix."""


def _format(err: ValidationError, source: str) -> str:
    lines = [f"invalid device spec {source}:"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        got = e.get("input")
        got_s = repr(got) if not isinstance(got, dict) else "a table"
        msg = e["msg"]
        if e["type"] == "union_tag_invalid":
            msg += f"; valid kinds: {', '.join(sorted(_kinds()))}"
        elif e["type"] == "union_tag_not_found":
            disc = str(e.get("ctx", {}).get("discriminator", "'kind'")).strip("'")
            msg = (
                f"missing 'kind'; add kind = one of {', '.join(sorted(_kinds()))}"
                if disc == "kind"
                else f"missing '{disc}'; every entry here needs a {disc} field"
            )
        lines.append(f"  {loc}: {msg} (got {got_s})")
    return "\n".join(lines)


def _kinds() -> list[str]:
    return list(FAMILIES.names())


def parse_spec(data: dict, source: str = "(mapping)"):
    """Validate a mapping as a device spec."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        raise SpecError(_format(err, source)) from None


def spec_from_json(text: str):
    """Rebuild a spec from its JSON (the provenance stored in logs)."""
    try:
        return _ADAPTER.validate_json(text)
    except ValidationError as err:
        raise SpecError(_format(err, "(json)")) from None


def spec_to_json(spec) -> str:
    return spec.model_dump_json()


def catalogue_dir(kind: str = "devices") -> Path:
    """Where the shipped catalogue lives: inside the wheel, or the source tree when editable."""
    here = Path(__file__).resolve().parent
    for cand in (here / "_catalogue" / kind, here.parent / kind):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"the {kind} catalogue is missing from this installation of physim")


def catalogue() -> dict[str, Path]:
    """Catalogue name → TOML path, sorted by name."""
    return {p.stem: p for p in sorted(catalogue_dir().glob("*.toml"))}


def load_spec(name_or_path: str | Path):
    """A device spec from a catalogue name (``lc-ladder-8``) or a path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix != ".toml" or not path.exists():
        entries = catalogue()
        if str(name_or_path) not in entries:
            if path.suffix == ".toml":
                raise FileNotFoundError(f"no device file {str(path)!r}")
            raise KeyError(
                f"unknown device {str(name_or_path)!r}: not a catalogue name ({', '.join(entries)}) "
                "nor a path to a .toml file"
            )
        path = entries[str(name_or_path)]
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None
    return parse_spec(data, str(path))


def load_device(name_or_path: str | Path) -> Device:
    """Build a device from a catalogue name or a TOML path."""
    return load_spec(name_or_path).build()
