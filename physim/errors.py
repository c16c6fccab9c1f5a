"""The one error type of a numerical blow-up, and how the drivers find where it happened.

Kernels never validate (house rule), so the drivers check at chunk boundaries: after each kernel
call they look at the chunk's final state and accumulators (a few small arrays, microseconds).
When one is non-finite, :func:`locate` re-runs that chunk from its saved start state in halves
(bisection) until the exact step is found: the re-runs cost at most one more chunk, and only
on the way to an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: names of the runs a fault can occur in (what :attr:`NumericalFault.run` holds)
RUN_NAMES = ("forward", "echo +", "echo −", "echo ±", "echo", "adjoint", "training")


class ChipFailure(ValueError):
    """The chip as specified cannot run the experiment at this setting (the parameter DAC
    wrote an element value the device cannot have): a property of the chip, which an error
    budget reads as a level that fails, unlike an error of the software or the spec."""


class NumericalFault(FloatingPointError):
    """A simulated quantity became NaN or ±inf.

    Attributes
    ----------
    run
        Which run: one of :data:`RUN_NAMES` — ``"forward"`` (``"forward (branch t)"`` for
        parallel instrument branches), ``"echo +"``, ``"echo −"``, ``"echo ±"`` (their combined
        accumulator), ``"echo"`` (an un-nudged reverse drive), ``"adjoint"`` (the BPTT twin)
        or ``"training"``.
    step
        The 1-based step of that run whose result was the first non-finite value (for an echo
        run: the number of echo steps taken), or the epoch for training; ``None`` if unknown.
    quantity
        What became non-finite (``"q"``, ``"p"``, ``"accumulated ∂H/∂θ"``, ``"loss"``, ...).
    cause
        The most likely cause, with the fix.
    """

    def __init__(
        self,
        run: str,
        step: int | None,
        quantity: str,
        cause: str,
        *,
        n_steps: int | None = None,
        where: str = "",
        unit: str = "step",
    ):
        self.run = run
        self.step = step
        self.quantity = quantity
        self.cause = cause
        self.n_steps = n_steps
        self.where = where
        self.unit = unit
        at = "" if step is None else f" at {unit} {step}" + (f" of {n_steps}" if n_steps else "")
        head = f"{where}: " if where else ""
        super().__init__(f"{head}non-finite {quantity} in the {run} run{at}; likely cause: {cause}")

    def during(self, context: str) -> NumericalFault:
        """The same fault with ``context`` (e.g. the training epoch) prefixed to where."""
        where = f"{context}, {self.where}" if self.where else context
        return NumericalFault(
            self.run,
            self.step,
            self.quantity,
            self.cause,
            n_steps=self.n_steps,
            where=where,
            unit=self.unit,
        )


def all_finite(*arrays: np.ndarray) -> bool:
    """True when every entry of every array is finite.

    Contiguous float64 arrays go through the one-pass kernel of :mod:`physim.kernels.reduce`;
    other dtypes (float32 instruments) through min/max, which propagate NaN and ±inf."""
    from physim.kernels.reduce import all_finite as _flat_finite

    for a in arrays:
        if not a.size:
            continue
        if a.dtype == np.float64 and a.flags.c_contiguous:
            if not _flat_finite(a.reshape(-1)):
                return False
        elif not (np.isfinite(np.min(a)) and np.isfinite(np.max(a))):
            return False
    return True


def first_bad(named: Sequence[tuple[str, np.ndarray]]) -> str | None:
    """The name of the first array holding a non-finite value, or ``None``."""
    for name, a in named:
        if not all_finite(a):
            return name
    return None


def locate(
    advance: Callable[[int, int], None],
    bad: Callable[[], object | None],
    snapshot: Callable[[], object],
    restore: Callable[[object], None],
    k0: int,
    k1: int,
    *,
    reverse: bool = False,
) -> tuple[int, object]:
    """The step index k in ``[k0, k1)`` whose result is first non-finite, and what went bad.

    The live state must be the chunk's start state and advancing it through the whole chunk
    must give a non-finite result. ``advance(a, b)`` runs steps a … b−1 (in the run's own
    order: backwards when ``reverse``), ``bad()`` names the non-finite quantity of the live
    state, ``snapshot``/``restore`` copy it. Bisection: the re-runs total at most k1 − k0 steps.
    """
    lo, hi = k0, k1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        snap = snapshot()
        first = (mid, hi) if reverse else (lo, mid)
        advance(*first)
        if bad() is not None:
            restore(snap)
            lo, hi = (mid, hi) if reverse else (lo, mid)
        else:
            lo, hi = (lo, mid) if reverse else (mid, hi)
    advance(lo, hi)
    return lo, bad() or "state"


def check_training(
    step: int, loss: float | None, arrays: dict[str, np.ndarray], lr: float, what: str = "step"
) -> None:
    """Stop training at the first non-finite loss, gradient or update (before it is logged)."""
    if loss is not None and not np.isfinite(loss):
        bad = "loss"
    else:
        bad = next((name for name, a in arrays.items() if not all_finite(np.asarray(a))), None)
        if bad is None:
            return
        bad = bad if bad.startswith("updated") else f"gradient of {bad}"
    raise NumericalFault(
        "training",
        step,
        bad,
        f"the parameters were driven out of range (lr = {lr:g}); lower the learning rate or "
        "clip the gradient",
        unit=what,
    )
