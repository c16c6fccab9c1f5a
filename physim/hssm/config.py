"""Configurations of HSSM models and training runs (pydantic, ``extra="forbid"``, frozen).

:data:`PRESETS` holds the training catalogue (``training/*.toml``: the paper's configurations of
the REFERENCE §2 table and CPU-sized variants).
A configuration file is JSON or TOML holding a :class:`TrainSpec` (any field may be omitted
to keep its default); ``load_train_spec`` reports every invalid field with the value received
and what must hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from physim.catalogues import Catalogue
from physim.instrument.specs import NonidealSpec
from physim.spec_base import EPS_MIN, Seed, SpecModel, format_validation_error

DATASETS = ("scp1", "scp2", "ethanol", "ppg", "adding", "copy", "tiny")
DatasetName = Literal["scp1", "scp2", "ethanol", "ppg", "adding", "copy", "tiny"]


class ConfigError(ValueError):
    """An HSSM or training configuration is invalid; the message says what must hold."""


class HSSMSpec(SpecModel):
    """Architecture of a deep Hamiltonian state-space model (REFERENCE §2)."""

    model: Literal["linhru", "nonlinhru"] = Field("linhru", description="HRU family of the cores")
    n_blocks: int = Field(6, description="number of blocks N")
    hidden: int = Field(64, description="hidden width H (encoder output, HRU input channels)")
    ssm_dim: int = Field(256, description="oscillators per HRU core P")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="dropout rate of both dropouts")
    output_step: int | None = Field(
        None,
        ge=1,
        description="regression: every output_step-th step is read (None: the dataset's steps)",
    )
    hru_dt: float | None = Field(
        None, gt=0, description="HRU integrator step δ (default: 1 for LinHRU, 0.1 for NonlinHRU)"
    )
    input_scale: float = Field(
        1.0,
        gt=0,
        description="HRU input matrix B ~ N(0, input_scale²/H); a lossless core integrates its "
        "drive, so its state grows like √L under noise-like input: below 1 keeps the cores' "
        "readout comparable to the skip path D⊙u on long sequences",
    )
    a_range: tuple[float, float] | None = Field(
        None,
        description="LinHRU: initial θ_A ~ U[a_range] (None: the device default (0, 1)); small "
        "values give slow modes that remember over long sequences",
    )
    dt_raw_range: tuple[float, float] | None = Field(
        None,
        description="LinHRU: initial θ_Δt ~ U[dt_raw_range], Δt = sigmoid(θ_Δt) (None: the "
        "device default (−2, 2))",
    )
    a_param: Literal["relu", "softplus"] = Field(
        "relu",
        description="LinHRU: map from θ_A to the stiffness A. 'relu' — A = max(θ_A, 0), the "
        "paper's; a mode whose θ_A crosses 0 is a free particle whose θ_A gets zero gradient, "
        "so it stays one (the trap of the README's adding seed 1). 'softplus' — A = "
        "log(1 + e^θ_A): A > 0 with a nowhere-zero slope, started from relu's initial A",
    )
    complex_ssm: bool = Field(
        False,
        description="LinHRU: complex B and C read out as Re(C φ) (the paper's default; 2P real "
        "oscillators per core with tied A, Δt; about twice the core cost), False: real B, C",
    )
    gelu: Literal["tanh", "erf"] = Field(
        "tanh",
        description="GELU of the readout: 'tanh' — v·½(1 + tanh(√(2/π)(v + 0.044715 v³))), "
        "the form of jax.nn.gelu's default that the paper's code uses (one exponential per "
        "element, value and slope), 'erf' — the exact v·Φ(v)",
    )
    precision: Literal["float64", "float32"] = Field(
        "float64",
        description="storage of the sequence-sized activations: 'float32' keeps the residual "
        "stream, the norm outputs, the core trajectories φ and their gradients in float32 and "
        "runs the periphery's matrix products in float32 (half the memory, faster); the "
        "Hamiltonian cores still integrate and echo in float64 (a large input matrix B forms "
        "the drive and its gradients as float32 products), and every parameter gradient is "
        "summed in float64. 'float64': everything in float64",
    )
    norm: Literal["layer", "batch"] = Field(
        "layer",
        description="block input norm: 'layer' (over channels, per step) or 'batch' (per "
        "channel over batch and time, running statistics at evaluation, as in the paper's "
        "code; leaves no constant offset in the cores' drive)",
    )
    norm_momentum: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="batch norm: weight of each batch in the running statistics",
    )
    norm_eps: float = Field(1e-5, gt=0, description="variance floor of the norm")
    nonideal: str | NonidealSpec | list[str | NonidealSpec] | None = Field(
        None,
        description="run every block's core on a chip (physim.hssm.chips): a non-ideality "
        "preset name, TOML path or inline table shared by the blocks, or one per block; None: "
        "ideal cores",
    )
    chip_seed: Seed = Field(
        0,
        description="study seed of the blocks' chips: block i is replicate chip i of this seed "
        "(its fabrication draw and noise streams)",
    )
    eps: float | None = Field(
        None,
        description="RHEL nudge, relative to the final momenta (see physim.rhel); None: 1e-2 for "
        "LinHRU (quadratic H: the centred estimate is exact at any ε, and a large nudge keeps "
        "the echo difference far above round-off), 1e-6 for NonlinHRU (O(ε²) bias)",
    )

    @field_validator("n_blocks", "hidden", "ssm_dim")
    @classmethod
    def _positive_size(cls, v: int, info) -> int:
        if v < 1:
            what = {"ssm_dim": "P (oscillators per core)", "hidden": "H", "n_blocks": "N"}
            raise ValueError(
                f"{info.field_name} = {what[info.field_name]} must be >= 1, got {v}; a block "
                "needs at least one oscillator, one channel and the model one block"
            )
        return v

    @model_validator(mode="after")
    def _linhru_only(self) -> HSSMSpec:
        if self.complex_ssm and self.model != "linhru":
            raise ValueError(
                f"complex_ssm = true needs model = 'linhru' (complex B, C), got {self.model!r}; "
                "drop complex_ssm for a NonlinHRU"
            )
        if self.nonideal is not None and self.precision != "float64":
            raise ValueError(
                "nonideal (cores on chips) needs precision = 'float64', got "
                f"{self.precision!r}; the chips' records are float64"
            )
        if self.model != "linhru" and self.a_param != "relu":
            raise ValueError(
                f"a_param = {self.a_param!r} sets the LinHRU stiffness map; model is "
                f"{self.model!r}; drop a_param for a NonlinHRU"
            )
        for k in ("a_range", "dt_raw_range"):
            if self.model != "linhru" and getattr(self, k) is not None:
                raise ValueError(f"{k} sets the LinHRU initialisation; model is {self.model!r}")
            rng = getattr(self, k)
            if rng is not None and not rng[0] <= rng[1]:
                raise ValueError(f"{k} = (low, high) needs low <= high, got {rng}")
        return self

    @field_validator("eps")
    @classmethod
    def _eps(cls, v: float | None) -> float | None:
        if v is not None and not v >= EPS_MIN:
            raise ValueError(
                f"RHEL nudge eps must be >= {EPS_MIN:.3g} (smaller relative nudges are lost to "
                f"rounding), got {v}; try 1e-6"
            )
        return v


class TrainSpec(SpecModel):
    """A training run: data, model, algorithm and optimiser settings."""

    name: str = Field("", description="catalogue name of a preset (empty for a user's file)")
    description: str = Field("", description="what the configuration is for, and its sources")
    data: DatasetName = Field("tiny", description="dataset name (physim.data)")
    algo: Literal["rhel", "bptt"] = Field("rhel", description="gradient algorithm of the cores")
    model: HSSMSpec = Field(default_factory=HSSMSpec)
    seed: Seed = Field(0, description="seed of initialisation, split, batches and dropout")
    length: int | None = Field(None, ge=1, description="sequence length (None: the dataset's)")
    n_samples: int | None = Field(None, ge=1, description="synthetic tasks: number of samples")
    data_options: dict[str, Any] = Field(
        default_factory=dict,
        description='further dataset options, e.g. {"values": [-1, 1]} for the adding problem '
        "(see physim.data.load_dataset)",
    )
    time_channel: bool = Field(True, description="prepend a time channel t/L to the inputs")
    lr: float = Field(1e-4, description="Adam learning rate")
    lr_warmup: int = Field(
        0,
        ge=0,
        description="raise the learning rate linearly over this many steps, step k at "
        "lr·k/lr_warmup (0: none). A run started from earlier parameters (init_from) has a "
        "fresh Adam, whose first steps move every entry by about lr whatever its gradient; "
        "a warm-up keeps that from undoing what the earlier run learned",
    )
    lr_decay: Literal["none", "cosine"] = Field(
        "none",
        description="learning-rate decay after the warm-up: 'none' keeps lr; 'cosine' lowers "
        "it along half a cosine to 0 at the last step (n_steps), which lets a run that "
        "wanders at a constant lr settle into the basin it found",
    )
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = Field(
        (0.9, 0.999), description="Adam moment decays, each in [0, 1)"
    )
    adam_eps: float = Field(1e-8, gt=0, description="Adam denominator floor")
    clip_norm: float | None = Field(1.0, description="clip the global gradient norm (None: off)")
    batch_size: int = Field(32, ge=1, description="training batch size")
    eval_batch_size: int = Field(64, ge=1, description="evaluation batch size")
    n_steps: int = Field(1000, ge=1, description="maximum number of optimiser steps")
    eval_every: int = Field(100, ge=1, description="evaluate on validation every this many steps")
    patience: int | None = Field(
        10,
        ge=1,
        description="early stop after this many evaluations without improvement (0 or null: "
        "never; TOML has no null)",
    )
    checkpoint_every: int = Field(100, ge=1, description="write a checkpoint every this many steps")
    norm_stat_batches: int = Field(
        0,
        ge=0,
        description="batch norm: before every evaluation set the running statistics to the "
        "mean batch statistics of this many training batches at the current parameters "
        "(precise batch norm; a lossless core integrates the running averages' lag over the "
        "whole sequence, see HSSM.recompute_norm_stats); 0: the running averages",
    )
    init_from: str | None = Field(
        None,
        description="start from the parameters of an earlier run (its directory, whose best.npz "
        "is used, or an .npz file) with the same architecture, e.g. a shorter-sequence run of a "
        "length curriculum; the optimiser starts afresh",
    )
    init_dt_scale: float | None = Field(
        None,
        gt=0,
        le=1,
        description="with init_from, LinHRU: multiply every mode's step Δt by this factor "
        "(θ_Δt = logit(sigmoid(θ_Δt)·factor)); a length curriculum from L_old to L_new with "
        "factor L_old/L_new keeps each mode's response over the same share of the sequence "
        "(adding problem, L = 1600 → 4096: validation MSE 0.063 at the start instead of 0.23); "
        "None: the steps unchanged",
    )
    memory_budget_gb: float = Field(4.0, gt=0, description="refuse runs estimated above this")

    @field_validator("data_options")
    @classmethod
    def _options(cls, v: dict[str, Any]) -> dict[str, Any]:
        taken = sorted(set(v) & {"seed", "time_channel", "length", "n_samples"})
        if taken:
            raise ValueError(
                f"data_options sets {', '.join(taken)}, which are fields of the training "
                f"configuration itself; set {taken[0]} at the top level instead"
            )
        return v

    @model_validator(mode="after")
    def _norm_stats(self) -> TrainSpec:
        if self.norm_stat_batches and self.model.norm != "batch":
            raise ValueError(
                f"norm_stat_batches = {self.norm_stat_batches} recomputes batch-norm statistics, "
                f"but model.norm = {self.model.norm!r}; set it to 0 or use norm = 'batch'"
            )
        if self.init_dt_scale is not None and self.init_from is None:
            raise ValueError(
                f"init_dt_scale = {self.init_dt_scale} rescales the steps of the parameters "
                "that init_from names, but init_from is not set; add --init-from RUN_DIR or "
                "drop init_dt_scale"
            )
        if self.init_dt_scale is not None and self.model.model != "linhru":
            raise ValueError(
                f"init_dt_scale rescales LinHRU steps Δt; model.model = {self.model.model!r} "
                "has none; drop init_dt_scale"
            )
        if self.norm_stat_batches and self.model.nonideal is not None:
            raise ValueError(
                "norm_stat_batches > 0 runs extra forward passes that would advance the chips' "
                "noise streams; set it to 0 with model.nonideal"
            )
        return self

    @field_validator("patience", mode="before")
    @classmethod
    def _patience(cls, v):
        return None if type(v) is int and v == 0 else v

    @field_validator("lr")
    @classmethod
    def _lr(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"learning rate lr must be > 0, got {v}; the paper uses 1e-4")
        return v

    @field_validator("clip_norm")
    @classmethod
    def _clip(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError(f"clip_norm must be > 0 or null (no clipping), got {v}")
        return v

    @field_validator("data", mode="before")
    @classmethod
    def _data(cls, v):
        if v not in DATASETS:
            raise ValueError(f"unknown dataset {v!r}; choose one of {', '.join(DATASETS)}")
        return v


def _format(err: ValidationError, source: str) -> str:
    return format_validation_error(err, "training configuration", source)


def parse_train_spec(data: dict, source: str = "(mapping)") -> TrainSpec:
    """Validate a mapping as a :class:`TrainSpec`, raising :class:`ConfigError` on failure."""
    try:
        return TrainSpec.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format(err, source)) from None


def config_differences(saved: dict, spec: TrainSpec, source: str) -> list[str]:
    """The fields in which a saved configuration (a checkpoint's or a finished run's) differs
    from ``spec``. The saved one is read through today's schema first, so a field added to
    TrainSpec since it was written (at its default) is no difference; one today's schema
    rejects is reported as such."""
    try:
        old = parse_train_spec(saved, source).model_dump(mode="json")
    except ConfigError as err:
        return [f"(no longer a valid configuration: {err})"]
    new = spec.model_dump(mode="json")
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


#: the training presets (``training/``: the paper's configurations of REFERENCE §2 and
#: CPU-sized ones); see :mod:`physim.catalogues` for the lookup order. A user's file may be
#: TOML or JSON.
TRAINING = Catalogue(
    "training",
    "training configuration",
    "physim configs",
    parse_train_spec,
    ConfigError,
    (".toml", ".json"),
)
#: preset name → TrainSpec, read from the catalogue on first use
PRESETS: Mapping[str, TrainSpec] = TRAINING.specs()


def load_train_spec(name_or_path: str | Path) -> TrainSpec:
    """A training spec from a preset name (``scp1-linhru-cpu``) or a JSON/TOML file."""
    return TRAINING.load(name_or_path)


#: the fields of the adding problem's long-range recipe (TrainSpec fields; ``model`` holds
#: HSSMSpec fields), as the ``adding-linhru-*`` presets set them. A lossless core integrates
#: whatever drives it: a constant offset (values in U[0, 1], or a layer norm's per-channel
#: offsets) grows its slow modes without bound and noise-like input like √L, swamping the skip
#: path D⊙u through which the marker·value gate is learned. Zero-mean values, a batch norm
#: (zero-mean channels), B at 0.1 of its usual scale and per-mode steps Δt down to
#: sigmoid(−6) ≈ 2.5e-3 (slow modes for long delays) let the task be learned (see the README).
_LONG_RANGE_FIELDS = ("time_channel", "n_samples", "patience", "data_options")
_LONG_RANGE_MODEL = ("norm", "input_scale", "dt_raw_range", "dropout")


def __getattr__(name: str) -> Any:
    if name == "LONG_RANGE_ADDING":  # read from the catalogue on first use
        spec = PRESETS["adding-linhru-cpu"]
        dump = spec.model_dump(mode="json")
        return {
            **{k: dump[k] for k in _LONG_RANGE_FIELDS},
            "model": {k: dump["model"][k] for k in _LONG_RANGE_MODEL},
        }
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
