"""The op registry: every op defined once (checks, range, golden kernel), reached by every
random test graph, accepting the ``hw`` annotations; no op-name switches in the IR core or the
golden model; ``ir`` imports nothing above it and has no import cycle."""
import ast
from pathlib import Path

import numpy as np
import pytest

import ddnhw
from ddnhw import golden
from ddnhw.ir import IRError, load_graph, save_graph
from ddnhw.ir.ops import OPS, OpDef, infer_range, sliding_windows
from ddnhw.ir.testing import (random_cnn, random_lstm, random_lut, random_mlp,
                              random_recurrent, random_residual_cnn)
from ddnhw.lower.network import graph_sha256

PKG = Path(ddnhw.__file__).parent


def _source(name):
    """The file that defines op ``name``."""
    return PKG.joinpath(*type(OPS[name]).__module__.split(".")[1:]).with_suffix(".py")


def graphs():
    """Random graphs that together use every registered op."""
    return [random_mlp(0), random_cnn(1, pool="max"), random_cnn(2, pool="avg", depthwise=True),
            random_residual_cnn(3, stem=2), random_recurrent(4, op="rnn"),
            random_recurrent(5, op="gru", return_sequences=1), random_lstm(6), random_lut(7)]


def _batch(g, seed=0, n=16):
    t = g.input
    return np.random.default_rng(seed).integers(t.dtype.min, t.dtype.max + 1, (n,) + t.shape)


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_is_a_full_definition(name):
    op = OPS[name]
    assert isinstance(op, OpDef) and op.name == name and op.arity >= 1
    for method in ("check", "run"):
        assert getattr(type(op), method) is not getattr(OpDef, method), f"{name}: no {method}"
    assert ast.get_docstring(ast.parse(_source(name).read_text())), f"{name}: no semantics"


def test_random_graphs_cover_every_op():
    assert {n.op for g in graphs() for n in g.nodes} == set(OPS)


def test_unknown_op_names_the_node():
    g = random_mlp(0)
    g.nodes[0].op = "densse"
    with pytest.raises(IRError, match="'fc0'.*unsupported op 'densse'"):
        g.check()


def test_hw_annotations_are_ignored_and_saved(tmp_path):
    for k, g in enumerate(graphs()):
        x = _batch(g, k)
        want = golden.run(g, x)
        ranges = [infer_range(g, n) for n in g.nodes]
        for i, n in enumerate(g.nodes):
            n.attrs["hw"] = {"fold": [1, np.int64(2)], "fifo_after": i, "tag": {"xnor": True}}
        g.check()
        for n, (lo, hi) in zip(g.nodes, ranges):
            lo2, hi2 = infer_range(g, n)
            np.testing.assert_array_equal(lo, lo2)
            np.testing.assert_array_equal(hi, hi2)
        np.testing.assert_array_equal(golden.run(g, x), want)
        digest = graph_sha256(g)
        save_graph(g, tmp_path / f"{k}.npz")
        g2 = load_graph(tmp_path / f"{k}.npz")
        assert [n.attrs["hw"] for n in g2.nodes] == [
            {"fold": [1, 2], "fifo_after": i, "tag": {"xnor": True}} for i in range(len(g.nodes))]
        assert graph_sha256(g2) == digest
        np.testing.assert_array_equal(golden.run(g2, x), want)


@pytest.mark.parametrize("hw, match", [([1, 2], "'fc0'.*'hw'.*dict"),
                                       ({"fold": object()}, "'fc0'.*'hw'.*object")])
def test_bad_hw_annotations_name_the_node(tmp_path, hw, match):
    g = random_mlp(0)
    g.nodes[0].attrs["hw"] = hw
    with pytest.raises(IRError, match=match):
        g.check()
        save_graph(g, tmp_path / "m.npz")


def test_mac_matrix_is_what_the_mac_computes():
    for g in graphs():
        x = _batch(g)
        env = golden.run_all(g, x)
        for n in g.nodes:
            op = OPS[n.op]
            w = op.mac_matrix(g, n)
            assert (w is not None) == op.foldable, n.op
            if w is None or op.recurrent:
                continue
            xin, b = env[n.inputs[0]], n.attrs["bias"]
            if len(xin.shape) == 4:   # a window op: the matrix runs once per window beat
                kh, kw = n.attrs["weight"].shape[1:3]
                win = sliding_windows(xin, kh, kw, n.attrs["stride"], n.attrs["padding"])
                xin = win.reshape(win.shape[:3] + (-1,))
            np.testing.assert_array_equal(xin @ w.T + b, env[n.outputs[0]])


def test_recurrent_metadata():
    for g in graphs():
        for n in g.nodes:
            op = OPS[n.op]
            if op.recurrent:
                h = n.attrs["weight"].shape[0] // op.gates
                assert n.attrs["multiplier"].shape == (op.requants * h,)
                assert op.sequence_output(n) == bool(n.attrs["return_sequences"])
                assert op.weight_mask(g.input.shape[1], h).shape == n.attrs["weight"].shape


# -- no op-name switches -----------------------------------------------------------------------
def _op_names_compared(tree, names):
    """Op names that a comparison, a ``match`` case or a dict literal's keys (two or more op
    names: a dispatch table) switch on."""
    def strings(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            for e in node.elts:
                yield from strings(e)

    found = []
    for node in ast.walk(tree):
        parts = []
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
        elif isinstance(node, ast.match_case):
            parts = [p.value for p in ast.walk(node.pattern) if isinstance(p, ast.MatchValue)]
        elif isinstance(node, ast.Dict):      # a dispatch table: two or more op names as keys
            keys = [k for k in node.keys if k is not None]
            if len([s for k in keys for s in strings(k) if s in names]) >= 2:
                parts = keys
        for p in parts:
            found += [(s, node.lineno) for s in strings(p) if s in names]
    return found


def _core_files():
    """The IR core and the golden model: every module except an op's own definition."""
    shared = {"__init__.py", "base.py", "window.py", "recurrent.py"}
    return ([*sorted((PKG / "golden").glob("*.py")), *sorted((PKG / "ir").glob("*.py"))]
            + [p for p in sorted((PKG / "ir" / "ops").glob("*.py")) if p.name in shared])


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_op_name_switch_in_core(path):
    assert _op_names_compared(ast.parse(path.read_text()), set(OPS)) == []


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_files_switch_on_no_other_op(name):
    own = {n for n in OPS if _source(n) == _source(name)}
    assert _op_names_compared(ast.parse(_source(name).read_text()), set(OPS) - own) == []


def test_the_check_finds_switches():
    tree = ast.parse('if node.op == "gru": pass\nx = op in ("rnn", "x")\n'
                     'd = {"dense": 1, "add": 2}\nlayer = {"weight": 1, "requant": 2}')
    assert _op_names_compared(tree, set(OPS)) == [("gru", 1), ("rnn", 2), ("dense", 3),
                                                  ("add", 3)]


# -- layers ------------------------------------------------------------------------------------
def _imports(path):
    """``ddnhw.*`` modules imported by ``path`` (relative imports resolved; any depth)."""
    mod = path.relative_to(PKG.parent).with_suffix("").parts
    pkg = mod[:-1]         # the package relative imports start from (also for __init__)
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ((base,) if base else ()))
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m.split(".")[0] == "ddnhw"}


def test_ir_imports_only_ir_and_base_modules():
    base = {"ddnhw", "ddnhw.atomic", "ddnhw.errors", "ddnhw.fixedpoint"}
    for path in sorted((PKG / "ir").rglob("*.py")):
        for m in _imports(path):
            assert m.startswith("ddnhw.ir") or m in base or m.rpartition(".")[0] in base, \
                f"{path.relative_to(PKG)} imports {m}"


def test_ir_has_no_import_cycle():
    files = {".".join(p.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (PKG / "ir").rglob("*.py")}

    def resolve(m):
        while m and m not in files:
            m = m.rpartition(".")[0]
        return m

    edges = {m: {resolve(t) for t in _imports(p)} - {"", m} for m, p in files.items()}
    # a package importing its own submodules is not a cycle: drop edges to enclosing packages
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in edges.items()}
    state = {}

    def visit(m, path):
        if state.get(m) == 1:
            raise AssertionError("import cycle: " + " -> ".join(path + [m]))
        if state.get(m) == 2:
            return
        state[m] = 1
        for t in edges[m]:
            visit(t, path + [m])
        state[m] = 2

    for m in edges:
        visit(m, [])
