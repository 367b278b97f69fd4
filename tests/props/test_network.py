"""Properties: a whole lowered Network (unrolled and folded layers, every dense style) == the
golden executor in the Amaranth simulator, for random MLPs built through the IR."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ddnhw import golden
from ddnhw.hw.sim import run_stream
from ddnhw.ir import IntType, mlp_graph
from ddnhw.ir.graph import Node
from ddnhw.ir.ops import dense_acc_type, requant_range
from ddnhw.lower import build_network

from .strategies import biases, budget, count, int_types, vectors, weights


@st.composite
def mlp_graphs(draw, max_layers=3, max_width=8, max_bits=12):
    """A random MLP graph: dense (+ requant to a random clip range) per layer."""
    n_layers = draw(st.integers(1, max_layers))
    sizes = [draw(st.integers(1, max_width)) for _ in range(n_layers + 1)]
    in_type = draw(int_types(max_bits=max_bits))
    layers, cur = [], in_type
    for k in range(n_layers):
        w = draw(weights(sizes[k + 1], sizes[k], max_bits=8))
        b = draw(biases(sizes[k + 1], max_bits=8))
        layer = {"weight": w, "bias": b}
        if k < n_layers - 1 or draw(st.booleans()):
            acc = dense_acc_type(w, b, cur)
            c = sizes[k + 1]
            m = np.array(draw(st.lists(st.integers(-8, 8), min_size=c, max_size=c)), np.int64)
            s = np.array(draw(st.lists(st.integers(0, acc.bits + 3), min_size=c, max_size=c)),
                         np.int64)
            ob = draw(st.integers(1, 8))
            if draw(st.booleans()):
                lo, hi = 0, (1 << ob) - 1
            else:
                lo, hi = -(1 << ob), (1 << ob) - 1
            node = Node("rq", "requant", [], [], dict(multiplier=m, shift=s, lo=lo, hi=hi))
            rlo, rhi = requant_range(node, acc)
            out = IntType.for_range(int(np.min(rlo)), int(np.max(rhi)))
            layer["requant"] = dict(multiplier=m, shift=s, lo=lo, hi=hi, out_type=out)
            cur = out
        else:
            cur = dense_acc_type(w, b, cur)
        layers.append(layer)
    return mlp_graph(in_type, layers)


@st.composite
def network_options(draw, graph):
    opts = {"dense_style": draw(st.sampled_from(["cse", "shiftadd", "mul"])),
            "regs_every": draw(st.integers(1, 3))}
    folding = {}
    for n in graph.nodes:
        if n.op == "dense" and draw(st.booleans()):
            n_out, n_in = n.attrs["weight"].shape
            folding[n.name] = (draw(st.integers(1, n_out)), draw(st.integers(1, n_in)))
    if folding:
        opts["folding"] = folding
    return opts


@budget(100)
@given(data=st.data(), bp=st.sampled_from([(0.0, 0.0), (0.3, 0.3), (0.5, 0.7)]),
       seed=st.integers(0, 1000))
def test_network_equals_golden(data, bp, seed):
    graph = data.draw(mlp_graphs(), label="graph")
    opts = data.draw(network_options(graph), label="options")
    count("Network[folded]" if opts.get("folding") else "Network[unrolled]")
    net = build_network(graph, **opts)
    x = vectors(graph.input.dtype, graph.input.shape[0], 8, seed)
    ii = max(b.ii for b in net.blocks)
    y, log = run_stream(net, x, idle=bp[0], stall=bp[1], seed=seed,
                        max_cycles=(len(x) + 4) * (ii + net.latency + 5) * 10)
    np.testing.assert_array_equal(y, golden.run(graph, x))
    assert log["protocol"] == []
