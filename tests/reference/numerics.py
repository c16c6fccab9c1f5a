"""Central finite differences, relative errors and log–log slope fits."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def central_difference(f: Callable[[np.ndarray], float], x: np.ndarray, i, h: float) -> float:
    """(f(x + h e_i) − f(x − h e_i)) / 2h for one (possibly multi-dimensional) index ``i``."""
    xp = np.array(x, dtype=float, copy=True)
    xm = np.array(x, dtype=float, copy=True)
    xp[i] += h
    xm[i] -= h
    return (f(xp) - f(xm)) / (2.0 * h)


def directional_difference(f: Callable[[np.ndarray], np.ndarray], x, v, h: float) -> np.ndarray:
    """(f(x + h v) − f(x − h v)) / 2h: a Jacobian–vector product."""
    return (np.asarray(f(x + h * v)) - np.asarray(f(x - h * v))) / (2.0 * h)


def relative_step(x: float, rel: float, fallback: float) -> float:
    """A step ``rel·|x|`` proportional to the value, ``rel·fallback`` when x is zero."""
    mag = abs(float(x))
    return rel * (mag if mag > 0.0 else fallback)


def group_rel_err(approx: np.ndarray, ref: np.ndarray) -> float:
    """max |approx − ref| / max |ref|: the error relative to the largest entry of the group."""
    approx = np.asarray(approx, dtype=float)
    ref = np.asarray(ref, dtype=float)
    scale = float(np.max(np.abs(ref)))
    if scale == 0.0:
        return float(np.max(np.abs(approx)))
    return float(np.max(np.abs(approx - ref))) / scale


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])
