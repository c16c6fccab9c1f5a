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
    FAMILIES.get("lihnru")      # UnknownKindError: unknown device family 'lihnru'; known: ...
    FAMILIES.names()            # ('oscillator_network', ..., 'linhru', ...), registration order

**Third-party kinds** come from Python entry points: a package declares, in its
``pyproject.toml``::

    [project.entry-points."physim.families"]
    duffing = "my_package.duffing:Duffing"

and, once installed, its kind is registered the first time the registry is read (``get``,
``names``, ``kinds``, iteration, ``in``): :func:`importlib.metadata.entry_points` is scanned
once, lazily, per registry. An entry point may name the kind class (registered then) or a module
whose import registers its kinds through the decorator. A plugin that fails to load stops with
an error naming the entry point and its distribution — never a silent omission.

Kinds shipped with physim register themselves when their module is imported; each axis's
package imports its built-in kind modules, so the built-ins always come first, in a fixed order,
then the entry-point kinds sorted by entry-point name.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

K = TypeVar("K", bound=type)


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
        self._discovered = False
        self._discovering = False

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, {self.entry_point_group!r})"

    # ------------------------------------------------------------------ writing
    def register(self, kind_cls: K) -> K:
        """Register ``kind_cls`` under ``kind_cls.name``; returns it (usable as a decorator).

        Raises :class:`RegistryError` when the class has no string ``name`` or another class
        already holds that name, and whatever :meth:`validate` raises for a malformed kind.
        """
        name = getattr(kind_cls, "name", None)
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
                f"{self.name} {name!r} is registered twice: by {_where(held)} and by "
                f"{_where(kind_cls)}; rename one of them"
            )
        self.validate(kind_cls)
        self._kinds[name] = kind_cls
        return kind_cls

    def validate(self, kind_cls: K) -> None:
        """Check a kind before it is registered (override per axis); raise RegistryError."""

    # ------------------------------------------------------------------ reading
    def get(self, name: str) -> K:
        """The kind registered as ``name``; :class:`UnknownKindError` names the known ones."""
        self._discover()
        try:
            return self._kinds[name]
        except (KeyError, TypeError):
            raise UnknownKindError(
                f"unknown {self.name} {name!r}; known: {', '.join(self._kinds) or 'none'} (a "
                f"package adds one through the {self.entry_point_group!r} entry-point group)"
            ) from None

    def names(self) -> tuple[str, ...]:
        """Registered names: the built-ins in their fixed order, then the entry-point kinds."""
        self._discover()
        return tuple(self._kinds)

    def kinds(self) -> tuple[K, ...]:
        """Registered kind classes, in the order of :meth:`names`."""
        self._discover()
        return tuple(self._kinds.values())

    def __iter__(self) -> Iterator[K]:
        return iter(self.kinds())

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._kinds

    def __len__(self) -> int:
        self._discover()
        return len(self._kinds)

    # ------------------------------------------------------------------ entry points
    def _discover(self) -> None:
        """Load the entry points of :attr:`entry_point_group` once (re-entrant: a plugin that
        reads the registry while it loads sees the kinds registered so far)."""
        if self._discovered or self._discovering:
            return
        self._discovering = True
        try:
            for ep in sorted(entry_points(group=self.entry_point_group), key=lambda e: e.name):
                try:
                    obj = ep.load()
                except Exception as err:
                    dist = getattr(getattr(ep, "dist", None), "name", "?")
                    raise RegistryError(
                        f"the {self.name} entry point {ep.name!r} = {ep.value!r} (distribution "
                        f"{dist!r}, group {self.entry_point_group!r}) failed to load: "
                        f"{type(err).__name__}: {err}; fix or uninstall that package"
                    ) from err
                if isinstance(obj, type):
                    self.register(obj)
            self._discovered = True
        finally:
            self._discovering = False


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
