"""Device specs: the discriminated union, TOML loading and the shipped catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from physim.catalogues import Catalogue
from physim.device import Device
from physim.families.hru import LinHRUSpec, NonlinHRUSpec
from physim.families.lc import LCNetworkSpec
from physim.families.oscillator import OscillatorNetworkSpec
from physim.spec_base import SpecError, format_validation_error

DeviceSpec = Annotated[
    OscillatorNetworkSpec | LCNetworkSpec | LinHRUSpec | NonlinHRUSpec, Field(discriminator="kind")
]
_ADAPTER: TypeAdapter = TypeAdapter(DeviceSpec)


def _kinds() -> list[str]:
    return ["oscillator_network", "lc_network", "linhru", "nonlinhru"]


def _format(err: ValidationError, source: str) -> str:
    return format_validation_error(err, "device spec", source, tags={"kind": _kinds()})


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
