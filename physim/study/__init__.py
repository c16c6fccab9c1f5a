"""Robustness studies: sweeps of device, protocol and non-ideality parameters over replicates.

``load_study`` reads a study (catalogue name or TOML), ``expand`` validates every point before
anything runs, ``run_study(spec, executor=None)`` runs it through any
``concurrent.futures.Executor`` and returns an ``xarray.Dataset``.
"""

from physim.study.engine import dask_executor, local_executor, run_plan, run_study, run_tasks
from physim.study.expand import Plan, count_points, expand
from physim.study.spec import StudyError, StudySpec, load_study, parse_study, study_catalogue
from physim.study.store import StudyStore, read_journal, to_dataset

__all__ = [
    "Plan",
    "StudyError",
    "StudySpec",
    "StudyStore",
    "count_points",
    "dask_executor",
    "expand",
    "load_study",
    "local_executor",
    "parse_study",
    "read_journal",
    "run_plan",
    "run_study",
    "run_tasks",
    "study_catalogue",
    "to_dataset",
]
