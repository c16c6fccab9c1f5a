"""The shipped catalogues and the one way to look an entry up.

A catalogue is a folder of TOML specs shipped inside the wheel as ``physim/_catalogue/<folder>``
(``devices``, ``protocols``, ``nonideal``, ``studies``, ``training``; the source tree's top-level
folders when physim is installed editable). Every spec loader takes a *name or path* and looks
it up in one order:

1. an existing file (``my-chip.toml``, ``runs/cfg.json``) is read as that file;
2. otherwise a catalogue name (``lc-ladder-8``) is the shipped entry of that name;
3. otherwise an error naming the catalogue's entries and the command that lists them — a
   :class:`CatalogueError`, which is both a ``KeyError`` (an unknown name) and a
   ``FileNotFoundError`` (a missing file).

A file is TOML (or JSON, for the kinds whose :class:`Catalogue` accepts ``.json``), validated by
the kind's own ``parse`` function, which reports through
:func:`physim.spec_base.format_validation_error`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from physim.spec_base import SpecError


class CatalogueError(KeyError, FileNotFoundError):
    """No file and no catalogue entry of that name; the message lists the entries."""

    def __str__(self) -> str:  # a KeyError would quote its message
        return str(self.args[0]) if self.args else ""


def catalogue_dir(folder: str) -> Path:
    """Where the shipped ``folder`` catalogue lives: inside the wheel, or the source tree when
    physim is installed editable."""
    here = Path(__file__).resolve().parent
    for cand in (here / "_catalogue" / folder, here.parent / folder):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"the {folder} catalogue is missing from this installation of physim")


@dataclass(frozen=True)
class Catalogue:
    """One catalogue: its folder, what its entries are called, how one is validated.

    Parameters
    ----------
    folder
        Folder name (``devices``) in the source tree and under ``physim/_catalogue``.
    what
        What one entry is, for messages (``device``, ``non-ideality preset``).
    command
        The command that lists the entries (``physim devices``).
    parse
        ``parse(mapping, source) -> spec``: the kind's validation, raising ``error``.
    error
        The kind's error class (a :class:`physim.spec_base.SpecError` or ``ValueError``).
    suffixes
        File suffixes a user's file may have (TOML always; JSON for training configurations).
    """

    folder: str
    what: str
    command: str
    parse: Callable[[dict, str], Any]
    error: type[Exception] = SpecError
    suffixes: tuple[str, ...] = (".toml",)

    def entries(self) -> dict[str, Path]:
        """Catalogue name → TOML path, sorted by name."""
        return {p.stem: p for p in sorted(catalogue_dir(self.folder).glob("*.toml"))}

    def resolve(self, name_or_path: str | Path) -> Path:
        """The file ``name_or_path`` names, in the lookup order of the module docstring."""
        path = Path(name_or_path)
        if path.is_file():
            return path
        entries = self.entries()
        name = str(name_or_path)
        if name in entries:
            return entries[name]
        if path.suffix in self.suffixes or len(path.parts) > 1:
            raise CatalogueError(f"no {self.what} file {name!r}")
        raise CatalogueError(
            f"unknown {self.what} {name!r}: no file and no {self.what} of that name; "
            f"{self.what}s: {', '.join(entries)} (list them with `{self.command}`)"
        )

    def read(self, path: Path) -> dict:
        """The mapping in a TOML (or JSON) file; a syntax error is ``error``."""
        text = path.read_text()
        try:
            if path.suffix == ".json" and ".json" in self.suffixes:
                return json.loads(text)
            return tomllib.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
            fmt = "JSON" if path.suffix == ".json" else "TOML"
            raise self.error(f"{path}: not valid {fmt}: {err}") from None

    def load(self, name_or_path: str | Path) -> Any:
        """The validated spec of a catalogue name or a file."""
        path = self.resolve(name_or_path)
        return self.parse(self.read(path), str(path))

    def specs(self) -> Mapping[str, Any]:
        """Every entry, validated, as a read-only mapping loaded on first use."""
        return _Specs(self)


class _Specs(Mapping):
    def __init__(self, cat: Catalogue) -> None:
        self._cat = cat
        self._cache: dict[str, Any] | None = None

    def _all(self) -> dict[str, Any]:
        if self._cache is None:
            self._cache = {n: self._cat.load(p) for n, p in self._cat.entries().items()}
        return self._cache

    def __getitem__(self, key: str) -> Any:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def listing(
    cat: Catalogue, columns: Callable[[Any], tuple[str, ...]], widths: tuple[int, ...]
) -> str:
    """The listing of a catalogue, one entry a line: its name, then ``columns(spec)``, each
    padded to ``widths`` (the last column, the description, on one line)."""
    lines = []
    for name, path in cat.entries().items():
        cells = (name, *columns(cat.load(path)))
        cells = (*cells[:-1], " ".join(str(cells[-1]).split()))
        lines.append(
            " ".join(f"{c:<{w}}" for c, w in zip(cells[:-1], widths, strict=False))
            + " "
            + cells[-1]
        )
    return "\n".join(lines)
