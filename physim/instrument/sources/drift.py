"""Slow parameter drift between physical runs (hooks ``prepare`` and ``physics``).

Zero value: ``relative_std = 0``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from physim.instrument.sources.base import Level, NonNeg, Seed, Source, SpecModel, register_source


class DriftSpec(SpecModel):
    """Slow parameter drift between physical runs, as a relative change of element values.

    ``random_walk``: δ_{n+1} = δ_n + relative_std · ξ per run. ``one_over_f``: a sum of
    ``n_poles`` Ornstein–Uhlenbeck processes with correlation times log-spaced from 1 to
    ``longest_runs`` runs, weighted so the spectrum is ∝ 1/f between them; ``relative_std`` is
    the stationary rms.
    """

    kind: Literal["drift"]
    model: Literal["random_walk", "one_over_f"] = Field("random_walk", description="drift process")
    relative_std: NonNeg = Field(0.0, description="relative size of the drift (1), see model")
    n_poles: int = Field(6, ge=1, le=32, description="OU components of the 1/f model")
    longest_runs: float = Field(
        1e4, gt=1, description="longest correlation time of the 1/f model, runs"
    )
    seed: Seed = Field(0, description="seed of the drift stream")


@register_source
class Drift(Source):
    kind = "drift"
    spec_class = DriftSpec
    streams = {"": 3}
    levels = {"": Level("relative_std", "relative std per run (1)", +1, 1e-9, 0.1)}
    order = 20  # after the fabrication mismatch: w · (1 + ξ) · (1 + δ)

    def __init__(self, spec: DriftSpec, instrument):
        super().__init__(spec, instrument)
        self.rng = np.random.default_rng(spec.seed)
        self.drift = np.zeros_like(instrument.device.w_base)
        self._poles: np.ndarray | None = None

    @classmethod
    def is_zero(cls, spec: DriftSpec) -> bool:
        return spec.relative_std == 0.0

    def prepare(self) -> bool:
        # the first run starts from the chip as built; every later one after a drift step
        if self.instrument.n_runs == 0:
            return False
        self.advance()
        return True

    def advance(self) -> None:
        spec = self.spec
        shape = self.instrument.device.w_base.shape
        if spec.model == "random_walk":
            self.drift = self.drift + spec.relative_std * self.rng.standard_normal(shape)
            return
        # 1/f: OU components with log-spaced correlation times and equal variance per decade
        taus = np.logspace(0.0, np.log10(spec.longest_runs), spec.n_poles)
        a = np.exp(-1.0 / taus)
        sigma = spec.relative_std / np.sqrt(spec.n_poles)
        if self._poles is None:
            self._poles = sigma * self.rng.standard_normal((spec.n_poles, *shape))
        else:
            xi = self.rng.standard_normal((spec.n_poles, *shape))
            self._poles = a[:, None] * self._poles + sigma * np.sqrt(1.0 - a[:, None] ** 2) * xi
        self.drift = self._poles.sum(axis=0)

    def physics(self, w, B):
        return (w * (1.0 + self.drift) if np.any(self.drift != 0.0) else None), None
