"""FoldedDense with codebook weights stored as level codes: decoded by a table or by constant
multipliers, bit-exact with the direct storage and the golden model (Amaranth simulator and
Verilator, under idle/backpressure); the memory holds code_bits per weight."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ddnhw.golden import run as golden
from ddnhw.golden import run_all
from ddnhw.hw import FoldedDense, FoldedDenseSpec
from ddnhw.hw.folded import decode_luts
from ddnhw.hw.sim import run_stream
from ddnhw.ir import IntType, mlp_graph
from ddnhw.lower import generate, plan_network
from sim.payload import StreamLayout
from sim.runner import cosim

from ..sim.test_runner import _fast_verilator_builds, cache_dir, extremes  # noqa: F401

LEVELS = (-6, 0, 3, 10)      # a 4-level codebook (2 code bits) of 5-bit signed weights


def _codebook_mlp(seed, sizes=(12, 8, 5), levels=LEVELS, in_signed=False):
    rng = np.random.default_rng(seed)
    xt = IntType(in_signed, 4)
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        w = rng.choice(levels, size=(n_out, n_in))
        b = rng.integers(-20, 21, size=n_out)
        layer = {"weight": w, "bias": b}
        if k < len(sizes) - 2:
            layer["requant"] = {"multiplier": rng.integers(1, 8, n_out),
                                "shift": rng.integers(3, 7, n_out), "lo": 0, "hi": 15,
                                "out_type": IntType(False, 4)}
        layers.append(layer)
    return mlp_graph(xt, layers)


def _x(g, n, seed):
    t = g.input.dtype
    x = np.random.default_rng(seed).integers(t.min, t.max + 1, size=(n, g.input.shape[0]))
    x[0], x[1] = t.min, t.max
    return x


@pytest.mark.parametrize("decode", ["table", "constmul", "auto"])
@pytest.mark.parametrize("pe, simd, fuse, in_signed", [
    (1, 1, False, False), (2, 3, True, True), (8, 12, True, False), (3, 5, False, True)])
def test_codes_are_bit_exact(decode, pe, simd, fuse, in_signed):
    g = _codebook_mlp(pe * 10 + simd, in_signed=in_signed)
    node, last = g.nodes[0], g.nodes[1 if fuse else 0]
    kw = {}
    if fuse:
        a = last.attrs
        kw["requant"] = (a["multiplier"], a["shift"], a["lo"], a["hi"])
    xt, yt = g.tensors[node.inputs[0]].dtype, g.tensors[last.outputs[0]].dtype
    direct = FoldedDenseSpec(node.attrs["weight"], node.attrs["bias"], xt, yt, pe=pe,
                             simd=simd, **kw)
    dut = FoldedDense(node.attrs["weight"], node.attrs["bias"], xt, yt, pe=pe, simd=simd,
                      decode=decode, **kw)
    assert dut.decode in ("table", "constmul") and dut.code_bits == 2
    assert dut.levels == sorted(LEVELS) and direct.weight_bits == 5
    assert dut.mem_width == pe * simd * 2 < direct.mem_width == pe * simd * 5
    x = _x(g, 30, pe + simd)
    y, log = run_stream(dut, x, idle=0.3, stall=0.3, seed=pe,
                        max_cycles=(len(x) + 4) * (dut.ii + 6) * 8)
    assert_array_equal(y, run_all(g, x)[last.outputs[0]])
    assert log["protocol"] == []
    if decode == "auto":   # the smaller of the two decodes by the cost model
        cost = {d: decode_luts(d, dut.levels, 5, xt.bits) for d in ("table", "constmul")}
        assert cost[dut.decode] == min(cost.values())


def test_decode_cost_model_prefers_constmul_for_few_cheap_levels_and_table_for_many():
    # levels that are powers of two: a product is a wire, so constant products + select win
    assert decode_luts("constmul", [-4, 0, 2, 8], 5, 4) < decode_luts("table", [-4, 0, 2, 8], 5, 4)
    many = [-45, -37, -23, -11, 0, 13, 29, 51]
    assert decode_luts("table", many, 7, 8) < decode_luts("constmul", many, 7, 8)


def test_estimate_counts_the_narrower_memory_and_the_decode():
    g = _codebook_mlp(3, sizes=(64, 16, 10))
    ests = {}
    for d in ("direct", "table", "constmul"):
        net = plan_network(g, folding={"fc0": (2, 8), "fc1": (1, 1)}, weight_decode=d)
        ests[d] = net.layers[0]["estimate"]
        assert net.blocks[0].decode == d
    assert ests["table"]["luts"] > ests["direct"]["luts"]      # the lookup costs logic
    assert ests["constmul"]["luts"] != ests["table"]["luts"]
    assert ests["table"]["ffs"] < ests["direct"]["ffs"]        # narrower weight tile register


def test_direct_only_when_the_levels_do_not_fit_fewer_bits():
    w = np.arange(-7, 8).reshape(3, 5)      # 15 distinct values: 4 code bits = 4 weight bits
    b = np.zeros(3, dtype=np.int64)
    t = IntType(False, 4)
    out = IntType(True, 12)
    auto = FoldedDenseSpec(w, b, t, out, decode="auto")
    assert auto.decode == "direct"
    for d in ("table", "constmul"):
        with pytest.raises(ValueError, match="code bits"):
            FoldedDense(w, b, t, out, decode=d)
    with pytest.raises(ValueError, match="decode must be one of"):
        FoldedDense(w, b, t, out, decode="rom")


@pytest.mark.cocotb
@pytest.mark.parametrize("decode", ["table", "constmul"])
def test_verilator_codebook_network(cache_dir, decode):  # noqa: F811
    g = _codebook_mlp(11, sizes=(16, 12, 6))
    fold = {"fc0": (3, 4), "fc1": (2, 3)}
    man = generate(g, cache_dir / f"codebook_{decode}", f"codebook_{decode}", folding=fold,
                   weight_decode=decode)
    x = extremes(StreamLayout.from_manifest(man).i, 400, seed=5)
    want = golden(g, x)
    res = cosim(cache_dir / f"codebook_{decode}" / man["verilog"], man, x, expected=want,
                simulator="verilator", mode="bulk", build_dir=cache_dir / "builds", seed=5,
                idle_prob=0.3, stall_prob=0.3)
    assert res.mismatches == 0, res.message
    assert_array_equal(res.outputs, want)
