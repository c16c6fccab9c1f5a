"""Replicate chips: the one seeding shared by studies, the budget and ``export-spice``.

A *replicate* is one simulated chip. Replicate ``R`` of seed ``S`` is
``numpy.random.SeedSequence(S, spawn_key=(R,))``, and every random source of the chip (mismatch
draw, thermal noise, drift, flip error, each ADC's noise and dither) and the instrument's own
draws (thermal state preparation) take their seeds from their own child stream of it
(:func:`physim.instrument.specs.reseed`). So replicate ``R`` of seed ``S`` is the same chip at
every point of a study, in every budget level and in a SPICE export, and adding or removing one
source never changes another's draws.
"""

from __future__ import annotations

import numpy as np

from physim.instrument.specs import NonidealSpec, reseed


def chip_sequence(seed: int, replicate: int) -> np.random.SeedSequence:
    """The seed sequence of replicate ``replicate`` of seed ``seed`` (both >= 0)."""
    if seed < 0 or replicate < 0:
        raise ValueError(
            f"a chip needs seed >= 0 and replicate >= 0, got seed = {seed}, replicate = "
            f"{replicate}; give non-negative integers"
        )
    return np.random.SeedSequence(seed, spawn_key=(replicate,))


def replicate_chip(
    nonideal: NonidealSpec, replicate: int, seed: int = 0
) -> tuple[NonidealSpec, int]:
    """Replicate ``replicate`` of ``seed``: ``nonideal`` with every source re-seeded from its own
    stream, and the seed of the instrument's own draws (``Instrument(..., seed=...)``)."""
    return reseed(nonideal, chip_sequence(seed, replicate))
