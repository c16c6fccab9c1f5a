"""Device specs: the discriminated union, TOML loading and the shipped catalogue.

``DeviceSpec`` is the union of the registered families' spec classes
(:data:`physim.families.FAMILIES`), discriminated on ``kind``: a family registered by a
package's entry point is a device kind like the built-ins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Union

from pydantic import Field, TypeAdapter, ValidationError

from physim.catalogues import Catalogue
from physim.device import Device
from physim.families import FAMILIES
from physim.spec_base import SpecError, format_validation_error

#: every registered family's spec, discriminated on ``kind``
DeviceSpec = Annotated[
    Union[tuple(k.spec for k in FAMILIES.ordered())],  # noqa: UP007 (a union built from a tuple)
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter = TypeAdapter(DeviceSpec)


def _format(err: ValidationError, source: str) -> str:
    return format_validation_error(err, "device spec", source, tags={"kind": _kinds()})


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


#: the device catalogue (``devices/``); see :mod:`physim.catalogues` for the lookup order
DEVICES = Catalogue("devices", "device", "physim devices", parse_spec, SpecError)


def catalogue() -> dict[str, Path]:
    """Catalogue name → TOML path, sorted by name."""
    return DEVICES.entries()


def load_spec(name_or_path: str | Path):
    """A device spec from a catalogue name (``lc-ladder-8``) or a path to a TOML file."""
    return DEVICES.load(name_or_path)


def load_device(name_or_path: str | Path) -> Device:
    """Build a device from a catalogue name or a TOML path."""
    return load_spec(name_or_path).build()
