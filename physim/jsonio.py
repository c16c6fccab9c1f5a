"""Strict JSON for every file and ``--json`` output: no NaN or Infinity, which JSON lacks.

A non-finite float becomes ``null`` and its path is listed under the top-level key
``"non_finite"``, so a reader sees both that the value is missing and where.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

#: the top-level key that lists the paths of non-finite values mapped to null
NON_FINITE_KEY = "non_finite"


def _clean(obj: Any, path: str, bad: list[str]) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v, f"{path}.{k}" if path else str(k), bad) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v, f"{path}[{i}]", bad) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist(), path, bad)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        if not math.isfinite(value):
            bad.append(f"{path} = {value}")
            return None
        return value
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def strict(obj: Any) -> tuple[Any, list[str]]:
    """``obj`` with every non-finite float replaced by ``None``, and the paths replaced."""
    bad: list[str] = []
    return _clean(obj, "", bad), bad


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes NaN or Infinity (see module docstring)."""
    clean, bad = strict(obj)
    if bad and isinstance(clean, dict):
        clean[NON_FINITE_KEY] = bad
    return json.dumps(clean, allow_nan=False, **kwargs)
