"""The import graph between physim's packages, and its cycles: ``python tests/import_graph.py``.

A node is a sub-package (``physim.kernels``) or a top-level module (``physim.stability``); an
edge A → B is any import in A's files of something in B — at module level or inside a function
(a lazy import is a dependency all the same), except under ``if TYPE_CHECKING:``. Printed: the
edges, then every cycle (strongly connected component of more than one node).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "physim"


def _node(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "physim" or len(parts) < 2:
        return None
    return f"physim.{parts[1]}"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    here = _module_name(path)
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")
                base = parts[: len(parts) - node.level + (path.name == "__init__.py")]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}  # `from physim import x` imports x
    return out


def _exists(node: str) -> bool:
    path = ROOT.parent / node.replace(".", "/")
    return path.is_dir() or path.with_suffix(".py").is_file()


def package_graph() -> dict[str, set[str]]:
    """Node → the nodes it imports (self-edges dropped)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        src = _node(_module_name(path))
        if src is None:  # physim/__init__.py: the public façade imports everything
            continue
        deps = {_node(m) for m in _imports(path)} - {None, src}
        graph.setdefault(src, set()).update(d for d in deps if _exists(d))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    g = package_graph()
    for src in sorted(g):
        print(f"{src:<22} → {', '.join(sorted(g[src])) or '-'}")
    found = cycles(g)
    print("\ncycles:" if found else "\nno cycles")
    for c in found:
        print("  " + " ↔ ".join(c))
