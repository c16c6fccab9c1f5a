"""Typed registries of the extension axes (non-ideality sources, study measures, …).

A :class:`Registry` maps a kind's name to its entry (a small class or object that brings its
spec class and its behaviour hooks). physim registers its own kinds when the module that owns
the axis is imported; other packages add kinds through Python entry points, as xarray's I/O
backends do::

    [project.entry-points."physim.sources"]
    gain_noise = "my_package.gain_noise"     # a module that registers its kind on import

The entry points of a group are loaded once, lazily, the first time the registry is read.
Asking for an unknown kind is an error that lists the known ones — never a silent fallback.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownKindError(KeyError):
    """A kind that no registry entry (and no installed plugin) provides."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Name → entry for one extension axis, filled by physim and by entry-point plugins.

    Parameters
    ----------
    name
        What a kind of this axis is called in messages ("non-ideality source").
    entry_point_group
        The ``importlib.metadata`` entry-point group other packages register under
        (``physim.sources``); loading an entry point imports its module (which registers its
        kinds) and, when the loaded object is not a module, registers that object under the
        entry point's name.
    """

    def __init__(self, name: str, entry_point_group: str):
        self.name = name
        self.group = entry_point_group
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._loading = False
        #: entry points that failed to load: name → message (shown in unknown-kind errors)
        self.failed: dict[str, str] = {}

    # ------------------------------------------------------------------ writing
    def register(self, name: str, entry: T | None = None) -> T | Callable[[T], T]:
        """Register ``entry`` under ``name``; without ``entry``, a decorator doing so.

        Registering a second, different entry under a taken name is an error.
        """

        def add(obj: T) -> T:
            old = self._entries.get(name)
            if old is not None and old is not obj:
                raise ValueError(
                    f"{self.name} kind {name!r} is registered twice ({_where(old)} and "
                    f"{_where(obj)}); rename one of them"
                )
            self._entries[name] = obj
            return obj

        return add if entry is None else add(entry)

    # ------------------------------------------------------------------ reading
    def load(self) -> None:
        """Import every entry point of the group once (later calls do nothing)."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            for ep in importlib.metadata.entry_points(group=self.group):
                try:
                    obj = ep.load()
                except Exception as err:  # a broken plugin must not break physim itself
                    self.failed[ep.name] = f"{ep.value}: {type(err).__name__}: {err}"
                    warnings.warn(
                        f"physim plugin {ep.name!r} ({self.group}) failed to load: "
                        f"{type(err).__name__}: {err}; its kinds are unavailable",
                        stacklevel=2,
                    )
                    continue
                if not isinstance(obj, type(importlib)) and ep.name not in self._entries:
                    self.register(ep.name, obj)
            self._loaded = True
        finally:
            self._loading = False

    def get(self, name: str) -> T:
        """The entry of kind ``name``; raises :class:`UnknownKindError` listing known kinds."""
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            msg = f"unknown {self.name} kind {name!r}; known kinds: {', '.join(self.names())}"
            if self.failed:
                msg += f" (plugins that failed to load: {', '.join(sorted(self.failed))})"
            raise UnknownKindError(msg) from None

    def names(self) -> tuple[str, ...]:
        """Every registered kind, sorted."""
        self.load()
        return tuple(sorted(self._entries))

    def items(self) -> list[tuple[str, T]]:
        self.load()
        return sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, {self.group!r}, kinds={list(self._entries)})"


def _where(obj: object) -> str:
    mod = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{mod}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"
