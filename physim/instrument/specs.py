"""Non-ideality specs: what a user writes to describe an imperfect instrument.

A :class:`NonidealSpec` is a list of *sources*, each a pydantic model discriminated by ``kind``
and carrying its own ``seed`` when it draws random numbers, so that switching one source on or
off never changes the draws of another. Every source at its zero value (Q = ∞, T = 0, no
spread, no drift, perfect flip, converters absent) reproduces the ideal run bit for bit.

TOML form::

    name = "pcb-lc"
    [[sources]]
    kind = "dissipation"
    quality_factor = 100.0
    temperature = 300.0
    seed = 1
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from physim.catalogues import Catalogue
from physim.spec_base import InfFloat, Seed, SpecError, SpecModel, format_validation_error

BOLTZMANN = 1.380649e-23  # J/K

NonNeg = Annotated[float, Field(ge=0)]
#: smallest quality factor: Q = 0.5 is critical damping, and below 1e-3 a mode loses its
#: energy within 1/6000 of a period — a resistor, not a resonator (and exp(−ωh/Q) underflows)
Q_MIN = 1e-3


class DissipationSpec(SpecModel):
    """Linear loss with thermal (Johnson–Nyquist / Langevin) noise at temperature T.

    Friction acts on velocities: dp = −D M⁻¹ p dt + √(2 k_B T) D^½ dW, with M the kinetic mass
    matrix (T = ½ pᵀM⁻¹p; capacitances for LC networks). Give either ``quality_factor`` (per
    normal mode of the device linearised at q = 0, modes sorted by ascending frequency; energy
    decays as exp(−ω t / Q)) or ``damping_rate`` γ per degree of freedom (D = diag(γ_i M_ii);
    for an LC node this is a shunt conductance G = γ C to ground).
    """

    # Q = inf is a valid (lossless) mode; JSON must carry it as Infinity to round-trip
    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=False
    )

    kind: Literal["dissipation"]
    quality_factor: InfFloat | list[InfFloat] | None = Field(
        None,
        description=f"quality factor Q = ω/γ per mode (1), Q >= {Q_MIN:g}; inf = a lossless mode; "
        "a scalar applies to every mode",
    )
    damping_rate: float | list[float] | None = Field(
        None, description="damping rate γ per degree of freedom, 1/s (1/step for HRUs)"
    )
    temperature: NonNeg = Field(0.0, description="bath temperature T, K")
    boltzmann: float = Field(
        BOLTZMANN,
        gt=0,
        description="k_B, J/K; set 1 for dimensionless devices so that T is an energy",
    )
    compensation: float = Field(
        0.0,
        ge=0,
        le=2,
        description="loss compensation during the echo (1): a gain stage makes the echo's net "
        "damping (1 − c)·D; c = 1 makes the echo lossless, c = 2 runs it anti-damped",
    )
    seed: Seed = Field(0, description="seed of the thermal-noise stream")

    @model_validator(mode="after")
    def _one_of(self) -> DissipationSpec:
        if (self.quality_factor is None) == (self.damping_rate is None):
            raise ValueError(
                "give exactly one of quality_factor (per mode) or damping_rate (per dof), "
                f"got quality_factor={self.quality_factor!r}, damping_rate={self.damping_rate!r}"
            )
        vals = self.quality_factor if self.quality_factor is not None else self.damping_rate
        vals = vals if isinstance(vals, list) else [vals]
        name = "quality_factor" if self.quality_factor is not None else "damping_rate"
        for v in vals:
            if name == "quality_factor" and not v >= Q_MIN:
                raise ValueError(
                    f"{name} must be >= {Q_MIN:g} (a mode damped within a fraction of its period "
                    f"is no oscillator; use 'inf' for a lossless mode), got {v}"
                )
            if name == "damping_rate" and not v >= 0:
                raise ValueError(f"{name} must be >= 0, got {v}")
        return self


class MismatchSpec(SpecModel):
    """Device-to-device spread: each element value is multiplied by (1 + relative_dtod · ξ).

    Drawn once when the instrument is built (the chip is made once) and frozen thereafter.
    """

    kind: Literal["mismatch"]
    relative_dtod: NonNeg = Field(
        0.0, description="relative std of every Hamiltonian element value (1)"
    )
    input_dtod: NonNeg = Field(0.0, description="relative std of every input-matrix entry (1)")
    seed: Seed = Field(0, description="seed of the fabrication draw")


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


class FlipErrorSpec(SpecModel):
    """Imperfect momentum reversal: p ← −(1 + g) p, applied τ late (τ < 0: early).

    The timing error lets the device evolve freely for τ before the flip.
    """

    kind: Literal["flip_error"]
    gain_error: float = Field(0.0, gt=-1, description="systematic relative flip gain error g (1)")
    gain_std: NonNeg = Field(0.0, description="per-flip random gain error std (1)")
    timing_error: float = Field(0.0, description="systematic flip delay τ, s")
    timing_std: NonNeg = Field(0.0, description="per-flip timing jitter std, s")
    seed: Seed = Field(0, description="seed of the flip-error stream")


class DACSpec(SpecModel):
    """Digital-to-analog converter on programmed parameters or on the drive (and nudges).

    Uniform mid-tread quantiser with 2^bits codes over [−full_scale, full_scale]; values
    outside saturate (counted). Without ``full_scale`` the range of each parameter group (or
    input channel) is the smallest power of two above ``headroom`` times its largest magnitude
    at the first programming.
    """

    kind: Literal["dac"]
    target: Literal["parameters", "drive"] = Field(description="what the DAC writes")
    bits: int = Field(ge=1, le=48, description="resolution, bits")
    full_scale: float | None = Field(
        None, gt=0, description="half range, in the unit of the target (θ or input unit)"
    )
    headroom: float = Field(2.0, ge=1, description="auto range = headroom × largest value (1)")


class ADCSpec(SpecModel):
    """Analog-to-digital converter on every measurement of a kind of readout.

    ``readout``: trajectory readouts (positions, fluxes); ``accumulator``: the integrating
    readout of ∂H/∂θ. Additive Gaussian noise of ``noise_lsb`` LSB and, with ``dither``, uniform
    ±½ LSB dither are added before rounding. Codes outside ±(2^(bits−1) − 1) saturate (counted).
    Without ``full_scale`` each channel's range is the smallest power of two above ``headroom``
    times its largest magnitude at the first measurement of that record (a calibration shot),
    then fixed.
    """

    kind: Literal["adc"]
    target: Literal["readout", "accumulator"] = Field(description="which records it digitises")
    bits: int = Field(ge=2, le=48, description="resolution, bits")
    full_scale: float | None = Field(
        None, gt=0, description="half range, in the measured quantity's unit"
    )
    headroom: float = Field(1.25, ge=1, description="auto range = headroom × largest value (1)")
    noise_lsb: NonNeg = Field(0.0, description="additive input noise std, LSB")
    dither: bool = Field(False, description="add uniform ±½ LSB dither before rounding")
    seed: Seed = Field(0, description="seed of the noise and dither stream")


class NumericsSpec(SpecModel):
    """Arithmetic of the simulation itself (separates round-off from physics).

    ``float32``: states, parameters and drive are stored in single precision. ``fixed_point``:
    bit-reversible integer leapfrog (Levesque–Verlet style): q and p live on integer grids of
    step ``max|x| · 2^−fraction_bits`` (max over an ideal calibration run of the task).
    """

    kind: Literal["numerics"]
    mode: Literal["float64", "float32", "fixed_point"] = Field(
        "float64", description="arithmetic of the state"
    )
    fraction_bits: int = Field(
        40, ge=8, le=52, description="fixed point: grid steps per largest magnitude, bits"
    )


SourceSpec = Annotated[
    DissipationSpec | MismatchSpec | DriftSpec | FlipErrorSpec | DACSpec | ADCSpec | NumericsSpec,
    Field(discriminator="kind"),
]
SOURCE_KINDS = ("adc", "dac", "dissipation", "drift", "flip_error", "mismatch", "numerics")


class NonidealSpec(SpecModel):
    """The imperfections of one simulated instrument (empty = ideal)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=False
    )

    name: str = Field("ideal", description="label used in logs and plots")
    description: str = ""
    sources: list[SourceSpec] = Field(default_factory=list, description="non-ideality sources")

    @model_validator(mode="after")
    def _unique(self) -> NonidealSpec:
        seen: set[tuple[str, str]] = set()
        for i, s in enumerate(self.sources):
            key = (s.kind, getattr(s, "target", ""))
            if key in seen:
                what = f"{s.kind} (target {key[1]})" if key[1] else s.kind
                raise ValueError(f"sources[{i}]: a second {what} source; merge them into one entry")
            seen.add(key)
        kinds = {s.kind for s in self.sources}
        num = self.get("numerics")
        if num is not None and num.mode == "fixed_point" and "dissipation" in kinds:
            raise ValueError(
                "numerics.mode = 'fixed_point' is a bit-reversible model of the ideal "
                "integrator; remove the dissipation source or use float64/float32"
            )
        return self

    def get(self, kind: str, target: str | None = None):
        """The source of ``kind`` (and ``target``), or ``None``."""
        for s in self.sources:
            if s.kind == kind and (target is None or getattr(s, "target", None) == target):
                return s
        return None


_ADAPTER: TypeAdapter = TypeAdapter(NonidealSpec)


class NonidealError(SpecError):
    """A non-ideality file failed validation; the message names field, value and fix."""


def _format(err: ValidationError, source: str) -> str:
    return format_validation_error(err, "non-ideality spec", source, tags={"kind": SOURCE_KINDS})


def parse_nonideal(data: dict, source: str = "(mapping)") -> NonidealSpec:
    """Validate a mapping as a :class:`NonidealSpec`."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        raise NonidealError(_format(err, source)) from None


def nonideal_from_json(text: str) -> NonidealSpec:
    try:
        return _ADAPTER.validate_json(text)
    except ValidationError as err:
        raise NonidealError(_format(err, "(json)")) from None


#: the technology presets (``nonideal/``); see :mod:`physim.catalogues` for the lookup order
NONIDEALS = Catalogue("nonideal", "preset", "physim nonideals", parse_nonideal, NonidealError)


def nonideal_catalogue() -> dict[str, Path]:
    """Catalogue name → TOML path of the shipped technology presets, sorted by name."""
    return NONIDEALS.entries()


def load_nonideal(path: str | Path | None) -> NonidealSpec:
    """A non-ideality spec from a catalogue name (``pcb-c0g``) or a TOML file (``None`` = the
    ideal instrument)."""
    if path is None:
        return NonidealSpec()
    return NONIDEALS.load(path)


# Fixed stream numbers of every random source, so that a source's seed depends only on its kind
# (and converter target) and never on the order or presence of the other sources.
NOISE_STREAMS: dict[tuple[str, str], int] = {
    ("prepare", ""): 0,
    ("mismatch", ""): 1,
    ("dissipation", ""): 2,
    ("drift", ""): 3,
    ("flip_error", ""): 4,
    ("adc", "readout"): 5,
    ("adc", "accumulator"): 6,
}


def _stream_seed(seq: np.random.SeedSequence, key: tuple[str, str]) -> int:
    child = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, NOISE_STREAMS[key]))
    return int(child.generate_state(1, dtype=np.uint64)[0])


def reseed(nonideal: NonidealSpec, seq: np.random.SeedSequence) -> tuple[NonidealSpec, int]:
    """Re-draw the seed of every random source from one ``numpy.random.SeedSequence``.

    Each source's new seed comes from its own child stream ``NOISE_STREAMS[(kind, target)]`` of
    ``seq`` (mismatch draw, thermal noise, drift, flip error, each ADC's noise and dither), so
    adding or removing one source never changes another's draws.

    Returns
    -------
    (NonidealSpec, int)
        The spec with new seeds, and the seed of the instrument's own draws (thermal state
        preparation) to pass as ``Instrument(..., seed=...)``.
    """
    sources = []
    for s in nonideal.sources:
        if "seed" in type(s).model_fields:
            s = s.model_copy(update={"seed": _stream_seed(seq, (s.kind, getattr(s, "target", "")))})
        sources.append(s)
    return nonideal.model_copy(update={"sources": sources}), _stream_seed(seq, ("prepare", ""))
