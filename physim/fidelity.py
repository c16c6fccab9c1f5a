"""How close a measured gradient is to a reference: the one, unit-free definition.

A device's parameters come in different units (farads beside inverse henries beside joules),
so the raw gradient's components can span 30 decades: on an LC network with a Josephson
junction ∂L/∂E_J was 1e-12 beside ∂L/∂(1/L) 2e-41, and a cosine of the raw vector was the
sign of one entry. Every verdict in physim (``physim run``'s ``passed``, the budget's
tolerances and best ε, ``eps = "auto"``, the study ``gradient`` measure, the plots' flags)
therefore reads the **θ-scaled gradient**

    g̃ᵢ = sᵢ · ∂L/∂θᵢ,

where sᵢ is parameter i's *step unit*, the scale the relative optimizer
(:class:`physim.protocol.train.RelativeAdam`) steps it in: sᵢ = |θ0ᵢ|, the nominal value.
g̃ᵢ = ∂L/∂(log θᵢ) at the nominal point; it does not change when a parameter's unit does
(θ → aθ gives ∂L/∂θ → ∂L/∂θ / a), nor when the loss's unit does (every g̃ scales alike).

A parameter whose nominal value is 0 (a coupling that training may grow) takes the rms of the
nonzero nominal values of its group — one unit, one scale; a group whose nominal values are
all 0 has no scale of its own and steps in its unit (sᵢ = 1), which :func:`unscaled_groups`
names so a report can say that part of the verdict depends on a unit.

:func:`fidelity` returns, per parameter group, the cosine, norm ratio and relative error of
the group's part of g̃ and the group's share of the reference's ‖g̃‖²; overall, the cosine,
norm ratio and relative error of g̃ (the verdict), the worst group among those that carry at
least :data:`GROUP_SHARE` of ‖g̃_ref‖², and the raw SI cosine as an extra field that is never a
verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physim.gradients import align

#: a group is "significant" (a candidate for the worst group) when it carries at least this
#: fraction of the reference's squared θ-scaled norm: below 1 % a group's direction moves the
#: overall step by less than 0.5 % in cosine, whatever it is
GROUP_SHARE = 0.01
#: the name of the verdict metric, as written into logs and JSON
METRIC = "theta_scaled"


def step_units(device) -> np.ndarray:
    """sᵢ per parameter (see the module docstring): |θ0ᵢ|; the group's rms of nonzero |θ0|
    where θ0ᵢ = 0; 1 where the whole group is 0."""
    theta0 = np.abs(np.asarray(device.theta0, dtype=np.float64))
    out = theta0.copy()
    for sl in device.slices().values():
        part = theta0[sl]
        zero = part == 0
        if not np.any(zero):
            continue
        nz = part[~zero]
        out[sl] = np.where(zero, float(np.sqrt(np.mean(nz**2))) if nz.size else 1.0, part)
    return out


def unscaled_groups(device) -> list[str]:
    """Groups whose nominal values are all 0, so their step unit is 1 in their own unit."""
    theta0 = np.asarray(device.theta0)
    return [n for n, sl in device.slices().items() if sl.stop > sl.start and not theta0[sl].any()]


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Cosine, norm ratio and relative error of ``a`` vs ``b``; for one number its sign and
    ratio as well.

    The cosine of two 1-vectors is ±1 whatever their sizes, so a one-parameter comparison also
    gets ``sign`` (+1 when estimate and reference agree in sign, −1 when not, 0 when either is
    zero) and ``ratio`` = estimate / reference, which is what a reader should look at.
    """
    a, b = np.ravel(a), np.ravel(b)
    cos, ratio = align(a, b)
    nb = float(np.linalg.norm(b))
    out = {
        "size": int(a.size),
        "cosine": cos,
        "norm_ratio": ratio,
        "rel_error": float(np.linalg.norm(a - b)) / nb if nb > 0 else float("nan"),
    }
    if a.size == 1:
        x, y = float(a[0]), float(b[0])
        out["sign"] = float(np.sign(x) * np.sign(y))
        out["ratio"] = x / y if y != 0 else float("inf") if x != 0 else 1.0
    return out


def describe(d: dict[str, float]) -> str:
    """One line for a :func:`compare` result: sign and ratio for a single parameter."""
    if d.get("size") == 1:
        sign = {1.0: "same sign", -1.0: "OPPOSITE sign", 0.0: "a zero"}[d["sign"]]
        return f"1 parameter: {sign}, ratio {d['ratio']:.6g} (a cosine of one number is ±1)"
    return (
        f"cosine {d['cosine']:.6f}  norm ratio {d['norm_ratio']:.6f}  "
        f"rel. error {d['rel_error']:.3e}"
    )


@dataclass(frozen=True)
class Fidelity:
    """Agreement of an estimate with a reference (see the module docstring).

    ``cosine``, ``norm_ratio`` and ``rel_error`` are of the θ-scaled gradient: the verdict.
    ``cosine_si`` is the raw SI cosine, informational only. ``groups`` maps each group to its
    :func:`compare` of the θ-scaled parts plus ``share`` (its fraction of ‖g̃_ref‖²).
    ``worst_group`` is the significant group (share ≥ :data:`GROUP_SHARE`) of lowest cosine.
    """

    cosine: float
    norm_ratio: float
    rel_error: float
    groups: dict[str, dict[str, float]]
    cosine_si: float = float("nan")
    worst_group: str | None = None
    overall: dict[str, float] | None = None
    unscaled: tuple[str, ...] = ()

    @property
    def worst_group_cosine(self) -> float:
        if self.worst_group is None:
            return float("nan")
        return float(self.groups[self.worst_group]["cosine"])

    def passes(self, target: float) -> bool:
        """The verdict: the θ-scaled cosine reaches ``target`` (a NaN never passes)."""
        return bool(np.isfinite(self.cosine) and self.cosine >= target)

    def as_dict(self) -> dict:
        extra = {k: v for k, v in (self.overall or {}).items() if k in ("size", "sign", "ratio")}
        return {
            "metric": METRIC,
            "cosine": self.cosine,
            "norm_ratio": self.norm_ratio,
            "rel_error": self.rel_error,
            **extra,
            "cosine_si": self.cosine_si,
            "worst_group": self.worst_group,
            "worst_group_cosine": self.worst_group_cosine,
            "group_share_threshold": GROUP_SHARE,
            "unscaled_groups": list(self.unscaled),
            "groups": self.groups,
        }

    def summary(self) -> str:
        """One line: the verdict metric, the worst significant group and the raw cosine."""
        head = describe(self.as_dict() | (self.overall or {}))
        if (self.overall or {}).get("size") != 1:
            head = "θ-scaled " + head
        parts = [head]
        if self.worst_group is not None and len(self.groups) > 1:
            parts.append(
                f"worst group {self.worst_group} cosine {self.worst_group_cosine:.6f} "
                f"({100 * self.groups[self.worst_group]['share']:.0f} % of the θ-scaled norm)"
            )
        parts.append(f"raw SI cosine {self.cosine_si:.3g} (not a verdict)")
        if self.unscaled:
            parts.append(f"groups at nominal 0 step in their own unit: {', '.join(self.unscaled)}")
        return "; ".join(parts)


def fidelity(estimate: np.ndarray, reference: np.ndarray, device) -> Fidelity:
    """The unit-free :class:`Fidelity` of ``estimate`` vs ``reference`` (gradients w.r.t. θ)."""
    return judge(
        estimate,
        reference,
        step_units(device),
        device.slices(),
        unscaled=tuple(unscaled_groups(device)),
    )


def judge(
    estimate: np.ndarray,
    reference: np.ndarray,
    units: np.ndarray,
    slices: dict[str, slice],
    *,
    unscaled: tuple[str, ...] = (),
) -> Fidelity:
    """:func:`fidelity` from the step units and named group slices themselves (what a log
    stores, where no device is at hand)."""
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    s = np.asarray(units, dtype=np.float64)
    ge, gr = s * est, s * ref
    overall = compare(ge, gr)
    total = float(np.sum(gr**2))
    groups = {}
    for name, sl in slices.items():
        d = compare(ge[sl], gr[sl])
        d["share"] = float(np.sum(gr[sl] ** 2)) / total if total > 0 else float("nan")
        groups[name] = d
    # the worst significant group; a one-parameter group is judged by its sign (cosine ±1)
    significant = [n for n, d in groups.items() if d["share"] >= GROUP_SHARE]
    worst = min(significant, key=lambda n: groups[n]["cosine"], default=None)
    return Fidelity(
        overall["cosine"],
        overall["norm_ratio"],
        overall["rel_error"],
        groups,
        cosine_si=align(est, ref)[0],
        worst_group=worst,
        overall=overall,
        unscaled=unscaled,
    )


def scaled_cosine(estimate: np.ndarray, reference: np.ndarray, units: np.ndarray | None) -> float:
    """The θ-scaled cosine from stored arrays (a log's gradient and its step units); the raw
    cosine when a log predates stored step units (``units`` None)."""
    s = 1.0 if units is None else np.asarray(units, dtype=np.float64)
    return align(s * np.asarray(estimate), s * np.asarray(reference))[0]
