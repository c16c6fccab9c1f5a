"""Generate the numba family dispatch from the family registry, and keep numba's cache right.

:func:`load_dispatch` writes the source text of the fourteen dispatchers (one ``if fam == i``
branch per registered kernel module, see :mod:`physim.kernels.dispatch`) to a real ``.py``
file and imports it, so that ``@njit(cache=True)`` caches them on disk like any module.

**Where the file goes, and why.** The file is content-addressed: its name carries
:func:`family_set_key`, a hash of the generator version, the kernel modules' names and
ids and their source files. It lives in a per-user cache directory (``$PHYSIM_CACHE_DIR``, else
``$XDG_CACHE_HOME/physim`` or ``~/.cache/physim``; a temporary directory when that is not
writable), under ``dispatch/``, and is written only when missing or different, so that its
timestamp (numba < 0.61 keys its cache on it) never changes under a valid cache. Generating it
for the built-in families too — rather than shipping a generated file — keeps one code path for
built-in and third-party families and nothing to regenerate by hand when a family is added.

**Why a cache namespace.** numba keys a cached function on its *own* source file only; the
code of the functions it calls from other files (here: the dispatch and, inlined through it,
every family's kernels) is baked into its cache entry and not checked again. The integrators
(``leapfrog``, ``langevin``, ``fixedpoint``, ``adjoint`` and whatever calls them) would thus
serve a dispatch compiled for another set of families — a third-party family missing from it,
or a family's edited kernels ignored. :func:`install_cache_namespace` puts a numba cache
locator first in numba's list that, for functions defined in the ``physim`` package, stores
the cache where numba would have (``__pycache__``, ``$NUMBA_CACHE_DIR`` or the user-wide
cache), in a subdirectory ``families-<key>``: one cache per set of families and kernel
sources, each valid on its own. (``$NUMBA_CACHE_LOCATOR_CLASSES`` replaces numba's list and
with it this namespace.)
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from numba.core import caching, config

from physim.families.base import FUSED_KERNELS, KERNELS

#: bump when the generated text changes shape (part of every key)
GENERATOR_VERSION = 1
#: the body of the branch that no registered family takes
_UNKNOWN = (
    'raise ValueError("physim: no kernels for this device family id in the generated dispatch; '
    "build devices from a registered family (physim.families.FAMILIES); a third-party family "
    "registers through the 'physim.families' entry points, before physim.kernels is imported\")"
)
_COMPOSED = {
    "echo_T2": [
        "{k}.acc_dT_dw(p0, prm, work, c0, gw)",
        "{k}.acc_dT_dw(p1, prm, work, c1, gw)",
        "{k}.grad_T(p0, prm, work, g0)",
        "{k}.grad_T(p1, prm, work, g1)",
    ],
    "echo_V2": [
        "{k}.acc_dV_dw(q0, s, prm, work, c0, gw)",
        "{k}.acc_dV_dw(q1, s, prm, work, c1, gw)",
        "if want_ds:",
        "    # g0, g1 serve as scratch for ∂V/∂s before they receive the forces",
        "    {k}.dV_ds(q0, s, prm, work, g0)",
        "    {k}.dV_ds(q1, s, prm, work, g1)",
        "    for i in range(ds.shape[0]):",
        "        ds[i] += c0 * g0[i] + c1 * g1[i]",
        "{k}.grad_V(q0, s, prm, work, g0)",
        "{k}.grad_V(q1, s, prm, work, g1)",
    ],
}
_DOCS = {
    "echo_T2": "g_t = ∂T/∂p(p_t), t = 0, 1; gw += c0 ∂T/∂w(p0) + c1 ∂T/∂w(p1).",
    "echo_V2": "g_t = ∂V/∂q(q_t, s), t = 0, 1; gw += c0 ∂V/∂w(q0) + c1 ∂V/∂w(q1); when "
    "``want_ds``,\n    ds += c0 ∂V/∂s(q0) + c1 ∂V/∂s(q1).",
}
_RETURNS = ("kinetic", "potential")


def _source_bytes(mod: ModuleType) -> bytes:
    path = getattr(mod, "__file__", None)
    if not path or not os.path.exists(path):
        raise ValueError(
            f"kernel module {mod.__name__!r} has no source file; numba's cache and the generated "
            "dispatch need family kernels defined in a module file"
        )
    return Path(path).read_bytes()


def family_set_key(modules: Sequence[ModuleType]) -> str:
    """Hash of the generator version and, in id order, each kernel module's name and source."""
    h = hashlib.sha256(f"physim-dispatch-v{GENERATOR_VERSION}".encode())
    for i, mod in enumerate(modules):
        h.update(f"\0{i}\0{mod.__name__}\0".encode())
        h.update(hashlib.sha256(_source_bytes(mod)).digest())
    return h.hexdigest()[:20]


def generate_source(modules: Sequence[ModuleType], labels: Sequence[str] = ()) -> str:
    """The text of the dispatch module for kernel modules ``modules`` (family id = position).

    ``labels`` (one per module) only annotate the docstring and ``FAMILY_NAMES``.
    """
    for mod in modules:
        if sys.modules.get(mod.__name__) is not mod:
            raise ValueError(
                f"kernel module {mod.__name__!r} is not importable under its own name; the "
                "generated dispatch imports it by name"
            )
    labels = list(labels) or [m.__name__ for m in modules]
    key = family_set_key(modules)
    lines = [
        '"""physim\'s numba family dispatch — generated by physim.kernels.dispatch_gen from the',
        "device-family registry; do not edit (see physim.kernels.dispatch).",
        "",
        f"key {key}; family ids:",
        "",
    ]
    lines += [
        f"* {i}: {m.__name__} ({lab})"
        for i, (m, lab) in enumerate(zip(modules, labels, strict=True))
    ]
    lines += ['"""', "", "from numba import njit", ""]
    lines += [f"import {m.__name__} as _k{i}" for i, m in enumerate(modules)]
    lines += [
        "",
        f"FAMILY_KEY = {key!r}",
        f"FAMILY_NAMES = {dict(enumerate(labels))!r}",
        f"FAMILY_MODULES = {tuple(m.__name__ for m in modules)!r}",
        "",
    ]
    for name, params in {**KERNELS, **FUSED_KERNELS}.items():
        lines += ["", '@njit(cache=True, error_model="numpy")', f"def {name}(fam, {params}):"]
        if name in _DOCS:
            lines.append(f'    """{_DOCS[name]}"""')
        for i, mod in enumerate(modules):
            lines.append(f"    {'if' if i == 0 else 'elif'} fam == {i}:")
            if name in FUSED_KERNELS and not hasattr(mod, name):
                lines += [f"        {ln.format(k=f'_k{i}')}" for ln in _COMPOSED[name]]
            else:
                ret = "return " if name in _RETURNS else ""
                lines.append(f"        {ret}_k{i}.{name}({params})")
        if modules:
            lines += ["    else:", f"        {_UNKNOWN}"]
        else:
            lines.append(f"    {_UNKNOWN}")
        lines.append("")
    return "\n".join(lines)


def cache_dir() -> Path:
    """physim's per-user cache directory (created), falling back to a temporary one."""
    env = os.environ.get("PHYSIM_CACHE_DIR")
    if env:
        base = Path(env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) / "physim" if xdg else Path.home() / ".cache" / "physim"
    try:
        base.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=base).close()
        return base
    except OSError:
        fallback = (
            Path(tempfile.gettempdir())
            / f"physim-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        )
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def write_dispatch(source: str, key: str, directory: Path | None = None) -> Path:
    """Write ``source`` to ``<directory>/physim_dispatch_<key>.py`` unless it holds it already."""
    directory = directory or cache_dir() / "dispatch"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"physim_dispatch_{key}.py"
    data = source.encode()
    try:
        if path.read_bytes() == data:
            return path  # untouched: its timestamp stays that of numba's cache entries
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)  # atomic: a concurrent process reads the old file or the new one
    return path


def load_dispatch(modules: Sequence[ModuleType], labels: Sequence[str] = ()) -> ModuleType:
    """Generate, write (if needed) and import the dispatch module for ``modules``."""
    source = generate_source(modules, labels)
    key = family_set_key(modules)
    name = f"physim_dispatch_{key}"
    if name in sys.modules:
        return sys.modules[name]
    path = write_dispatch(source, key)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- cache namespace
_CacheImpl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class FamilySetLocator(caching._CacheLocator):
    """numba cache locator: physim's functions cache per family set (see module docstring)."""

    #: the family-set key of this process (set once by :func:`install_cache_namespace`)
    key: str | None = None
    #: numba's own locators, tried in order for the directory this one subdivides
    inner_classes: tuple = ()

    def __init__(self, inner: caching._CacheLocator) -> None:
        self._inner = inner

    def get_cache_path(self) -> str:
        return os.path.join(self._inner.get_cache_path(), f"families-{self.key}")

    def get_source_stamp(self):
        return self._inner.get_source_stamp()

    def get_disambiguator(self) -> str:
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):
        if cls.key is None or not os.path.abspath(py_file).startswith(_PACKAGE_DIR):
            return None
        for other in cls.inner_classes:
            inner = other.from_function(py_func, py_file)
            if inner is not None:
                break
        else:
            return None
        self = cls(inner)
        try:
            self.ensure_cache_path()
        except OSError:
            return None
        return self


def install_cache_namespace(key: str) -> None:
    """Cache physim's numba functions compiled from now on under ``families-<key>``."""
    if FamilySetLocator.key not in (None, key):
        raise RuntimeError(
            f"physim's family dispatch was generated for family set {FamilySetLocator.key} and "
            f"now for {key}; register third-party families through entry points, before "
            "physim.kernels is imported"
        )
    FamilySetLocator.key = key
    if getattr(config, "CACHE_LOCATOR_CLASSES", None):
        warnings.warn(
            "NUMBA_CACHE_LOCATOR_CLASSES replaces numba's cache locators, and with them physim's "
            "cache per family set: after installing a device family or editing family kernels, "
            "clear numba's cache (find physim -name '*.nb[ic]' -delete)",
            stacklevel=2,
        )
    classes = list(_CacheImpl._locator_classes)
    if FamilySetLocator not in classes:
        FamilySetLocator.inner_classes = tuple(classes)
        _CacheImpl._locator_classes = [FamilySetLocator, *classes]
