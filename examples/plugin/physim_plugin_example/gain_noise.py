"""``gain_noise``: a 1/f fluctuation of the readout gain, before the readout ADC.

Every readout sample y_k (per output channel) reaches the controller as (1 + g_k) · y_k, where
g = Σ_j x_j is a sum of ``n_poles`` Ornstein–Uhlenbeck processes advanced once per readout
sample: x_j,k+1 = a_j x_j,k + σ_j √(1 − a_j²) ξ, a_j = exp(−1/τ_j), with τ_j log-spaced from 1
to ``longest_samples`` samples and σ_j² = relative_std² / n_poles — equal power per decade, so
the spectrum of g is ∝ 1/f between 1/(2π τ_max) and 1/(2π) per sample, and its stationary rms
is ``relative_std``. The first sample is drawn from the stationary distribution. The process
runs on across records (the amplifier does not reset between runs); a trajectory readout
(n_samples, branches, batch, outputs) advances it by n_samples, a snapshot by one.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field
from scipy.signal import lfilter

from physim.instrument.converters import Reading
from physim.instrument.sources import Level, NonNeg, Seed, Source, SpecModel, register_source


class GainNoiseSpec(SpecModel):
    """1/f fluctuation of the readout gain: each readout sample is read as (1 + g) times itself."""

    kind: Literal["gain_noise"]
    relative_std: NonNeg = Field(
        0.0, description="stationary rms of the relative gain fluctuation g (1)"
    )
    n_poles: int = Field(6, ge=1, le=32, description="OU components of the 1/f process (1)")
    longest_samples: float = Field(
        1e4, gt=1, description="longest correlation time, in readout samples (1)"
    )
    seed: Seed = Field(0, description="seed of the gain-noise stream")


@register_source
class GainNoise(Source):
    kind = "gain_noise"
    spec_class = GainNoiseSpec
    levels = {"": Level("relative_std", "relative rms (1)", +1, 1e-9, 1.0)}
    order = 50  # analog: before the readout ADC (order 90)

    def __init__(self, spec: GainNoiseSpec, instrument):
        super().__init__(spec, instrument)
        self.rng = np.random.default_rng(spec.seed)
        taus = np.logspace(0.0, np.log10(spec.longest_samples), spec.n_poles)
        self.a = np.exp(-1.0 / taus)
        self.sigma = spec.relative_std / np.sqrt(spec.n_poles)
        self.state: np.ndarray | None = None  # (n_poles, n_outputs): x_j at the last sample

    @classmethod
    def is_zero(cls, spec: GainNoiseSpec) -> bool:
        return spec.relative_std == 0.0

    def gains(self, n_samples: int, n_channels: int) -> np.ndarray:
        """g for the next ``n_samples`` samples of ``n_channels`` channels, (n_samples, n_ch)."""
        parts = []
        if self.state is None or self.state.shape[1] != n_channels:
            # the first sample: from the stationary distribution
            self.state = self.sigma * self.rng.standard_normal((self.a.size, n_channels))
            parts.append(self.state.sum(axis=0)[None])
            n_samples -= 1
        if n_samples > 0:
            xi = self.rng.standard_normal((self.a.size, n_samples, n_channels))
            g = np.zeros((n_samples, n_channels))
            for j, a in enumerate(self.a):
                c = self.sigma * np.sqrt(1.0 - a * a)
                x, _ = lfilter([c], [1.0, -a], xi[j], axis=0, zi=(a * self.state[j])[None])
                self.state[j] = x[-1]
                g += x
            parts.append(g)
        return np.concatenate(parts)

    def read(self, target: str, name: str, reading: Reading) -> Reading:
        if target != "readout":
            return reading
        y = reading.value
        n = y.shape[0] if y.ndim == 4 else 1  # a trajectory is time-major; a snapshot is one
        g = self.gains(n, y.shape[-1])
        g = g[:, None, None, :] if y.ndim == 4 else g[0]
        return Reading(y * (1.0 + g), None, None, 0)
