"""``physim schema``: every spec kind has a valid JSON Schema whose physical fields carry units."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from physim.cli import main
from physim.protocol.specs import protocol_catalogue
from physim.schema import SCHEMAS, json_schema
from physim.specs import catalogue

#: HRU layers and training configs are dimensionless models: their numbers carry no SI unit
DIMENSIONLESS_KINDS = ("linhru", "nonlinhru", "train")
#: a unit in a description: "(1)" for a dimensionless number, or an SI unit after the last
#: comma, or a phrase naming the unit of another quantity ("in the readout unit")
UNIT = re.compile(
    r"\(1\)|,\s*(s|kg|N/m|N/m³|F|H|1/H|J|J/K|K|Wb|A|Ω|Hz|rad|C|V|LSB|bits|steps|runs|1/s)\b"
    r"|\bunits?\b"
)


def _number_fields(schema: dict):
    """(path, description) of every property whose value may be a float, in every $def."""
    roots = {"(top)": schema, **schema.get("$defs", {})}
    for where, node in roots.items():
        for name, prop in node.get("properties", {}).items():
            types = {prop.get("type")} | {a.get("type") for a in prop.get("anyOf", [])}
            items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
            types |= {items.get("type")} | {
                a.get("type") for a in prop.get("anyOf", []) if a.get("type") == "array"
            }
            if "number" in types:
                yield f"{where}.{name}", prop.get("description", "")


@pytest.mark.parametrize("kind", list(SCHEMAS))
def test_schema_is_json_and_valid(kind, capsys):
    assert main(["schema", kind]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == json_schema(kind)


@pytest.mark.parametrize("kind", [k for k in SCHEMAS if k not in DIMENSIONLESS_KINDS])
def test_physical_fields_carry_units(kind):
    missing = [p for p, d in _number_fields(json_schema(kind)) if not UNIT.search(d)]
    assert not missing, f"{kind}: number fields without a unit in their description: {missing}"


def test_unit_rule_can_fail():
    assert not UNIT.search("Adam learning rate")
    assert UNIT.search("integrator step δ, s") and UNIT.search("relative std (1)")


def test_catalogue_validates_against_the_schemas():
    """The shipped TOML files are instances of the printed schemas (an independent validator)."""
    jsonschema = pytest.importorskip("jsonschema")
    for kind, files in (("device", catalogue()), ("protocol", protocol_catalogue())):
        validator = jsonschema.Draft202012Validator(json_schema(kind))
        for name, path in files.items():
            errors = list(validator.iter_errors(tomllib.loads(path.read_text())))
            assert not errors, f"{name}: {errors[0].message}"


def test_schema_lists_kinds(capsys):
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == list(SCHEMAS)


def test_unknown_kind_is_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["schema", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_unknown_kind_in_python_names_the_kinds():
    with pytest.raises(KeyError, match=r"unknown spec kind 'nope': pick one of device, "):
        json_schema("nope")
