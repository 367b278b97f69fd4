"""IR ``add`` (residual connections): golden semantics against exact rational arithmetic,
range inference reached by extreme inputs, save/load, and hostile attributes (IRError naming
the node)."""
from fractions import Fraction

import numpy as np
import pytest

from ddnhw import golden
from ddnhw.ir import Graph, IntType, IRError, load_graph, save_graph
from ddnhw.ir.ops import add_type
from ddnhw.ir.testing import random_residual_cnn


def add_graph(t0, t1, shape=(3, 4), **attrs):
    """A graph has one input: it forks ``x`` (type ``t1``) into a requant ``a`` (type ``t0``,
    clipped copy) and the add ``y = (a << shift0) + (x << shift1)``."""
    s0, s1, ty = add_type(t0, t1)
    g = Graph()
    g.add_tensor("x", shape, t1)
    g.add_tensor("a", shape, t0)
    g.add_tensor("y", shape, attrs.pop("out_type", ty))
    g.inputs, g.outputs = ["x"], ["y"]
    c = shape[-1]
    g.add_node("rq", "requant", ["x"], ["a"], multiplier=np.full(c, 1), shift=np.zeros(c, int),
               lo=t0.min, hi=t0.max, rounding="half_up")
    g.add_node("sum", "add", ["a", "x"], ["y"], **{"shift0": s0, "shift1": s1, **attrs})
    return g


def _real(q, frac):
    return Fraction(int(q)) * Fraction(2) ** -frac


def check_add(t0, t1, seed=0, n=200):
    g = add_graph(t0, t1).check()
    rng = np.random.default_rng(seed)
    x = rng.integers(t1.min, t1.max + 1, (n,) + g.input.shape)
    x[0], x[1] = t1.min, t1.max                     # extremes
    env = golden.run_all(g, x)
    y, a = env["y"], env["a"]
    ty = g.tensors["y"].dtype
    for yv, av, xv in zip(y.ravel()[:300], a.ravel()[:300], x.ravel()[:300]):
        # exact: the aligned binary points lose nothing
        assert _real(yv, ty.frac) == _real(av, t0.frac) + _real(xv, t1.frac)
    assert ty.min <= y.min() and y.max() <= ty.max
    return g, y


@pytest.mark.parametrize("t0, t1", [
    (IntType(True, 8, 5), IntType(False, 4, 2)),      # x1 shifted by 3
    (IntType(True, 6, 0), IntType(False, 4, 4)),      # x0 shifted by 4
    (IntType(False, 4, 1), IntType(False, 4, 1)),     # no shift
    (IntType(True, 2, -1), IntType(True, 9, 3)),      # negative frac
])
def test_add_is_exact_sum_of_reals(t0, t1):
    g, y = check_add(t0, t1)
    n = g.node("sum")
    assert min(n.attrs["shift0"], n.attrs["shift1"]) == 0


def test_add_range_is_reached():
    # a = clip(x) to u3: the worst cases of both operands coincide at x = max
    t0, t1 = IntType(False, 3, 2), IntType(False, 4, 0)
    g = add_graph(t0, t1).check()
    y = golden.run(g, np.array([[[15] * 4] * 3, [[0] * 4] * 3]))
    s0, s1, ty = add_type(t0, t1)
    assert y.max() == (7 << s0) + (15 << s1) and y.min() == 0
    assert ty == IntType.for_range(0, (7 << s0) + (15 << s1), frac=2)


@pytest.mark.parametrize("seed", range(3))
def test_residual_graph_roundtrip(tmp_path, seed):
    g = random_residual_cnn(seed, stem=2 if seed else 0)
    save_graph(g, tmp_path / "r.npz")
    g2 = load_graph(tmp_path / "r.npz")
    x = np.random.default_rng(seed).integers(0, 1 << g.input.dtype.bits, (20,) + g.input.shape)
    np.testing.assert_array_equal(golden.run(g, x), golden.run(g2, x))


T0, T1 = IntType(True, 8, 5), IntType(False, 4, 2)


@pytest.mark.parametrize("attrs, match", [
    (dict(shift0=1), "'sum'.*frac 6.*not aligned"),
    (dict(shift1=0), "'sum'.*'x'.*frac 2.*not aligned"),
    (dict(shift0=-1), "'sum'.*'shift0' must be an int >= 0"),
    (dict(shift1=2.0), "'sum'.*'shift1' must be an int >= 0"),
    (dict(shift0=None), "'sum'.*'shift0'"),
    (dict(shift1=70), "'sum'.*'shift1' = 70 is not in 0..62"),
    (dict(shift0=1, shift1=4, out_type=IntType(True, 12, 6)), "'sum'.*both > 0"),
    (dict(out_type=IntType(True, 7, 5)), "'sum'.*cannot hold its range"),
])
def test_hostile_add_attributes(attrs, match):
    with pytest.raises(IRError, match=match):
        add_graph(T0, T1, **attrs).check()


def test_hostile_add_shapes_and_arity():
    g = add_graph(T0, T1)
    g.nodes.remove(g.node("rq"))        # 'a' a second graph input (a requant checks its shape)
    g.inputs.append("a")
    g.tensors["a"].shape = (3, 5)
    with pytest.raises(IRError, match="'sum'.*differ in shape"):
        g.check()
    g = add_graph(T0, T1)
    g.node("sum").inputs = ["a"]
    with pytest.raises(IRError, match="'sum'.*add takes 2 input"):
        g.check()
    g = add_graph(T0, T1)
    g.node("rq").inputs = ["x", "x"]
    with pytest.raises(IRError, match="'rq'.*requant takes 1 input"):
        g.check()
    g = add_graph(T0, T1)
    g.tensors["y"].shape = (12,)
    with pytest.raises(IRError, match="'sum'.*output 'y' has shape"):
        g.check()


def test_hostile_model_file_names_file_and_node(tmp_path):
    g = add_graph(T0, T1).check()
    g.node("sum").attrs["shift1"] = 1
    save_graph(g, tmp_path / "bad.npz")
    with pytest.raises(IRError, match="bad.npz.*'sum'.*not aligned"):
        load_graph(tmp_path / "bad.npz")
