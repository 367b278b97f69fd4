"""The logic-domain ops (thermometer, lut, popcount): golden kernels against a plain loop,
exact ranges, the model file round trip, and one clear error per hostile attribute."""
import numpy as np
import pytest

from ddnhw import golden
from ddnhw.ir import IntType, IRError, load_graph, save_graph
from ddnhw.ir.ops import infer_range
from ddnhw.ir.builder import lut_graph
from ddnhw.ir.ops.lut import BIT
from ddnhw.ir.testing import random_lut


def _loop(g, x):
    """The network by the ops' definitions, one value at a time."""
    enc, *luts, pc = g.nodes
    th = enc.attrs["thresholds"]
    out = []
    for v in x:
        bits = [int(v[f] >= th[f, t]) for f in range(th.shape[0]) for t in range(th.shape[1])]
        for n in luts:
            conn, table = n.attrs["connections"], n.attrs["table"]
            bits = [int(table[j, sum(bits[c] << i for i, c in enumerate(conn[j]))])
                    for j in range(len(conn))]
        groups = pc.attrs["groups"]
        out.append([sum(b for b, gr in zip(bits, groups) if gr == c)
                    for c in range(pc.attrs["classes"])])
    return np.array(out)


@pytest.mark.parametrize("seed", range(4))
def test_golden_is_the_definition(seed, tmp_path):
    g = random_lut(seed, in_signed=bool(seed % 2), layers=((10, 2 + seed), (7, 6), (5, 3)))
    t = g.input.dtype
    x = np.random.default_rng(seed).integers(t.min, t.max + 1, (300,) + g.input.shape)
    x[0], x[1] = t.min, t.max
    y = golden.run(g, x)
    np.testing.assert_array_equal(y, _loop(g, x))
    lo, hi = infer_range(g, g.nodes[-1])
    assert np.all(y >= lo) and np.all(y <= hi)
    save_graph(g, tmp_path / "m.npz")
    np.testing.assert_array_equal(golden.run(load_graph(tmp_path / "m.npz"), x), y)


def test_ranges_are_exact_for_constant_bits():
    # thresholds at or below the minimum are always 1, above the maximum always 0
    g = lut_graph(IntType(False, 2), [[0, 1, 4]], [([[0, 1]], [[0, 0, 0, 0]])], [0], 1)
    lo, hi = infer_range(g, g.nodes[0])
    assert list(lo) == [1, 0, 0] and list(hi) == [1, 1, 0]
    assert list(infer_range(g, g.nodes[1])[1]) == [0]


def _graph(**change):
    g = random_lut(0)
    node = g.node(change.pop("node", "lut0"))
    node.attrs.update(change)
    return g


@pytest.mark.parametrize("change, match", [
    (dict(connections=np.zeros((12, 7), np.int64), table=np.zeros((12, 128), np.int64)),
     r"'lut0'.*fan-in k = 7 is out of range.*1 to 6"),
    (dict(table=np.zeros((12, 8), np.int64)), r"'lut0'.*table' has shape \(12, 8\).*fan-in "
     r"k = 4 need \(12, 16\)"),
    (dict(connections=np.full((12, 4), 15)), r"'lut0'.*neuron 0 reads input bit 15, out of "
     r"range.*15 bits"),
    (dict(table=np.full((12, 16), 2)), r"'lut0'.*neuron 0's truth table.*0 and 1"),
    (dict(node="enc", thresholds=np.zeros((4, 3), np.int64)), r"'enc'.*thresholds.*\(5, T\)"),
    (dict(node="sum", groups=np.full(6, 3)), r"'sum'.*groups.*-1\.\.2"),
    (dict(node="sum", classes=0), r"'sum'.*classes.*>= 1"),
])
def test_hostile_attributes_one_clear_error(change, match):
    with pytest.raises(IRError, match=match):
        _graph(**change).check()


def test_lut_reads_bits_only():
    g = random_lut(1)
    g.tensors["enc"].dtype = IntType(False, 2)
    with pytest.raises(IRError, match=r"'lut0'.*reads bits.*'enc' has type u2"):
        g.check()
    assert BIT == IntType(False, 1)


def test_model_file_with_a_wrong_table_is_refused(tmp_path):
    g = random_lut(2)
    save_graph(g, tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as z:
        files = {k: z[k] for k in z.files}
    files["lut1/table"] = files["lut1/table"][:, :4]       # 6 neurons of fan-in 3 need 8
    np.savez(tmp_path / "bad.npz", **files)
    with pytest.raises(IRError, match=r"'lut1'.*table' has shape \(6, 4\).*need \(6, 8\)"):
        load_graph(tmp_path / "bad.npz")
