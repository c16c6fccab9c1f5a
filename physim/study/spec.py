"""Study specs: what a user writes to sweep device, protocol and non-ideality parameters.

A study is a base experiment (device, protocol, non-ideality; each a catalogue name, a path or an
inline table), what each point measures, and axes that name fields of the base specs by a path::

    name = "lc-ladder-noise-budget"
    replicates = 3                      # simulated chips per point
    [base]
    device = "lc-ladder-8"
    protocol = "rhel-centred-rerun"
    nonideal = { sources = [{ kind = "dissipation", quality_factor = 100.0 }] }
    set = { "protocol.eps" = 1e-2 }     # fixed changes to the base
    [measure]
    kind = "gradient"
    [[axes]]
    path = "nonideal.dissipation.quality_factor"
    logspace = [10.0, 1e5, 9]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from physim.catalogues import Catalogue
from physim.spec_base import SpecError, SpecModel, format_validation_error
from physim.study.measures import MEASURES
from physim.study.measures.gradient import GradientMeasure
from physim.study.measures.offline_vs_insitu import OfflineVsInsituMeasure
from physim.study.measures.train import TrainMeasure

__all__ = [
    "MEASURE_KINDS",
    "AxisSpec",
    "BaseSpec",
    "ExecutorSpec",
    "GradientMeasure",
    "MeasureSpec",
    "OfflineVsInsituMeasure",
    "StudyError",
    "StudySpec",
    "TrainMeasure",
    "load_study",
    "parse_study",
    "read_study_toml",
    "study_catalogue",
    "study_from_json",
]

DEFAULT_MAX_POINTS = 100_000

Scalar = bool | int | float | str
Inline = dict[str, Any]


class StudyError(SpecError):
    """A study failed validation; the message names the point, the path, the value and the fix."""


class BaseSpec(SpecModel):
    """The experiment every point starts from."""

    device: str | Inline = Field(description="device: catalogue name, TOML path or inline table")
    protocol: str | Inline = Field(
        "rhel-centred-rerun", description="protocol: catalogue name, TOML path or inline table"
    )
    nonideal: str | Inline | None = Field(
        None, description="non-ideality: TOML path or inline table (default: the ideal instrument)"
    )
    set: dict[str, Scalar | list[Scalar]] = Field(
        default_factory=dict, description="fixed changes applied to the base, path = value"
    )


#: the ``[measure]`` table: a discriminated union of every registered measure's spec
MEASURE_KINDS: tuple[str, ...] = MEASURES.names()
MeasureSpec = Annotated[
    Union[tuple(MEASURES.get(k).spec_class for k in MEASURE_KINDS)],  # noqa: UP007
    Field(discriminator="kind"),
]


class AxisSpec(SpecModel):
    """One swept field. Give exactly one of ``values``, ``linspace``, ``logspace``, ``range``
    (grid and zip studies) or ``uniform``, ``loguniform`` (random and latin-hypercube)."""

    path: str = Field(
        min_length=1, description="field of the base specs, e.g. nonideal.adc.bits or device.dt"
    )
    name: str | None = Field(None, description="dimension name (default: the path's last part)")
    units: str | None = Field(
        None, description="unit label (default: from the field's description)"
    )
    long_name: str | None = Field(None, description="axis label (default: the field's description)")
    values: list[Scalar | list[Scalar]] | None = Field(None, description="explicit values")
    linspace: tuple[float, float, int] | None = Field(None, description="(start, stop, num)")
    logspace: tuple[float, float, int] | None = Field(
        None, description="(start, stop, num), start and stop are values, not exponents"
    )
    range: tuple[int, int] | tuple[int, int, int] | None = Field(
        None, description="integers (start, stop[, step]), stop included"
    )
    uniform: tuple[float, float] | None = Field(None, description="(low, high) for random/LHS")
    loguniform: tuple[float, float] | None = Field(None, description="(low, high) for random/LHS")

    @model_validator(mode="after")
    def _one_source(self) -> AxisSpec:
        given = [
            k
            for k in ("values", "linspace", "logspace", "range", "uniform", "loguniform")
            if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                f"axis {self.path!r}: give exactly one of values, linspace, logspace, range, "
                f"uniform, loguniform (got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def dim(self) -> str:
        return self.name or self.path.rsplit(".", 1)[-1]

    @property
    def sampled(self) -> bool:
        return self.uniform is not None or self.loguniform is not None

    @property
    def log_scale(self) -> bool:
        return self.logspace is not None or self.loguniform is not None


class ExecutorSpec(SpecModel):
    """Where the points run when ``--executor dask`` is given (CLI options take precedence)."""

    kind: Literal["local", "dask", "slurm", "pbs"] = Field(
        "local", description="local pool, dask (LocalCluster or address), or dask-jobqueue"
    )
    address: str | None = Field(None, description="scheduler address, tcp://host:8786")
    workers: int | None = Field(None, ge=1, description="local/LocalCluster workers")
    cores: int = Field(1, ge=1, description="jobqueue: cores per job")
    memory: str = Field("2GB", description="jobqueue: memory per job, e.g. 4GB")
    walltime: str = Field("01:00:00", description="jobqueue: walltime per job, HH:MM:SS")
    jobs: int = Field(1, ge=1, description="jobqueue: number of jobs to start")
    queue: str | None = Field(None, description="jobqueue: partition/queue name")
    account: str | None = Field(None, description="jobqueue: account/project to charge")
    timeout: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="seconds to wait for a scheduler to answer (at start and at each "
        "heartbeat); a lost scheduler is detected within heartbeat + timeout, s",
    )
    heartbeat: float = Field(
        5.0, gt=0, le=3600, description="seconds between checks that the scheduler answers, s"
    )


class StudySpec(SpecModel):
    """A robustness study (see module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")

    name: str = Field(min_length=1, description="catalogue name")
    description: str = ""
    seed: int = Field(0, ge=0, description="study seed; replicate r is SeedSequence(seed, r)")
    replicates: int = Field(1, ge=1, description="independent simulated chips per point")
    # "index" (every source seed = seed + replicate, one seed for every noise source) is kept
    # only so that the results of old study folders stay readable; expand() refuses to run it
    seeding: Literal["sequence", "index"] = Field(
        "sequence",
        description="sequence (the only one that runs): replicate r is physim.seeding."
        "replicate_chip, every source seed from its own stream of SeedSequence(seed, r); "
        "'index' (every seed = seed + replicate) is read in old study folders but not run",
    )
    combine: Literal["grid", "zip", "random", "latin-hypercube"] = Field(
        "grid", description="how axes combine"
    )
    n_samples: int | None = Field(None, ge=1, description="points of a random/LHS study")
    max_points: int = Field(
        DEFAULT_MAX_POINTS, ge=1, description="refuse studies with more points than this"
    )
    log_points: bool = Field(
        False,
        description="write each point's H5MD log to DIR/points/point-<index>.h5 (by the worker "
        "that runs it: on a cluster DIR must be on a shared file system)",
    )
    base: BaseSpec
    measure: MeasureSpec = Field(default_factory=lambda: GradientMeasure(kind="gradient"))
    axes: list[AxisSpec] = Field(default_factory=list, description="swept fields")
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)

    @model_validator(mode="after")
    def _consistent(self) -> StudySpec:
        sampled = self.combine in ("random", "latin-hypercube")
        for a in self.axes:
            if a.sampled != sampled:
                raise ValueError(
                    f"axis {a.path!r}: combine = {self.combine!r} needs "
                    + (
                        "uniform or loguniform bounds"
                        if sampled
                        else "values/linspace/logspace/range"
                    )
                )
        if sampled and self.n_samples is None:
            raise ValueError(f"combine = {self.combine!r} needs n_samples = the number of points")
        dims = [a.dim for a in self.axes]
        dup = sorted({d for d in dims if dims.count(d) > 1})
        if dup or "replicate" in dims:
            raise ValueError(
                f"axis names must be unique and not 'replicate', got {dims}; set name = ... on "
                "the axes that clash"
            )
        return self


_ADAPTER: TypeAdapter = TypeAdapter(StudySpec)


def _format(err: ValidationError, source: str) -> str:
    return format_validation_error(err, "study spec", source, tags={"kind": MEASURE_KINDS})


def parse_study(data: dict, source: str = "(mapping)") -> StudySpec:
    """Validate a mapping as a :class:`StudySpec`."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        raise StudyError(_format(err, source)) from None


def study_from_json(text: str) -> StudySpec:
    try:
        return _ADAPTER.validate_json(text)
    except ValidationError as err:
        raise StudyError(_format(err, "(json)")) from None


def _parse_study_file(data: dict, source: str) -> StudySpec:
    # relative device/protocol/non-ideality paths in a study file are relative to its folder
    base = dict(data.get("base", {}))
    folder = Path(source).parent
    for key in ("device", "protocol", "nonideal"):
        v = base.get(key)
        if isinstance(v, str) and v.endswith(".toml") and not Path(v).is_absolute():
            cand = folder / v
            if cand.exists():
                base[key] = str(cand.resolve())
    if base:
        data = {**data, "base": base}
    return parse_study(data, source)


#: the study catalogue (``studies/``); see :mod:`physim.catalogues` for the lookup order
STUDIES = Catalogue("studies", "study", "physim studies", _parse_study_file, StudyError)


def study_catalogue() -> dict[str, Path]:
    """Catalogue name → TOML path of the shipped studies, sorted by name."""
    return STUDIES.entries()


def read_study_toml(name_or_path: str | Path) -> tuple[dict, Path]:
    """The raw mapping of a study (catalogue name or TOML path) and the file it came from."""
    path = STUDIES.resolve(name_or_path)
    return STUDIES.read(path), path


def load_study(name_or_path: str | Path) -> StudySpec:
    """A study from a catalogue name (``chain-16-mismatch``) or a path to a TOML file.

    Relative device/protocol/non-ideality paths in the file are resolved against its folder.
    """
    return STUDIES.load(name_or_path)
