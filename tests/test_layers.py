"""The import graph of ``ddnhw/`` follows the layers of shared/DESIGN.md, read from the source.

cli → examples → flow → host → quant / frontend / board → lower / passes → golden / hw → ir.
A module may import its own layer or any layer below; base modules (``ddnhw/__init__``,
``atomic``, ``errors``, ``datasets``, ``fixedpoint``) are usable everywhere and import only
each other. No two modules may import each other, directly or through others (function-level
imports count too). Nothing inside ddnhw imports the test bench folder ``sim``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ddnhw"
RANK = {"ir": 0, "golden": 1, "hw": 1, "passes": 2, "lower": 2, "quant": 3, "frontend": 3,
        "board": 3, "host": 4, "flow": 5, "energy": 5, "sweep": 5, "examples": 6, "cli": 7}
BASE = {"__init__", "atomic", "errors", "datasets", "fixedpoint"}


def _modules():
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        parts = ("ddnhw",) + f.relative_to(PKG).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(name, f, known):
    """``(target module, line)`` of every import of a ddnhw module (or a top-level ``sim``)."""
    pkg = name.split(".") if f.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(f.read_text(), str(f))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            if t == "sim" or t.startswith("sim."):
                yield "sim", node.lineno
                continue
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                yield t, node.lineno


def _layer(mod):
    parts = mod.split(".")
    if len(parts) == 1 or (len(parts) == 2 and parts[1] in BASE):
        return None
    return parts[1]


def _graph():
    mods = _modules()
    return mods, {m: list(_imports(m, f, mods)) for m, f in mods.items()}


def test_every_module_is_in_a_layer():
    mods, _ = _graph()
    stray = sorted(m for m in mods if _layer(m) is not None and _layer(m) not in RANK)
    assert not stray, f"modules outside the layers of DESIGN.md: {stray}"


def test_imports_point_down_the_layers():
    mods, edges = _graph()
    bad = []
    for m, targets in edges.items():
        a = _layer(m)
        for t, line in targets:
            if t == "sim":
                bad.append(f"{mods[m].relative_to(PKG.parent)}:{line}: imports the test bench "
                           f"folder 'sim'")
                continue
            b = _layer(t)
            if a is None and b is not None:
                bad.append(f"{mods[m].relative_to(PKG.parent)}:{line}: base module imports {t}")
            elif a is not None and b is not None and RANK.get(b, 99) > RANK.get(a, -1):
                bad.append(f"{mods[m].relative_to(PKG.parent)}:{line}: {a} imports {t}")
    assert not bad, "imports that point up the layers:\n" + "\n".join(bad)


def test_no_import_cycles():
    mods, edges = _graph()
    graph = {m: {t for t, _ in edges[m] if t in mods} for m in mods}
    index, low, stack, on, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v):     # Tarjan's strongly connected components, recursive: the graph is shallow
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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
                cycles.append(sorted(comp))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("bad, why", [
    ("from ddnhw.board import get_board\n", "lower imports ddnhw.board"),
    ("import sim.runner\n", "test bench folder"),
])
def test_the_checker_finds_violations(tmp_path, monkeypatch, bad, why):
    """The checks above can fail: a planted upward import is reported."""
    import shutil
    pkg = tmp_path / "ddnhw"
    shutil.copytree(PKG, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "lower" / "planted.py").write_text(bad)
    monkeypatch.setattr(__import__(__name__, fromlist=["PKG"]), "PKG", pkg)
    with pytest.raises(AssertionError, match=why):
        test_imports_point_down_the_layers()


@pytest.mark.parametrize("layer", sorted(RANK))
def test_every_layer_imports_first(layer):
    """Each layer imports in a fresh interpreter before any other (no import-order
    dependence, e.g. a package cycle only a lucky order hides)."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", f"import ddnhw.{layer}"], capture_output=True,
                       text=True, cwd=PKG.parent, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
