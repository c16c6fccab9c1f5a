"""Plausibility checks on measurement records: resolution and range of the converters.

Each check issues a :class:`~physim.warnings.PhysimWarning` (never an error: the result is
delivered) when a reading is probably mostly rounding or clipping, saying by how much and what
to change. They read only what the controller has — records, LSBs, saturation counters — so
they are cheap and run after every protocol execution that asks for them.
"""

from __future__ import annotations

import numpy as np

from physim.device import Device
from physim.protocol.records import ProtocolResult
from physim.protocol.specs import EstimatorSpec
from physim.warnings import warn

#: an entry read at fewer LSBs than this carries more than ~3 % rounding error
#: (LSB/√12 per reading), which costs the gradient more than ~0.5 % in cosine
MIN_GRADIENT_LSB = 10.0
#: the ε suggested puts the median entry at this many LSB (≈ 0.3 % rounding), a safe margin
#: because the echo difference, and with it the count of LSBs, grows linearly in ε
TARGET_GRADIENT_LSB = 100.0
#: a loss error below this many readout LSBs (rms per output) is mostly rounding
MIN_ERROR_LSB = 1.0


def _round_up(x: float) -> float:
    """``x`` rounded up to one significant digit."""
    exp = np.floor(np.log10(x))
    # the 1e-9 keeps a product such as 1e-6 × 100 = 1.0000000000000002e-4 at 1e-4
    return float(np.ceil(x / 10**exp - 1e-9) * 10**exp)


def _used_channels(device: Device) -> np.ndarray:
    """Indices into an accumulator vector ([w, B flattened]) that some parameter group uses."""
    n_w = device.w_base.shape[0]
    parts = [g.index if g.target == "w" else n_w + g.index for g in device.groups]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def check_gradient_resolution(
    result: ProtocolResult,
    device: Device,
    estimator: EstimatorSpec,
    eps: float | None = None,
) -> None:
    """Warn when the summed integrator readings that make the gradient sit near one LSB.

    The estimate is the sum of the accumulator readings; each reading's range was set by its
    own (large) value, while the sum — the echo difference — is ε times smaller. When the
    median used entry is read at fewer than :data:`MIN_GRADIENT_LSB` LSBs, the gradient is
    mostly rounding; the warning suggests an ε that reaches :data:`TARGET_GRADIENT_LSB`.
    """
    recs = [result.get(n) for n in estimator.records]
    recs = [r for r in recs if r.kind == "accumulator"]
    if not recs or any(r.lsb is None for r in recs):
        return
    idx = _used_channels(device)
    if idx.size == 0:
        return
    total = sum(r.value.sum(axis=0) for r in recs)[idx]
    lsb = np.max(np.stack([np.broadcast_to(r.lsb, r.value.shape[1:]) for r in recs]), axis=0)
    counts = np.abs(total) / lsb[idx]
    median = float(np.median(counts))
    if median >= MIN_GRADIENT_LSB:
        return
    n_below = int(np.count_nonzero(counts < 1.0))
    factor = TARGET_GRADIENT_LSB / max(median, 0.1)
    fix = (
        f"raise eps to >= {_round_up(eps * factor):.0e} (now {eps:.0e})"
        if eps is not None
        else f"raise eps by {_round_up(factor):.0e}×"
    )
    warn(
        f"the accumulator ADC reads the gradient at a median {median:.2g} LSB per entry "
        f"({n_below} of {idx.size} entries below one LSB)",
        "the estimate is mostly rounding",
        f"{fix}, or give the accumulator ADC more bits",
    )


def check_error_resolution(residual: np.ndarray, lsb: np.ndarray | None) -> None:
    """Warn when the measured loss error y − target is below one readout LSB (rms per output)."""
    if lsb is None:
        return
    rms = np.sqrt(
        np.mean(np.asarray(residual, dtype=np.float64) ** 2, axis=tuple(range(residual.ndim - 1)))
    )
    counts = rms / np.broadcast_to(lsb, rms.shape)
    worst = float(np.min(counts))
    if worst >= MIN_ERROR_LSB:
        return
    warn(
        f"the readout ADC reads the loss error y − target at {worst:.2g} LSB rms on output "
        f"{int(np.argmin(counts))}",
        "the nudge that carries the gradient is mostly rounding",
        "give the readout ADC more bits or a smaller full_scale",
    )


def check_saturation(instrument, before: dict[str, int]) -> None:
    """Warn for every ADC that saturated since ``before`` (counts from :func:`saturation`)."""
    for name, adc in (
        ("readout", instrument.adc_readout),
        ("accumulator", instrument.adc_accumulator),
    ):
        new = adc.n_saturated - before.get(name, 0)
        if new <= 0:
            continue
        over, spec = adc.overload, adc.spec
        if spec.full_scale is not None:
            fix = f"set full_scale >= {_round_up(over * spec.full_scale):.2g} (now {spec.full_scale:g})"
        else:
            fix = f"set headroom >= {_round_up(over * spec.headroom):.2g} (now {spec.headroom:g})"
        warn(
            f"the {name} ADC saturated on {new} sample(s), up to {over:.3g}× its full scale",
            "clipped readings bias the gradient",
            f"{fix}, or lower eps if the echoes outgrow the forward run",
        )


def saturation(instrument) -> dict[str, int]:
    """Saturation counters of the instrument's ADCs (the ``before`` of :func:`check_saturation`)."""
    return {
        "readout": instrument.adc_readout.n_saturated,
        "accumulator": instrument.adc_accumulator.n_saturated,
    }
