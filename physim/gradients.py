"""What RHEL and the BPTT twin share: the gradient result and the error signal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physim.device import IO_DTYPES, Device, io_array
from physim.kernels.readout import error_rows
from physim.kernels.reduce import max_abs


@dataclass(frozen=True)
class GradientResult:
    """Loss and its gradient from one method.

    ``grad`` is w.r.t. ``theta``; ``grad_w`` / ``grad_B`` w.r.t. the physical element values
    and the input matrix; ``grad_u`` (n_steps, batch, n_inputs) w.r.t. the inputs when asked
    for. ``kick`` is the absolute nudge factor β (echo kicks are ±β e_k); ``None`` for BPTT.
    """

    method: str
    loss: float
    grad: np.ndarray
    grad_w: np.ndarray
    grad_B: np.ndarray
    grad_u: np.ndarray | None
    kick: float | None = None
    echo_q: np.ndarray | None = None
    echo_p: np.ndarray | None = None


def input_grad_array(
    u: np.ndarray, input_grad: bool, grad_u_into: np.ndarray | None
) -> np.ndarray | None:
    """Where the kernels add ∂L/∂u: zeros like ``u``, or the caller's ``grad_u_into`` (which
    receives ∂L/∂u added to what it holds; float64 or float32, C-contiguous, u's shape)."""
    if grad_u_into is None:
        return np.zeros_like(u) if input_grad else None
    if not input_grad:
        raise ValueError("grad_u_into needs input_grad=True")
    if (
        grad_u_into.shape != u.shape
        or grad_u_into.dtype not in IO_DTYPES
        or not grad_u_into.flags.c_contiguous
    ):
        raise ValueError(
            "grad_u_into must be a C-contiguous float64 or float32 array of u's shape "
            f"{u.shape}, got {grad_u_into.dtype} {grad_u_into.shape}"
        )
    return grad_u_into


def error_signal(device: Device, dLdy: np.ndarray, k0: int, k1: int) -> np.ndarray:
    """e_k = Rᵀ ∂L/∂y_k for state indices k0 … k1−1 (e_0 = 0), shape (k1−k0, batch, n_dof)."""
    nb = dLdy.shape[1]
    out = np.zeros((k1 - k0, nb, device.n_dof))
    lo = max(k0, 1)
    if lo < k1:
        if device.readout is None:
            out[lo - k0 :] = dLdy[lo - 1 : k1 - 1]
        else:  # the kernels' own arithmetic (one readout path, see physim.kernels.readout)
            R = np.ascontiguousarray(device.readout, dtype=np.float64)
            error_rows(R, io_array(dLdy), k0, k1, out)
    return out


def error_bound(device: Device, dLdy: np.ndarray) -> float:
    """An upper bound on max |e_k| without forming e: max |∂L/∂y| times R's largest column sum."""
    # one pass, parallel on long sequences, no temporary the size of the sequence
    gmax = max_abs(io_array(dLdy).reshape(-1))
    if device.readout is None:
        return gmax
    return gmax * float(np.max(np.sum(np.abs(device.readout), axis=0)))


def align(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Cosine similarity and norm ratio ‖a‖/‖b‖ of two gradients (estimate ``a``, reference ``b``).

    Two zero vectors count as perfectly aligned (1, 1); a zero estimate of a non-zero
    reference as unaligned (0, 0); a non-zero estimate of a zero reference as (0, inf).
    """
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if nb == 0.0:
        return (1.0, 1.0) if na == 0.0 else (0.0, float("inf"))
    if na == 0.0:
        return 0.0, 0.0
    # |cos| <= 1 exactly; rounding of the dot product and norms can exceed it in the last bit
    # (normalised first: the product of two tiny norms underflows)
    cos = float(np.dot(np.ravel(a) / na, np.ravel(b) / nb))
    return float(np.clip(cos, -1.0, 1.0)), na / nb
