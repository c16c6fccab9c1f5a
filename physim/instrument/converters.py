"""Converters between the digital controller and the analog device: quantisers, ADC and DAC.

One uniform mid-tread quantiser serves both directions: ``code = clip(rint(x / lsb), −n, n)``
with ``n = 2^(bits−1) − 1`` and ``lsb = full_scale / n`` per channel (last axis); the value is
``code · lsb``. Inside the range the error is at most half an LSB; outside, the code saturates
and the saturation is counted. Ranges not given explicitly are calibrated once, from the first
values a converter sees for a given record, to the smallest power-of-two range that holds them
with headroom (then frozen, as an instrument's gain setting would be).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from physim.instrument.sources.adc import ADCSpec
    from physim.instrument.sources.dac import DACSpec


def max_code(bits: int) -> int:
    """Largest code of a symmetric ``bits``-bit mid-tread quantiser."""
    return (1 << (bits - 1)) - 1


def quantize(x: np.ndarray, lsb: np.ndarray | float, bits: int) -> tuple[np.ndarray, int]:
    """Integer codes of ``x`` on a grid of step ``lsb`` (broadcast on the last axis).

    Returns the codes (int64) and the number of saturated samples.
    """
    n = max_code(bits)
    raw = np.rint(np.asarray(x, dtype=np.float64) / lsb)
    sat = int(np.count_nonzero(np.abs(raw) > n))
    return np.clip(raw, -n, n).astype(np.int64), sat


def dequantize(codes: np.ndarray, lsb: np.ndarray | float) -> np.ndarray:
    return codes * np.asarray(lsb, dtype=np.float64)


def auto_lsb(x: np.ndarray, bits: int, headroom: float, full_scale: float | None) -> np.ndarray:
    """Per-channel LSB from an explicit full scale, or the smallest power-of-two range holding
    ``headroom`` × the largest |x|."""
    n = max_code(bits)
    x = np.asarray(x, dtype=np.float64)
    if full_scale is not None:
        return np.full(x.shape[-1] if x.ndim else 1, full_scale / n)
    peak = np.max(np.abs(x.reshape(-1, x.shape[-1])), axis=0) if x.size else np.zeros(1)
    # an all-zero channel borrows the largest range so that it can still read a signal later
    fallback = float(np.max(peak)) if np.any(peak > 0) else 1.0
    peak = np.where(peak > 0, peak, fallback)
    # auto-ranging picks the smallest binary range (a programmable-gain stage in steps of 2)
    # that holds headroom × the calibration shot; a range fitted exactly to the shot would
    # make that shot read back almost without error
    return 2.0 ** np.ceil(np.log2(headroom * peak)) / n


@dataclass(frozen=True)
class Reading:
    """One digitised measurement: ``value`` is what the controller sees.

    ``codes`` and ``lsb`` are set when an ADC is present (value = codes · lsb exactly).
    """

    value: np.ndarray
    codes: np.ndarray | None
    lsb: np.ndarray | None
    n_saturated: int


class ADC:
    """The ADC of one kind of record (ideal when ``spec`` is None)."""

    def __init__(self, spec: ADCSpec | None):
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed) if spec is not None else None
        self.lsb: dict[str, np.ndarray] = {}
        self.n_saturated = 0
        #: largest |input| / full scale among saturated readings (0 when none saturated)
        self.overload = 0.0

    def read(self, name: str, x: np.ndarray) -> Reading:
        spec = self.spec
        if spec is None:
            return Reading(np.asarray(x, dtype=np.float64), None, None, 0)  # no copy
        if name not in self.lsb:
            self.lsb[name] = auto_lsb(x, spec.bits, spec.headroom, spec.full_scale)
        lsb = self.lsb[name]
        xin = np.asarray(x, dtype=np.float64)
        if spec.noise_lsb > 0:
            xin = xin + spec.noise_lsb * lsb * self.rng.standard_normal(xin.shape)
        if spec.dither:
            xin = xin + lsb * self.rng.uniform(-0.5, 0.5, xin.shape)
        codes, sat = quantize(xin, lsb, spec.bits)
        self.n_saturated += sat
        if sat:
            ratio = np.abs(xin) / (lsb * max_code(spec.bits))
            self.overload = max(self.overload, float(np.max(ratio)))
        return Reading(dequantize(codes, lsb), codes, lsb, sat)


class DAC:
    """The DAC that writes one kind of analog value (ideal when ``spec`` is None).

    ``groups`` are slices of the last axis that share a range (parameter groups); by default
    every channel has its own range.
    """

    def __init__(self, spec: DACSpec | None):
        self.spec = spec
        self.lsb: np.ndarray | None = None
        self.n_saturated = 0

    def write(self, x: np.ndarray, groups: list[slice] | None = None) -> np.ndarray:
        spec = self.spec
        if spec is None:
            return x
        x = np.asarray(x, dtype=np.float64)
        if self.lsb is None:
            if groups is None:
                self.lsb = auto_lsb(x, spec.bits, spec.headroom, spec.full_scale)
            else:
                lsb = np.empty(x.shape[-1])
                for sl in groups:
                    part = x[..., sl]
                    peak = auto_lsb(part.reshape(-1, 1), spec.bits, spec.headroom, spec.full_scale)
                    lsb[sl] = peak[0]
                self.lsb = lsb
        codes, sat = quantize(x, self.lsb, spec.bits)
        self.n_saturated += sat
        return dequantize(codes, self.lsb)
