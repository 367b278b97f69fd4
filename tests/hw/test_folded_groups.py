"""Grouped FoldedDense (a grouped / depthwise convolution that costs what it computes): the same
integers as NumPy and as the ungrouped block of the same matrix under idle cycles and
backpressure, for tiles within a group and tiles of whole groups; its II and memory hold only the
groups' columns; the cycle model is the simulator's; depthwise conv graphs folded through
build_network == golden, the planner's grouped candidates are the lowering's; a folded
depthwise-separable network in Verilator == golden."""
import numpy as np
import pytest

from ddnhw import golden
from ddnhw.hw import FoldedDense, FoldedDenseSpec
from ddnhw.hw.folded import fold_ii, group_fold_ok
from ddnhw.hw.sim import run_beats, run_stream
from ddnhw.ir import IntType
from ddnhw.ir.builder import chain_graph
from ddnhw.ir.ops import conv_group_columns, conv_matrix
from ddnhw.ir.testing import random_cnn
from ddnhw.lower import build_network, generate, plan_network
from ddnhw.lower.estimate import estimate_block
from ddnhw.lower.fold import layer_options
from ddnhw.lower.timing import chain_timing

XT = IntType(False, 4)


def grouped_layer(seed, groups, og, cg, shuffle=True, zero_frac=0.2):
    """``(weight (G*og, G*cg) zero outside each group's columns, bias, columns)``."""
    rng = np.random.default_rng(seed)
    n_out, n_in = groups * og, groups * cg
    cols = (rng.permutation(n_in) if shuffle else np.arange(n_in)).reshape(groups, cg)
    w = np.zeros((n_out, n_in), dtype=np.int64)
    for k in range(n_out):
        w[k, cols[k // og]] = rng.integers(-7, 8, size=cg)
    w[rng.random(w.shape) < zero_frac] = 0
    w[0, cols[0][0]] = 7
    return w, rng.integers(-30, 30, size=n_out), cols


def _out_type(w, b):
    lo = (np.minimum(w, 0).sum(1) * XT.max + b).min()
    hi = (np.maximum(w, 0).sum(1) * XT.max + b).max()
    return IntType.for_range(int(lo), int(hi))


def _inputs(n_in, n, seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([np.full((1, n_in), XT.max), rng.integers(0, 16, size=(n, n_in)),
                           np.zeros((1, n_in), dtype=np.int64)])


# (groups, outputs per group, columns per group, pe, simd): tiles inside a group (pe | og, one
# or several tiles per group), tiles of k whole groups (pe = k * og), simd not dividing cg,
# depthwise-like (og = 1)
CASES = [(4, 1, 9, 1, 3), (4, 1, 9, 1, 9), (4, 1, 9, 2, 4), (4, 1, 9, 4, 2), (2, 4, 6, 2, 4),
         (2, 4, 6, 1, 6), (3, 2, 5, 1, 5), (3, 2, 5, 2, 2), (2, 3, 4, 6, 3), (6, 2, 3, 4, 1)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "G{}o{}c{}pe{}s{}".format(*c))
def test_grouped_equals_numpy_and_dense(case):
    groups, og, cg, pe, simd = case
    seed = sum(case)
    w, b, cols = grouped_layer(seed, groups, og, cg)
    yt = _out_type(w, b)
    x = _inputs(groups * cg, 12, seed)
    dut = FoldedDense(w, b, XT, yt, pe=pe, simd=simd, groups=groups, columns=cols)
    y, log = run_stream(dut, x, idle=0.3, stall=0.4, seed=seed)
    np.testing.assert_array_equal(y, x @ w.T + b)
    assert log["protocol"] == []
    dense = FoldedDense(w, b, XT, yt, pe=pe, simd=simd)
    y_dense, _ = run_stream(dense, x, idle=0.2, stall=0.2, seed=seed + 1)
    np.testing.assert_array_equal(y, y_dense)
    # the II and the memory follow one group's columns only
    assert dut.ii == fold_ii(groups * og, groups * cg, pe, simd, groups) \
        == -(-cg // simd) * (groups * og // pe)
    assert dut.mem_depth == dut.ii and dut.mem_width == pe * simd * dut.weight_bits
    assert dut.ii < dense.ii or cg <= simd and groups * cg <= simd


@pytest.mark.parametrize("decode", ["table", "constmul"])
def test_grouped_requant_and_decode(decode):
    w, b, cols = grouped_layer(5, 4, 2, 6)
    w = np.where(w > 0, 3, np.where(w < 0, -2, 0))      # three levels: a 2-bit code
    rng = np.random.default_rng(5)
    rq = (rng.integers(1, 4, size=8), rng.integers(1, 4, size=8), 0, 15)
    x = _inputs(24, 10, 5)
    dut = FoldedDense(w, b, XT, IntType(False, 4), pe=2, simd=4, requant=rq, groups=4,
                      columns=cols, decode=decode)
    assert dut.decode == decode and dut.latency == dut.ii + 5
    y, log = run_stream(dut, x, idle=0.3, stall=0.3, seed=6)
    acc = x @ w.T + b
    want = np.clip((acc * rq[0] + (1 << (rq[1] - 1))) >> rq[1], 0, 15)
    np.testing.assert_array_equal(y, want)
    assert log["protocol"] == []


@pytest.mark.parametrize("pe,simd", [(1, 3), (2, 9), (1, 4)])
def test_grouped_cycle_model_is_the_simulator(pe, simd):
    w, b, cols = grouped_layer(7, 4, 1, 9)
    spec = FoldedDenseSpec(w, b, XT, _out_type(w, b), pe=pe, simd=simd, groups=4,
                           columns=cols)
    x = _inputs(36, 4, 7)
    _, log = run_stream(spec.build(), x)
    model = chain_timing([spec], 1, inputs=len(x))
    assert model == {"in": log["in"], "out": log["out"]}
    assert np.all(np.diff(log["in"]) == spec.ii)
    assert [o - i for i, o in zip(log["in"], log["out"])] == [spec.latency] * len(x)


def test_grouped_features():
    w, b, cols = grouped_layer(8, 16, 1, 9)        # depthwise: 16 channels, 3x3
    yt = _out_type(w, b)
    grouped = FoldedDenseSpec(w, b, XT, yt, pe=1, simd=9, groups=16, columns=cols)
    dense = FoldedDenseSpec(w, b, XT, yt, pe=1, simd=9)
    fg, fd = grouped.features(), dense.features()
    assert grouped.ii == 16 and dense.ii == 16 * 16
    assert fg["memories"] == ((9 * grouped.weight_bits, 16),)
    assert fd["memories"] == ((9 * dense.weight_bits, 256),)
    assert fg["luts"]["mux"] == 9 * 4 * 15 == fd["luts"]["mux"]   # 16 slices of 9 lanes
    # the same II from the dense expansion needs 16 times the MACs
    fast = FoldedDenseSpec(w, b, XT, yt, pe=16, simd=9)
    assert fast.ii == grouped.ii
    assert estimate_block(fast)["luts"] > 4 * estimate_block(grouped)["luts"]
    # pe spanning groups: a wider slice, fewer of them
    four = FoldedDenseSpec(w, b, XT, yt, pe=4, simd=9, groups=16, columns=cols)
    assert four.ii == 4 and four.features()["luts"]["mux"] == 36 * 4 * 3


def test_grouped_checks():
    w, b, cols = grouped_layer(9, 4, 2, 3)
    yt = _out_type(w, b)
    assert group_fold_ok(8, 4, 1) and group_fold_ok(8, 4, 4) and not group_fold_ok(8, 4, 3)
    assert not group_fold_ok(8, 4, 6)          # 3 groups per tile do not divide 4 groups
    with pytest.raises(ValueError, match="pe 3 must divide"):
        FoldedDenseSpec(w, b, XT, yt, pe=3, groups=4, columns=cols)
    with pytest.raises(ValueError, match="simd must be an int in 1..3"):
        FoldedDenseSpec(w, b, XT, yt, simd=4, groups=4, columns=cols)
    with pytest.raises(ValueError, match="groups must be"):
        FoldedDenseSpec(w, b, XT, yt, groups=3)
    with pytest.raises(ValueError, match="columns must be"):
        FoldedDenseSpec(w, b, XT, yt, groups=4, columns=np.zeros((4, 3), dtype=int))
    bad = w.copy()
    bad[0, cols[1][0]] = 1
    with pytest.raises(ValueError, match=r"outside output 0's group 0"):
        FoldedDenseSpec(bad, b, XT, _out_type(bad, b), groups=4, columns=cols)


def test_conv_group_columns():
    wt = np.arange(6 * 3 * 3 * 2).reshape(6, 3, 3, 2)      # 6 outputs, C = 6, 3 groups
    full = conv_matrix(wt, 6, 3)
    cols = conv_group_columns(wt, 6, 3)
    assert cols.shape == (3, 18)
    for k in range(6):
        np.testing.assert_array_equal(full[k, cols[k // 2]], wt[k].ravel())
        assert not np.any(np.delete(full[k], cols[k // 2]))


# -- depthwise conv graphs ------------------------------------------------------------------

def _check_network(g, images=3, seed=0, **options):
    x = np.random.default_rng(seed).integers(0, 16, (images,) + g.input.shape)
    net = build_network(g, **options)
    got, log = run_beats(net, x.reshape(-1, g.input.shape[-1]), images, idle=0.3, stall=0.3,
                         seed=seed, max_cycles=200_000)
    np.testing.assert_array_equal(got, golden.run(g, x))
    assert not log["protocol"]
    return net


@pytest.mark.parametrize("fold", [(1, 1), (1, 3), (2, 9), (4, 2)])
def test_depthwise_cnn_folded(fold):
    g = random_cnn(20 + fold[0] + fold[1], in_shape=(5, 5, 4), depthwise=True)
    net = _check_network(g, folding={"conv0": fold, "fc": (2, 4)})
    layer = next(x for x in net.layers if x["name"] == "conv0")
    assert layer["groups"] == 4 and layer["folded"] and (layer["pe"], layer["simd"]) == fold
    assert net.blocks_by_node["conv0"].children[-1].ii == 4 // fold[0] * -(-9 // fold[1])


def dws_graph(seed, in_shape=(6, 6, 3), out_channels=4, n_out=3):
    """depthwise 3x3 (groups = C) -> requant -> pointwise 1x1 -> requant -> maxpool -> flatten
    -> dense."""
    rng = np.random.default_rng(seed)
    c = in_shape[2]

    def rq(n):
        return {"multiplier": rng.integers(1, 4, size=n), "shift": rng.integers(2, 5, size=n),
                "lo": 0, "hi": 15, "out_type": IntType(False, 4)}
    layers = [
        {"op": "conv2d", "name": "dw", "weight": rng.integers(-7, 8, size=(c, 3, 3, 1)),
         "bias": rng.integers(-20, 20, size=c), "stride": 1, "padding": 1, "groups": c,
         "requant": rq(c)},
        {"op": "conv2d", "name": "pw", "weight": rng.integers(-7, 8, size=(out_channels, 1, 1, c)),
         "bias": rng.integers(-20, 20, size=out_channels), "stride": 1, "padding": 0,
         "requant": rq(out_channels)},
        {"op": "maxpool2d", "name": "pool", "kernel": 2},
        {"op": "flatten", "name": "flat"}]
    g = chain_graph(XT, in_shape, layers)
    n_in = g.output.shape[0]
    layers.append({"op": "dense", "name": "fc", "weight": rng.integers(-7, 8, (n_out, n_in)),
                   "bias": rng.integers(-20, 20, size=n_out)})
    return chain_graph(XT, in_shape, layers)


def test_planner_grouped_options():
    g = dws_graph(1)
    dw = g.node("dw")
    rq = next(n for n in g.nodes if n.inputs == dw.outputs)
    opts = layer_options(g, dw, "ice40", rq)
    folds = {o["fold"] for o in opts}
    # pe: 1 or whole groups (1, 3 of 3); simd: divisors of the 9 lanes of one channel
    assert folds == {None, (1, 1), (1, 3), (1, 9), (3, 1), (3, 3)}
    for o in opts:
        net = plan_network(g, folding={"dw": o["fold"], "fc": (1, 1)})
        layer = next(x for x in net.layers if x["name"] == "dw")
        assert o["ii"] == layer["ii"], o["fold"]
        if o["fold"] is not None:    # (the planner leaves out the requant multipliers' DSPs)
            for k in ("luts", "ffs", "brams"):
                assert layer["estimate"][k] == o["estimate"][k], (o["fold"], k)


def test_dws_network_folded():
    _check_network(dws_graph(2), folding={"dw": (1, 3), "pw": (2, 3), "fc": (1, 4)})


@pytest.mark.cocotb
def test_dws_cosim(tmp_path):
    from ddnhw.host.cosim import cosim
    g = dws_graph(3)
    man = generate(g, tmp_path / "dws", folding={"dw": (1, 9), "pw": (4, 1), "fc": (3, 4)})
    assert next(x for x in man["layers"] if x["name"] == "dw")["groups"] == 3
    x = np.random.default_rng(4).integers(0, 16, (10,) + g.input.shape)
    x[0], x[1] = 15, 0
    r = cosim(tmp_path / "dws" / "ddnhw_top.v", man, x, expected=golden.run(g, x), seed=5,
              build_dir=tmp_path / "build")
    assert r.mismatches == 0, r.message
    np.testing.assert_array_equal(r.outputs, golden.run(g, x))
