"""Typed registries of the kinds physim can be extended with (the extension axes of DESIGN.md).

A *kind* is a small class that brings its spec class and its behaviour hooks, and names itself
with a class attribute ``name`` (the value of the spec's discriminator: ``kind = "linhru"``,
``op = "drive"``). A :class:`Registry` holds the kinds of one axis; everything that used to be
a hand-kept list (pydantic unions, tag tuples, ``physim schema``, the numba family dispatch) is
derived from it. It reads like xarray's I/O backends::

    FAMILIES = Registry("device family", "physim.families")

    @FAMILIES.register
    class LinHRU(Family):
        name = "linhru"
        spec = LinHRUSpec
        ...

    FAMILIES.get("linhru")      # the kind class
    FAMILIES.get("lihnru")      # UnknownKindError: unknown device family kind 'lihnru'; known
                                #   kinds: lc_network, linhru, ...
    FAMILIES.names()            # ('lc_network', 'linhru', 'nonlinhru', 'oscillator_network')

``register`` also takes an explicit name (``register("gain", entry)``, or ``@register("gain")``)
for entries that do not carry one. :meth:`Registry.names` is sorted; :meth:`Registry.ordered`
keeps registration order (the built-ins in their fixed order, then the entry-point kinds), for
what must not move when a plugin is installed (device family ids).

**Third-party kinds** come from Python entry points: a package declares, in its
``pyproject.toml``::

    [project.entry-points."physim.families"]
    duffing = "my_package.duffing:Duffing"

and, once installed, its kind is registered the first time the registry is read (``get``,
``names``, ``kinds``, ``in``, iteration): :func:`importlib.metadata.entry_points` is scanned
once, lazily, per registry. An entry point may name a module (its import registers its kinds
through the decorator) or an object: a kind class is registered under its ``name``, anything
else under the entry point's name. A plugin that fails to load is reported with a warning
naming it, and asking for a kind it would have provided is an error that names it again — a
broken plugin never breaks physim itself, and is never silently missing.

Kinds shipped with physim register themselves when their module is imported; each axis's
package imports its built-in kind modules.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Generic, TypeVar

K = TypeVar("K")


class UnknownKindError(KeyError):
    """A kind name that no registered kind answers to; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would print the repr of the message, quotes and all
        return str(self.args[0]) if self.args else ""


class RegistryError(ValueError):
    """A kind cannot be registered: no name, a duplicate name, or missing hooks."""


class Registry(Generic[K]):
    """The registered kinds of one extension axis.

    Parameters
    ----------
    name
        What one kind is, for messages (``"device family"``, ``"protocol step"``).
    entry_point_group
        The entry-point group third-party packages register their kinds under
        (``"physim.families"``).
    """

    def __init__(self, name: str, entry_point_group: str) -> None:
        self.name = name
        self.entry_point_group = entry_point_group
        self._kinds: dict[str, K] = {}
        self._loaded = False
        self._loading = False
        #: entry points that failed to load: name → message (named again by unknown-kind errors)
        self.failed: dict[str, str] = {}

    @property
    def group(self) -> str:
        """The entry-point group (alias of :attr:`entry_point_group`)."""
        return self.entry_point_group

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, {self.entry_point_group!r}, kinds={list(self._kinds)})"

    # ------------------------------------------------------------------ writing
    def register(self, kind: Any, entry: Any = None) -> Any:
        """Register a kind; returns it, so that it works as a class decorator.

        ``register(kind_cls)`` registers under ``kind_cls.name``; ``register(name, entry)``
        under ``name``; ``register(name)`` returns a decorator doing so. Raises
        :class:`RegistryError` when there is no string name or another entry already holds it,
        and whatever :meth:`validate` raises for a malformed kind.
        """
        if isinstance(kind, str):
            if entry is None:
                return lambda obj: self._add(kind, obj)
            return self._add(kind, entry)
        return self._add(getattr(kind, "name", None), kind)

    def _add(self, name: Any, kind_cls: Any) -> Any:
        if not isinstance(name, str) or not name:
            raise RegistryError(
                f"a {self.name} kind needs a class attribute `name` (a non-empty string), "
                f"{kind_cls!r} has {name!r}; set name = '...' on the class"
            )
        held = self._kinds.get(name)
        if held is kind_cls:
            return kind_cls
        if held is not None:
            raise RegistryError(
                f"{self.name} kind {name!r} is registered twice: by {_where(held)} and by "
                f"{_where(kind_cls)}; rename one of them"
            )
        self.validate(kind_cls)
        self._kinds[name] = kind_cls
        return kind_cls

    def validate(self, kind_cls: Any) -> None:
        """Check a kind before it is registered (override per axis); raise RegistryError."""

    # ------------------------------------------------------------------ reading
    def get(self, name: str) -> K:
        """The kind registered as ``name``; :class:`UnknownKindError` names the known ones."""
        self.load()
        try:
            return self._kinds[name]
        except (KeyError, TypeError):
            msg = f"unknown {self.name} kind {name!r}; known kinds: {', '.join(self.names())}"
            if self.failed:
                msg += f" (plugins that failed to load: {', '.join(sorted(self.failed))})"
            msg += f"; a package adds one through the {self.entry_point_group!r} entry points"
            raise UnknownKindError(msg) from None

    def names(self) -> tuple[str, ...]:
        """Registered names, sorted."""
        self.load()
        return tuple(sorted(self._kinds))

    def kinds(self) -> tuple[K, ...]:
        """Registered kinds, in the order of :meth:`names`."""
        self.load()
        return tuple(self._kinds[n] for n in sorted(self._kinds))

    def items(self) -> list[tuple[str, K]]:
        """(name, kind) pairs, in the order of :meth:`names`."""
        self.load()
        return sorted(self._kinds.items(), key=lambda item: item[0])

    def ordered(self) -> tuple[K, ...]:
        """Registered kinds in registration order: the built-ins as their package imports them,
        then the entry-point kinds (by entry-point name) — stable when a plugin is added."""
        self.load()
        return tuple(self._kinds.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._kinds

    def __len__(self) -> int:
        self.load()
        return len(self._kinds)

    # ------------------------------------------------------------------ entry points
    def load(self) -> None:
        """Load the entry points of :attr:`entry_point_group` once (re-entrant: a plugin that
        reads the registry while it loads sees the kinds registered so far)."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            eps = importlib.metadata.entry_points(group=self.entry_point_group)
            for ep in sorted(eps, key=lambda e: e.name):
                try:
                    obj = ep.load()
                except Exception as err:  # a broken plugin must not break physim itself
                    self.failed[ep.name] = f"{ep.value}: {type(err).__name__}: {err}"
                    warnings.warn(
                        f"physim plugin {ep.name!r} ({self.entry_point_group}) failed to load: "
                        f"{type(err).__name__}: {err}; its {self.name} kinds are unavailable — "
                        "fix or uninstall that package",
                        stacklevel=2,
                    )
                    continue
                if isinstance(obj, ModuleType):
                    continue  # importing it registered its kinds
                name = getattr(obj, "name", None)
                if isinstance(name, str) and name:
                    self.register(obj)
                elif ep.name not in self._kinds:
                    self.register(ep.name, obj)
            self._loaded = True
        finally:
            self._loading = False


def import_kind_modules(package: str, path: list[str], skip: tuple[str, ...] = ("base",)) -> None:
    """Import every module of ``package`` (its ``__path__``) but ``skip``: a package that holds
    one kind per module registers physim's own kinds this way, so that adding a kind is adding
    a module."""
    for mod in pkgutil.iter_modules(path):
        if mod.name not in skip:
            importlib.import_module(f"{package}.{mod.name}")


def _where(obj: object) -> str:
    mod = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{mod}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"
