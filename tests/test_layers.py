"""The house has no cycles: packages depend downward only, and light modules stay light.

The import graph is computed from the source (``ast``), one node per subpackage or top-level
module of ``physim`` (``physim.study``, ``physim.logs``, ...), an edge for every import of one
node by another, at module level or inside a function alike.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "physim"


def _node(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "physim"


def _is_module(name: str) -> bool:
    return (PKG / f"{name}.py").exists() or (PKG / name).is_dir()


def _imports(path: Path) -> tuple[str, set[str]]:
    rel = path.relative_to(ROOT).with_suffix("")
    module = ".".join(rel.parts).removesuffix(".__init__")
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "physim":  # from physim import logs: the module, else the package
                out.update(
                    f"physim.{a.name}" if _is_module(a.name) else "physim" for a in node.names
                )
            else:
                out.add(target)
    return module, {m for m in out if m == "physim" or m.startswith("physim.")}


def import_graph() -> dict[str, set[str]]:
    """Node → the nodes it imports (no self edges)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PKG.rglob("*.py")):
        module, targets = _imports(path)
        src = _node(module)
        graph.setdefault(src, set()).update(t for t in map(_node, targets) if t != src)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_packages_depend_downward_only():
    graph = import_graph()
    print("\nimport graph of physim (node -> what it imports):")
    for node in sorted(graph):
        print(f"  {node} -> {', '.join(sorted(graph[node])) or '-'}")
    found = cycles(graph)
    detail = "; ".join(
        " <-> ".join(sorted(c))
        + " ("
        + ", ".join(f"{a}->{b}" for a in sorted(c) for b in sorted(graph.get(a, ())) if b in c)
        + ")"
        for c in found
    )
    assert not found, f"import cycles between physim's packages: {detail}"


def test_no_library_module_imports_the_gradcheck_diagnostic():
    users = sorted(
        module
        for path in PKG.rglob("*.py")
        for module, targets in [_imports(path)]
        if "physim.gradcheck" in targets and module not in ("physim.cli", "physim.gradcheck")
    )
    assert not users, f"library modules import physim.gradcheck: {users}"


def test_log_tools_sit_above_protocol_and_hssm():
    graph = import_graph()
    for low in ("protocol", "hssm", "logs"):
        assert "tools" not in graph.get(low, set()), f"physim.{low} imports physim.tools"


def test_the_log_schema_imports_nothing_heavier_than_h5py_and_numpy():
    """``import physim.logs`` loads no numba, scipy, pydantic nor any other physim module."""
    code = (
        "import sys, physim.logs; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('physim', 'numba', 'scipy', 'pydantic', 'xarray', 'matplotlib')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert eval(out) == ["physim", "physim._version", "physim.logs", "physim.logsafe"]


def test_only_the_log_schema_names_hdf5_paths():
    """No module but physim.logs spells an HDF5 group of the layout or opens a file by h5py."""
    needles = ('"observables', "'observables", '"parameters/physim', '"h5md"', "h5py.File(")
    offenders = sorted(
        str(path.relative_to(ROOT))
        for path in PKG.rglob("*.py")
        if path.name not in ("logs.py", "logsafe.py")
        and any(n in path.read_text() for n in needles)
    )
    assert not offenders, f"HDF5 paths named outside physim/logs.py: {offenders}"


def test_families_import_no_kernels_and_stability_only_the_device():
    """The family registry generates the kernels' dispatch, so the families sit below the
    kernels; the stability check reaches the kernels through the device's family only."""
    graph = import_graph()
    assert "kernels" not in graph["families"]
    assert graph["stability"] <= {"device"}


if __name__ == "__main__":  # python tests/test_layers.py: the graph and its cycles
    g = import_graph()
    for node in sorted(g):
        print(node, "->", ", ".join(sorted(g[node])))
    print("cycles:", cycles(g) or "none")
