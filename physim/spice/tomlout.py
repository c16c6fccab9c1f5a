"""Write a spec's JSON-able dump as TOML (the catalogue's layout: scalars and arrays first,
arrays of tables inline one per line, sub-tables last).

Only what specs contain is supported: strings, booleans, ints, floats (``inf``/``nan``
included), lists of those or of flat tables, and nested tables.
"""

from __future__ import annotations

import json
import math


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        # the discriminator first, as the catalogue writes it
        items = sorted(v.items(), key=lambda kv: kv[0] not in ("type", "kind"))
        return (
            "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in items if x is not None) + " }"
        )
    if isinstance(v, list | tuple):
        if v and all(isinstance(x, dict) for x in v):
            return "[\n" + "".join(f"  {_value(x)},\n" for x in v) + "]"
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def to_toml(data: dict, header: str = "") -> str:
    """TOML text of ``data`` (``None`` values are left out: TOML has no null)."""
    lines = [f"# {x}" for x in header.splitlines()]
    tables = []
    for k, v in data.items():
        if v is None:
            continue
        if isinstance(v, dict):
            tables.append((k, v))
            continue
        lines.append(f"{_key(k)} = {_value(v)}")
    for name, table in tables:
        lines.append("")
        lines.append(f"[{_key(name)}]")
        for k, v in table.items():
            if v is not None:
                lines.append(f"{_key(k)} = {_value(v)}")
    return "\n".join(lines) + "\n"
