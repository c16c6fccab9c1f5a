"""Losses on the device readout ``y`` (n_steps, batch, n_outputs), ``y[k-1] = R q_k``.

Each loss returns its value and ∂L/∂y; the error signal that nudges the echo is
``e_k = Rᵀ ∂L/∂y_{k}`` (zero at the initial state, which no parameter can change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from physim.device import real_array
from physim.kernels.reduce import all_finite, mse_error


class Loss(Protocol):
    name: str

    def check_target(self, target: np.ndarray, y_shape: tuple[int, ...]) -> np.ndarray: ...

    def value(self, y: np.ndarray, target: np.ndarray) -> float: ...

    def error(self, y: np.ndarray, target: np.ndarray) -> np.ndarray: ...

    def value_and_error(
        self, y: np.ndarray, target: np.ndarray, out: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]: ...


def _as_target(target: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    arr = real_array(target, what)
    if arr.shape != shape:
        raise ValueError(
            f"{what} must have shape {shape} (n_steps, batch, n_outputs), got {arr.shape}"
        )
    arr = np.ascontiguousarray(arr)
    # one pass, parallel on long sequences, no temporary the size of the sequence
    if not all_finite(arr.reshape(-1)):
        raise ValueError(f"{what} contains non-finite values")
    return arr


@dataclass(frozen=True)
class MSELoss:
    """Mean squared error over every step, batch element and output: mean((y − target)²)."""

    name: str = "mse"

    def check_target(self, target: np.ndarray, y_shape: tuple[int, ...]) -> np.ndarray:
        return _as_target(target, y_shape, "MSE target")

    def value(self, y: np.ndarray, target: np.ndarray) -> float:
        return float(np.mean((y - target) ** 2))

    def error(self, y: np.ndarray, target: np.ndarray) -> np.ndarray:
        return (2.0 / y.size) * (y - target)

    def value_and_error(
        self, y: np.ndarray, target: np.ndarray, out: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Both at once in one pass (:func:`physim.kernels.reduce.mse_error`).

        ``out`` (may be ``y`` itself) receives ∂L/∂y = (2/N)(y − target), sparing a fresh
        array the size of the readout (whose first touch costs as much as the arithmetic).
        """
        y = np.ascontiguousarray(y, dtype=np.float64)
        target = np.ascontiguousarray(target, dtype=np.float64)
        # the kernel writes through a flat view: a strided ``out`` gets a contiguous buffer
        buf = out if out is not None and out.flags.c_contiguous else np.empty_like(y)
        if not y.size:
            return float("nan"), buf
        total = mse_error(y.reshape(-1), target.reshape(-1), 2.0 / y.size, buf.reshape(-1))
        if out is not None and buf is not out:
            out[...] = buf
            buf = out
        return total / y.size, buf


@dataclass(frozen=True)
class FinalLoss:
    """Final-time loss mean over batch and outputs of (y_K − target)²; target (batch, n_outputs).

    RHEL with this loss is Hamiltonian echo backpropagation: a single kick at the echo start.
    """

    name: str = "final"

    def check_target(self, target: np.ndarray, y_shape: tuple[int, ...]) -> np.ndarray:
        arr = np.asarray(target, dtype=np.float64)
        if arr.shape != y_shape[1:]:
            raise ValueError(
                f"final-time target must have shape {y_shape[1:]} (batch, n_outputs), got {arr.shape}"
            )
        return np.ascontiguousarray(arr)

    def value(self, y: np.ndarray, target: np.ndarray) -> float:
        return float(np.mean((y[-1] - target) ** 2))

    def error(self, y: np.ndarray, target: np.ndarray) -> np.ndarray:
        err = np.zeros_like(y)
        err[-1] = (2.0 / target.size) * (y[-1] - target)
        return err

    def value_and_error(
        self, y: np.ndarray, target: np.ndarray, out: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        value, err = self.value(y, target), self.error(y, target)
        if out is not None:
            out[...] = err
            err = out
        return value, err


LOSSES: dict[str, Loss] = {"mse": MSELoss(), "final": FinalLoss()}


def get_loss(name: str) -> Loss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None
