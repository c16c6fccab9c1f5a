"""Forward simulation of a device, chunked so that memory does not grow with sequence length.

Arrays are time-major: inputs ``u`` (n_steps, batch, n_inputs), readouts ``y`` (n_steps, batch,
n_outputs) with ``y[k-1] = R q_k``, recorded states (n_steps + 1, batch, n_dof) including the
initial state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np

from physim import memory
from physim.device import IO_DTYPES, Device, Physical, real_array
from physim.errors import NumericalFault, all_finite, first_bad, locate
from physim.kernels.leapfrog import (
    BLAS_BLOCK,
    drive_chunk,
    drive_operands,
    drive_threads,
    energy_chunk,
    forward_inputs,
)
from physim.kernels.readout import readout_rows
from physim.stability import check_programmed_stability

#: elements (float64) per chunk array that :func:`iter_forward` yields (2 MiB)
CHUNK_ELEMENTS = 1 << 18
#: oscillator-steps (steps × batch × n_dof) per kernel call. The kernels form the drive in
#: place and need no chunk-sized temporaries, so this only sets how often control returns to
#: Python (each call is a few tenths of a second at most); it is large because every call
#: opens a parallel region, and on a busy machine waking the worker threads can cost a
#: scheduler time slice (measured: the LinHRU SCP1 layer forward took 2x longer in 8 calls than
#: in 1, 6x longer in 28)
KERNEL_ELEMENTS = 1 << 24
_EMPTY3 = np.zeros((0, 1, 1))


@dataclass(frozen=True)
class Trajectory:
    """Result of :func:`simulate`. ``q``/``p`` are ``None`` unless ``record=True``."""

    q_final: np.ndarray
    p_final: np.ndarray
    y: np.ndarray | None
    q: np.ndarray | None
    p: np.ndarray | None
    dt: float

    @property
    def n_steps(self) -> int:
        return int(self.y.shape[0]) if self.y is not None else int(self.q.shape[0] - 1)

    @property
    def time(self) -> np.ndarray:
        return self.dt * np.arange(self.n_steps + 1)


def as_inputs(
    device: Device, u: np.ndarray | None, n_steps: int | None = None, batch: int | None = None
) -> np.ndarray:
    """Validate an input sequence and return it as contiguous (n_steps, batch, n_inputs),
    float64 or float32 (kept: the kernels read it as it is, see ``physim.device.IO_DTYPES``)."""
    if u is None:
        if device.n_inputs != 0:
            raise ValueError(
                f"device {device.name!r} has {device.n_inputs} inputs: pass u with shape "
                f"(n_steps, batch, {device.n_inputs})"
            )
        if n_steps is None or not _is_count(n_steps, 1):
            raise ValueError(
                f"without an input sequence give an integer n_steps >= 1, got {n_steps!r}"
            )
        if batch is not None and not _is_count(batch, 1):
            raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
        return np.zeros((int(n_steps), int(batch or 1), 0))
    arr = real_array(u, f"input u for device {device.name!r}", keep_float32=True)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3 or arr.shape[2] != device.n_inputs:
        raise ValueError(
            f"input u for device {device.name!r} must have shape (n_steps, batch, "
            f"{device.n_inputs}), got {np.shape(u)}"
        )
    if arr.shape[0] < 1:
        raise ValueError("input u has no time steps; give at least one step")
    # min and max propagate NaN and ±inf: a finiteness check without an L-sized temporary
    if arr.size and not (np.isfinite(np.min(arr)) and np.isfinite(np.max(arr))):
        raise ValueError("input u contains non-finite values")
    return np.ascontiguousarray(arr)


def _is_count(n, low: int) -> bool:
    """An integer (or integral float) >= low."""
    return (
        isinstance(n, (int, np.integer, float)) and not isinstance(n, bool) and n == int(n) >= low
    )


def initial_state(
    device: Device, batch: int, q0: np.ndarray | None = None, p0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Batch of initial states (batch, n_dof), from the device's own unless given."""
    out = []
    for name, given, default in (("q0", q0, device.q0), ("p0", p0, device.p0)):
        arr = default if given is None else real_array(given, name)
        if arr.shape not in ((device.n_dof,), (batch, device.n_dof)):
            raise ValueError(
                f"{name} must have shape ({device.n_dof},) or ({batch}, {device.n_dof}), "
                f"got {arr.shape}"
            )
        if not all_finite(arr):
            raise ValueError(
                f"{name} must be finite, got {arr.ravel()[~np.isfinite(arr.ravel())][0]}"
            )
        out.append(
            np.array(np.broadcast_to(arr, (batch, device.n_dof)), dtype=np.float64, order="C")
        )
    return out[0], out[1]


def chunk_bounds(n_steps: int, width: int, elements: int = CHUNK_ELEMENTS) -> list[tuple[int, int]]:
    """Split ``range(n_steps)`` into chunks of about ``elements / width`` steps."""
    step = max(1, min(n_steps, elements // max(1, width)))
    if step > BLAS_BLOCK:  # whole drive blocks (see leapfrog.block_span): none formed twice
        step -= step % BLAS_BLOCK
    return [(k0, min(n_steps, k0 + step)) for k0 in range(0, n_steps, step)]


def drive(u: np.ndarray, B: np.ndarray, k0: int, k1: int) -> np.ndarray:
    """Drive s_k = B u_k for steps k0 … k1−1, shape (k1−k0, batch, n_dof).

    Bit-for-bit the drive the simulation kernels form internally (the same block products,
    see :func:`physim.kernels.leapfrog._drive_block`) when ``u`` is the whole input they see.
    """
    S = np.empty((k1 - k0, u.shape[1], B.shape[0]))
    U = np.ascontiguousarray(u)
    with drive_threads(B):
        drive_chunk(U, drive_operands(B, U)[0], k0, k1, S)
    return S


def readout_matrix(device: Device) -> np.ndarray:
    """R as the kernels take it: (n_outputs, n_dof), or no rows for the identity readout."""
    if device.readout is None:
        return np.zeros((0, device.n_dof))
    return np.ascontiguousarray(device.readout, dtype=np.float64)


def readout(device: Device, q: np.ndarray, R: np.ndarray | None = None) -> np.ndarray:
    """y = R q over the last axis with the kernels' arithmetic (``R`` defaults to the device's
    readout; identity when it has none)."""
    R = device.readout if R is None else R
    if R is None:
        return np.array(q, dtype=np.float64)
    X = np.ascontiguousarray(q, dtype=np.float64)
    flat = X.reshape(-1, 1, X.shape[-1])
    Y = np.empty((flat.shape[0], 1, R.shape[0]))
    readout_rows(np.ascontiguousarray(R, dtype=np.float64), flat, Y)
    return Y.reshape(*X.shape[:-1], R.shape[0])


def iter_forward(
    device: Device,
    phys: Physical,
    u: np.ndarray,
    Q: np.ndarray,
    P: np.ndarray,
    *,
    record_p: bool = False,
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray | None]]:
    """Advance ``Q, P`` in place chunk by chunk, yielding (k0, k1, positions, momenta)."""
    n_steps, nb = u.shape[0], u.shape[1]
    BT = drive_operands(phys.B, u)[0]
    R = readout_matrix(device)
    for k0, k1 in chunk_bounds(n_steps, nb * device.n_dof):
        Qrec = np.empty((k1 - k0, nb, device.n_dof))
        Prec = np.empty((k1 - k0, nb, device.n_dof)) if record_p else _EMPTY3
        start = (Q.copy(), P.copy())
        _run(device, phys, BT, R, u, k0, k1, Q, P, _EMPTY3, Qrec, Prec)
        if not all_finite(Q, P):
            raise forward_fault(device, phys, BT, R, u, k0, k1, *start)
        yield k0, k1, Qrec, (Prec if record_p else None)


def _run(device, phys, BT, R, u, k0, k1, Q, P, Y, Qrec, Prec) -> None:
    with parallel_schedule(Q.shape[0]), drive_threads(phys.B):
        forward_inputs(
            device.family,
            phys.prm,
            device.dt,
            device.n_work,
            BT,
            R,
            u,
            k0,
            k1,
            Q,
            P,
            Y,
            Qrec,
            Prec,
            None,
        )


def forward_fault(
    device: Device,
    phys: Physical,
    BT: np.ndarray,
    R: np.ndarray,
    u: np.ndarray,
    k0: int,
    k1: int,
    Q0: np.ndarray,
    P0: np.ndarray,
) -> NumericalFault:
    """The error for a forward chunk k0 … k1−1 that ended non-finite from the start (Q0, P0)."""
    from physim.stability import fault_cause

    Q, P = Q0.copy(), P0.copy()

    def advance(a: int, b: int) -> None:
        _run(device, phys, BT, R, u, a, b, Q, P, _EMPTY3, _EMPTY3, _EMPTY3)

    def restore(snap) -> None:
        Q[:], P[:] = snap

    k, what = locate(
        advance,
        lambda: first_bad((("p", P), ("q", Q))),
        lambda: (Q.copy(), P.copy()),
        restore,
        k0,
        k1,
    )
    return NumericalFault(
        "forward",
        k + 1,
        what,
        fault_cause(device, phys, "forward", u),
        n_steps=u.shape[0],
        where=f"device {device.name!r}",
    )


@contextmanager
def parallel_schedule(n_items: int) -> Iterator[None]:
    """Run the parallel kernels inside the block on at most ``n_items`` threads, handing out
    loop iterations one at a time.

    Threads beyond the work available would only spin-wait, stealing the core from whatever
    else runs on the machine; and with numba's default static split a thread that the OS
    pauses holds up the whole loop while its siblings wait, where one iteration at a time lets
    them take over its work.
    """
    old_threads = numba.get_num_threads()
    old_chunk = numba.set_parallel_chunksize(1)
    numba.set_num_threads(max(1, min(old_threads, n_items)))
    try:
        yield
    finally:
        numba.set_num_threads(old_threads)
        numba.set_parallel_chunksize(old_chunk)


def simulate(
    device: Device,
    theta: np.ndarray | None = None,
    u: np.ndarray | None = None,
    *,
    n_steps: int | None = None,
    batch: int | None = None,
    q0: np.ndarray | None = None,
    p0: np.ndarray | None = None,
    record: bool = False,
    observe: bool = True,
    y_out: np.ndarray | None = None,
) -> Trajectory:
    """Run the device forward from its initial state under the input ``u``.

    Parameters
    ----------
    device, theta
        The device and its learnable vector (``device.theta0`` when ``None``).
    u
        Inputs (n_steps, batch, n_inputs); ``None`` for undriven devices (give ``n_steps``).
    record
        Keep the full state trajectory (memory grows with n_steps).
    observe
        Keep the readout ``y`` (n_steps, batch, n_outputs). With ``record=False`` and
        ``observe=False`` memory does not depend on n_steps.
    y_out
        With ``observe``: an array (n_steps, batch, n_outputs), float64 or float32 (the
        readout rounded to float32), C-contiguous, to write the readout into (the returned
        ``y``) instead of a fresh one.
    """
    theta = device.check_theta(theta)
    u = as_inputs(device, u, n_steps, batch)
    nb = u.shape[1]
    K = u.shape[0]
    y_shape = (K, nb, device.n_outputs)
    if y_out is not None and (
        not observe
        or y_out.shape != y_shape
        or y_out.dtype not in IO_DTYPES
        or not y_out.flags.c_contiguous
    ):
        raise ValueError(
            f"y_out must be a C-contiguous float64 or float32 array of shape {y_shape} (with "
            "observe=True), "
            f"got {y_out.dtype} {y_out.shape}"
        )
    memory.check(
        memory.floats((K if observe and y_out is None else 0, nb, device.n_outputs))
        + (2 * memory.floats((K + 1, nb, device.n_dof)) if record else 0),
        f"simulating device {device.name!r} for {K} steps × batch {nb}"
        + (" with the trajectory recorded" if record else ""),
        "use fewer steps or a smaller batch",
    )
    phys = device.physical(theta)
    if theta is not device.theta0 and not np.array_equal(theta, device.theta0):
        # the build checked ω·dt at θ0 only; a moved θ (the twin of a trained chip, a finite
        # difference) is checked here, or it would run to 1e160 before the values reach inf
        check_programmed_stability(device, phys, theta)
    Q, P = initial_state(device, nb, q0, p0)
    y = (np.empty(y_shape) if y_out is None else y_out) if observe else None
    qs = ps = None
    if record:
        qs = np.empty((K + 1, nb, device.n_dof))
        ps = np.empty((K + 1, nb, device.n_dof))
        qs[0], ps[0] = Q, P
    BT = drive_operands(phys.B, u)[0]
    R = readout_matrix(device)
    for k0, k1 in chunk_bounds(K, nb * device.n_dof, KERNEL_ELEMENTS):
        start = (Q.copy(), P.copy())
        _run(
            device,
            phys,
            BT,
            R,
            u,
            k0,
            k1,
            Q,
            P,
            _EMPTY3 if y is None else y[k0:k1],
            _EMPTY3 if qs is None else qs[k0 + 1 : k1 + 1],
            _EMPTY3 if ps is None else ps[k0 + 1 : k1 + 1],
        )
        if not all_finite(Q, P):
            raise forward_fault(device, phys, BT, R, u, k0, k1, *start)
    return Trajectory(q_final=Q, p_final=P, y=y, q=qs, p=ps, dt=device.dt)


def energy(
    device: Device, theta: np.ndarray | None, traj: Trajectory, u: np.ndarray | None = None
) -> np.ndarray:
    """Total energy H(q_k, p_k; s_k) along a recorded trajectory, shape (n_steps + 1, batch).

    The drive of state k is that of the step leaving it (the last state reuses the last drive).
    """
    if traj.q is None:
        raise ValueError("energy needs a recorded trajectory: simulate(..., record=True)")
    K, nb = traj.q.shape[0] - 1, traj.q.shape[1]
    phys = device.physical(device.check_theta(theta))
    u = as_inputs(device, u, K, nb)
    S = drive(u, phys.B, 0, K)
    S = np.ascontiguousarray(np.concatenate([S, S[-1:]], axis=0))
    out = np.empty((K + 1, nb))
    energy_chunk(device.family, phys.prm, traj.q, traj.p, S, out)
    return out
