"""Energy and time of an experiment on the instrument, in joules and seconds.

The device side is measured along the simulated trajectory, drive by drive:

* drive work W = ∫ (B u)·q̇ dt, the power a source delivers into the generalised coordinate it
  acts on (H = H₀(q, p) − qᵀ B u, so dH₀/dt = (B u)·q̇ − dissipated power). With the input held
  over each step (the instrument's zero-order hold) the work of step k is exactly
  (B u_k)·(q_{k+1} − q_k), whatever the integrator;
* dissipated energy E = ∫ q̇ᵀ D q̇ dt with D the loss's friction matrix
  (:func:`physim.instrument.bath.friction_matrix`: dp = −D M⁻¹p dt), taken per step as
  Δqᵀ D Δq / δ (the mean velocity of the step; relative error O((ω δ)²)). It is the loss's
  friction power, not its net exchange with the bath: the thermal noise's injection is apart.

Both are in the unit of H, which a device family declares (``Family.energy_unit``, ``"J"`` for
the SI network families; ``None`` for dimensionless HRUs, whose energies are unavailable).

The instrument side comes from the sources' per-technology figures: conversions of each ADC ×
``fom`` · 2^bits (Walden), values written by each DAC × ``write_energy``, and the flip stage's
energy and latency and the reset between runs from :class:`EnergySpec` (the ``energy`` section
of a non-ideality spec).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from physim.kernels.energy import step_energy_kernel
from physim.spec_base import SpecModel

_NO_LOSS = np.zeros((0, 0))

#: passive reset between runs: the device rings down until its energy has fallen by this
#: factor (60 dB) unless the preset gives a reset time
RING_DOWN = 1e-6


class EnergySpec(SpecModel):
    """Per-technology figures of the time-reversal (flip) stage and the reset between runs.

    A figure left out is reported as unavailable (never as zero). ``description`` says where
    each number comes from.
    """

    description: str = Field("", description="sources of the figures")
    flip_energy: float | None = Field(
        None, ge=0, description="energy of one momentum flip of one trajectory, J"
    )
    flip_latency: float | None = Field(None, ge=0, description="duration of one momentum flip, s")
    reset_time: float | None = Field(
        None,
        ge=0,
        description="time to reset the device before a run, s (default: passive ring-down of "
        "the slowest lossy mode by ring_down in energy)",
    )
    ring_down: float = Field(
        RING_DOWN, gt=0, lt=1, description="energy fraction a passive reset rings down to (1)"
    )


def ring_down_time(rates: np.ndarray, fraction: float) -> float | None:
    """Time for the slowest lossy mode's energy (decay rate g, 1/s) to fall by ``fraction``;
    ``None`` without loss (a lossless device never resets passively)."""
    g = np.asarray(rates, dtype=np.float64)
    g = g[g > 0]
    if g.size == 0:
        return None
    return float(np.log(1.0 / fraction) / g.min())


def step_energy(
    start: np.ndarray,
    Qrec: np.ndarray,
    U: np.ndarray,
    B: np.ndarray,
    D: np.ndarray | None,
    dt: float,
    backwards: bool,
) -> tuple[np.ndarray, float]:
    """(work per trajectory (nb,), dissipated energy) of k steps.

    ``Qrec`` (k, nb, n): the state each step lands on, in the kernel's index order; ``start``
    (nb, n): the state before the first step the kernel takes; ``U`` (k, nb, m): each step's
    input, ``B`` (n, m) the input matrix (the work of a step is u·Bᵀ Δq). Forwards, step i goes
    from Qrec[i − 1] (``start`` for i = 0) to Qrec[i]; ``backwards`` (an echo kernel walks its
    steps down, the first it takes being k − 1), from Qrec[i + 1] (``start`` for i = k − 1) to
    Qrec[i]. ``D`` (n, n) is the friction matrix, ``None`` without loss.
    """
    f64 = np.float64
    work = np.zeros(Qrec.shape[1])
    diss = step_energy_kernel(
        np.ascontiguousarray(start, dtype=f64),
        np.ascontiguousarray(Qrec, dtype=f64),
        np.ascontiguousarray(U, dtype=f64),
        np.ascontiguousarray(B, dtype=f64),
        _NO_LOSS if D is None else np.ascontiguousarray(D, dtype=f64),
        backwards,
        work,
    )
    return work, float(diss) / dt
