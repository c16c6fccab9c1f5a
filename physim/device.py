"""The compiled form every device spec builds into.

A :class:`Device` is immutable. It never owns an integrator: it carries the family id that selects
its Hamiltonian kernels in the integrators' dispatch (and the registered family kind itself, for
the checks made at the Python boundary), the physical element values ``w`` those kernels read, the input matrix
``B`` that turns an input ``u`` into the drive ``s = B u``, a readout matrix, the initial state,
and the map from the learnable vector ``theta`` (contiguous, named slices) onto ``w`` and ``B``.

Raw learnable values pass through a fixed transform (``identity``, ``relu``, ``softplus`` or
``sigmoid``) so that e.g. a LinHRU step ``Δt = sigmoid(θ)`` stays in (0, 1); gradients are
pulled back through the same transform. ``softplus`` (log(1 + e^θ)) keeps a value positive with
a slope that is nowhere zero: unlike ``relu``, no region of θ freezes the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Transform = Literal["identity", "relu", "softplus", "sigmoid"]
Prm = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


#: dtypes of the sequence-sized arrays the simulation and gradient kernels read and write
#: (inputs u, readouts y, errors ∂L/∂y, input gradients ∂L/∂u): float32 halves their memory.
#: The states are integrated in float64 either way; the drive products B u, ∂L/∂B and ∂L/∂u
#: are float32 BLAS products when the inputs are float32 and B is large enough for BLAS
#: (:func:`physim.kernels.leapfrog.drive_operands`), float64 otherwise, when a float32 input
#: gives bit for bit the trajectory of its float64 copy (the conversion is exact)
IO_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def io_array(a: np.ndarray) -> np.ndarray:
    """``a`` C-contiguous: float32 kept as it is (see :data:`IO_DTYPES`), anything else float64."""
    a = np.asarray(a)
    return np.ascontiguousarray(a, dtype=a.dtype if a.dtype in IO_DTYPES else np.float64)


def real_array(value, what: str, *, keep_float32: bool = False) -> np.ndarray:
    """``value`` as a contiguous float64 array (float32 kept with ``keep_float32``, for the
    sequence-sized arrays of :data:`IO_DTYPES`); complex, boolean-free non-numeric input
    refused.

    ``np.asarray(..., dtype=float64)`` would silently drop an imaginary part.
    """
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        raise ValueError(f"{what} must be real, got a complex array; pass its real part")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be a real number array, got dtype {arr.dtype}")
    return io_array(arr) if keep_float32 else np.ascontiguousarray(arr, dtype=np.float64)


def _forward_transform(kind: Transform, raw: np.ndarray) -> np.ndarray:
    if kind == "identity":
        return raw.copy()
    if kind == "relu":
        return np.maximum(raw, 0.0)
    if kind == "softplus":  # log(1 + e^raw) without overflow for raw ≫ 0
        return np.logaddexp(0.0, raw)
    with np.errstate(over="ignore"):  # exp(−raw) = inf for raw ≪ 0 gives the exact limit 0
        return 1.0 / (1.0 + np.exp(-raw))


def transform_values(kind: Transform, raw: np.ndarray) -> np.ndarray:
    """The values a group of transform ``kind`` sets from raw learnable values ``raw``."""
    return _forward_transform(kind, np.asarray(raw, dtype=np.float64))


def _transform_slope(kind: Transform, raw: np.ndarray) -> np.ndarray:
    if kind == "identity":
        return np.ones_like(raw)
    if kind == "relu":
        return (raw > 0.0).astype(np.float64)
    # the slope of softplus is sigmoid, the sigmoid's own slope sig (1 − sig)
    with np.errstate(over="ignore"):
        sig = 1.0 / (1.0 + np.exp(-raw))
    return sig if kind == "softplus" else sig * (1.0 - sig)


@dataclass(frozen=True)
class ParamGroup:
    """One named slice of ``theta``.

    ``target`` says whether the slice sets entries of ``w`` (Hamiltonian elements) or of the
    flattened input matrix ``B``; ``index`` lists those entries in slice order. ``tie`` > 1
    ties ``tie`` entries to each value: ``index`` then holds ``tie`` consecutive copies of the
    slice's targets (``w[index] = tile(value, tie)``), and the gradient of a value is the sum
    over its copies.
    """

    name: str
    unit: str
    target: Literal["w", "B"]
    index: np.ndarray
    transform: Transform = "identity"
    labels: tuple[str, ...] = ()
    tie: int = 1

    @property
    def size(self) -> int:
        return int(self.index.shape[0]) // self.tie


@dataclass(frozen=True)
class Physical:
    """Kernel-ready values of a device at one ``theta``: ``prm = (w, ai, af, am)`` and ``B``."""

    prm: Prm
    B: np.ndarray

    @property
    def w(self) -> np.ndarray:
        return self.prm[0]


@dataclass(frozen=True)
class Device:
    """A Hamiltonian substrate ready to simulate (built from a spec; see ``physim.specs``)."""

    name: str
    family: int
    n_dof: int
    n_inputs: int
    dt: float
    w_base: np.ndarray
    B_base: np.ndarray
    readout: np.ndarray | None
    q0: np.ndarray
    p0: np.ndarray
    groups: tuple[ParamGroup, ...]
    theta0: np.ndarray
    aux_fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
    check_fn: Callable[[np.ndarray], None]
    n_work: int
    units: dict[str, str] = field(default_factory=dict)
    spec: Any = None
    w_labels: tuple[str, ...] = ()
    #: H is quadratic in (q, p): dynamics are linear and centred RHEL is exact at any ε
    quadratic: bool = False
    #: the registered family kind that built it (a :class:`physim.families.Family` subclass:
    #: its kernel module and hooks); ``family`` is that kind's id in the generated dispatch
    family_kind: Any = None

    def __post_init__(self) -> None:
        # the Python boundary of the family dispatch: an id the kernels have no branch for
        # never reaches them (the generated dispatch raises too, but from inside a kernel)
        kind = self.family_kind
        if kind is None or not hasattr(kind, "family_id"):
            raise ValueError(
                f"device {self.name!r} (family id {self.family!r}) has no registered family "
                f"kind, got {kind!r}; build devices from a registered family's spec "
                "(physim.families.FAMILIES), e.g. with family_kind.device_fields()"
            )
        expected = kind.family_id()  # raises for a family kind that was never registered
        if self.family != expected:
            raise ValueError(
                f"device {self.name!r}: family id {self.family!r} has no kernels of family "
                f"{kind.name!r}, whose id is {expected}; pass **{kind.__name__}.device_fields()"
            )

    # ------------------------------------------------------------------ sizes and names
    @property
    def n_params(self) -> int:
        return int(self.theta0.shape[0])

    @property
    def n_outputs(self) -> int:
        return self.n_dof if self.readout is None else int(self.readout.shape[0])

    def slices(self) -> dict[str, slice]:
        """Named slices of ``theta``, in order."""
        out: dict[str, slice] = {}
        start = 0
        for g in self.groups:
            out[g.name] = slice(start, start + g.size)
            start += g.size
        return out

    def split(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """``theta`` (or a gradient of the same shape) as a dict of named groups."""
        theta = self.check_theta(theta)
        return {name: theta[sl] for name, sl in self.slices().items()}

    def check_theta(self, theta: np.ndarray | None) -> np.ndarray:
        if theta is None:
            return self.theta0.copy()
        theta = real_array(theta, f"theta for device {self.name!r}")
        if theta.shape != (self.n_params,):
            raise ValueError(
                f"theta for device {self.name!r} must have shape ({self.n_params},), got "
                f"{theta.shape}; start from device.theta0"
            )
        bad = np.flatnonzero(~np.isfinite(theta))
        if bad.size:
            i = int(bad[0])
            name, j = self.locate_param(i)
            raise ValueError(
                f"theta for device {self.name!r}: {name}[{j}] (theta[{i}]) = {theta[i]} must be "
                f"finite ({bad.size} non-finite entr{'y' if bad.size == 1 else 'ies'})"
            )
        return theta

    def locate_param(self, i: int) -> tuple[str, int]:
        """(group name, index within the group) of entry ``i`` of ``theta``."""
        for name, sl in self.slices().items():
            if sl.start <= i < sl.stop:
                return name, i - sl.start
        raise IndexError(f"theta has {self.n_params} entries, got index {i}")

    # ------------------------------------------------------------------ theta <-> physics
    def physical(self, theta: np.ndarray | None = None) -> Physical:
        """Element values, kernel auxiliaries and input matrix at ``theta``."""
        theta = self.check_theta(theta)
        w = self.w_base.copy()
        B = self.B_base.copy()
        for g, sl in zip(self.groups, self.slices().values(), strict=True):
            val = _forward_transform(g.transform, theta[sl])
            if g.tie > 1:
                val = np.tile(val, g.tie)
            if g.target == "w":
                w[g.index] = val
            else:
                B.reshape(-1)[g.index] = val
        self.check_fn(w)
        ai, af, am = self.aux_fn(w)
        return Physical(prm=(w, ai, af, am), B=B)

    def pullback(self, theta: np.ndarray, g_w: np.ndarray, g_B: np.ndarray) -> np.ndarray:
        """Chain rule from gradients w.r.t. ``w`` and ``B`` to the gradient w.r.t. ``theta``."""
        theta = self.check_theta(theta)
        out = np.zeros_like(theta)
        g_B_flat = g_B.reshape(-1)
        for g, sl in zip(self.groups, self.slices().values(), strict=True):
            src = g_w if g.target == "w" else g_B_flat
            gsum = src[g.index].reshape(g.tie, -1).sum(axis=0) if g.tie > 1 else src[g.index]
            out[sl] = gsum * _transform_slope(g.transform, theta[sl])
        return out
