"""Formal stream properties (``harness.py``) of the logic-domain blocks: a table layer alone
and a whole thermometer → lut → lut → popcount network against exact references built from the
op definitions (``check_block`` of ``test_formal``: prove held/stable, bmc the full set, bmc
with the tracked-beat equivalence)."""
import numpy as np
import pytest
from amaranth.hdl import Cat, Const

from ddnhw.hw.lut import LutLayer
from ddnhw.ir.ops import infer_range
from ddnhw.ir.testing import random_lut
from ddnhw.lower import build_network, plan_network

from .test_formal import check_block

pytestmark = pytest.mark.formal


def _truth(table):
    return Const(int(sum(int(v) << a for a, v in enumerate(table))), len(table))


def lut_reference(connections, table):
    def ref(xs):
        return [_truth(table[j]).bit_select(Cat(*(xs[int(c)] for c in connections[j])), 1)
                for j in range(len(connections))]
    return ref


def thermometer_reference(thresholds):
    def ref(xs):
        return [xs[f] >= int(t) for f in range(thresholds.shape[0]) for t in thresholds[f]]
    return ref


def popcount_reference(groups, classes):
    def ref(xs):
        outs = []
        for c in range(classes):
            acc = Const(0, 8)
            for x, gr in zip(xs, groups):
                if gr == c:
                    acc = acc + x
            outs.append(acc)
        return outs
    return ref


def test_lut_layer(tmp_path):
    rng = np.random.default_rng(3)
    conn = np.stack([rng.choice(6, 4, replace=False) for _ in range(4)])
    table = rng.integers(0, 2, (4, 16))
    check_block(tmp_path, "LutLayer", lambda: LutLayer(conn, table, 6),
                lut_reference(conn, table), [(0, 1)] * 4, 1, e=10)


def test_lut_network(tmp_path):
    g = random_lut(5, features=3, levels=2, layers=((6, 3), (4, 2)), classes=2, in_bits=3)
    refs = []
    for n in g.nodes:
        a = n.attrs
        refs.append(thermometer_reference(a["thresholds"]) if n.op == "thermometer" else
                    lut_reference(a["connections"], a["table"]) if n.op == "lut" else
                    popcount_reference(a["groups"], a["classes"]))

    def chain(xs):
        for r in refs:
            xs = r(xs)
        return xs
    lo, hi = infer_range(g, g.nodes[-1])
    lat = plan_network(g).latency
    check_block(tmp_path, "Network[random_lut(5)]", lambda: build_network(g), chain,
                list(zip(lo, hi)), lat, e=lat + 6)
