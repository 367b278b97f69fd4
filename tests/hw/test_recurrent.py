"""Recurrent (rnn/gru) block in the Amaranth simulator == golden model on seeded random graphs
(random shapes and widths), unrolled and folded engines, every gate-lane folding, last-step and
every-step outputs, under random idle cycles and backpressure; exact cycle counts at full rate."""
from __future__ import annotations

import numpy as np
import pytest

from ddnhw.golden import run
from ddnhw.hw.recurrent import GATE_DEPTH, Recurrent
from ddnhw.hw.sim import run_beats
from ddnhw.ir.testing import random_recurrent


def random_graph(seed, op, return_sequences):
    """A random single-layer graph with random sizes and widths (from ``seed``)."""
    rng = np.random.default_rng(seed)
    return random_recurrent(
        seed, op=op, steps=int(rng.integers(1, 5)), n_in=int(rng.integers(1, 5)),
        hidden=int(rng.choice([1, 2, 3, 4, 6])), in_bits=int(rng.integers(2, 7)),
        w_bits=int(rng.integers(2, 6)), state_bits=int(rng.integers(4, 10)),
        lut_bits=int(rng.integers(3, 8)), gate_frac=int(rng.integers(0, 8)),
        return_sequences=return_sequences, in_signed=bool(rng.integers(0, 2)))


def block(graph, fold=None, gate_lanes=None, **kw):
    n = graph.nodes[0]
    a = n.attrs
    return Recurrent(n.op, a["weight"], a["bias"], a["multiplier"], a["shift"], a["lut_lo"],
                     a["lut_hi"], a["tanh_table"], graph.input.dtype, graph.output.dtype,
                     graph.input.shape[0], a["return_sequences"], a.get("sigmoid_table"),
                     a.get("gate_frac"), fold=fold, gate_lanes=gate_lanes,
                     cell_bits=a.get("cell_bits"), **kw)


def sequences(graph, n, seed):
    """``n`` random sequences, the first two all-min and all-max."""
    t = graph.input.dtype
    rng = np.random.default_rng(seed)
    x = rng.integers(t.min, t.max + 1, size=(n,) + graph.input.shape)
    x[0], x[1] = t.min, t.max
    return x


def check_recurrent(graph, fold=None, gate_lanes=None, n=10, idle=0.3, stall=0.3, seed=0):
    """Stream ``n`` sequences through the block; outputs must equal the golden model's."""
    dut = block(graph, fold, gate_lanes)
    x = sequences(graph, n, seed)
    want = run(graph, x)
    steps, lanes = graph.input.shape
    beats_out = steps if dut.return_sequences else 1
    y, log = run_beats(dut, x.reshape(-1, lanes), n * beats_out, idle=idle, stall=stall,
                       seed=seed, max_cycles=(n + 2) * dut.ii * 6 + 200)
    np.testing.assert_array_equal(y.reshape(want.shape), want)
    assert log["protocol"] == []
    return dut, log


def _fold_options(graph, seed):
    """(fold, gate_lanes): unrolled with all gate lanes and with one; folded (1, 1) with one
    lane; a random fold with a random lane divisor; folded fully parallel."""
    n = graph.nodes[0]
    rows, cols = n.attrs["weight"].shape
    h = graph.output.shape[-1]
    rng = np.random.default_rng(seed)
    divs = [d for d in range(1, h + 1) if h % d == 0]
    return [(None, None), (None, 1), ((1, 1), 1),
            ((int(rng.integers(1, rows + 1)), int(rng.integers(1, cols + 1))),
             int(rng.choice(divs))),
            ((rows, cols), h)]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("return_sequences", [0, 1])
@pytest.mark.parametrize("op", ["rnn", "gru"])
def test_recurrent_random(op, return_sequences, seed):
    g = random_graph(seed * 7 + return_sequences + (op == "gru") * 100, op, return_sequences)
    for k, (fold, lanes) in enumerate(_fold_options(g, seed)):
        check_recurrent(g, fold, lanes, n=6, seed=seed * 10 + k)


@pytest.mark.parametrize("op, fold, lanes", [
    ("rnn", None, None), ("rnn", (2, 3), 2), ("gru", None, None), ("gru", None, 2),
    ("gru", (1, 1), 1), ("gru", (5, 4), 4)])
@pytest.mark.parametrize("return_sequences", [0, 1])
def test_recurrent_full_rate(op, fold, lanes, return_sequences):
    """Back-to-back input, always-ready output: one step per ``step_cycles`` cycles, the
    documented ``latency`` and ``ii``."""
    g = random_recurrent(5, op=op, steps=3, n_in=3, hidden=4,
                         return_sequences=return_sequences)
    dut, log = check_recurrent(g, fold, lanes, n=4, idle=0.0, stall=0.0)
    h = 4
    assert dut.step_cycles == dut.engine.latency + h // dut.gate_lanes + GATE_DEPTH[op] - 1
    assert dut.ii == 3 * dut.step_cycles
    assert np.all(np.diff(log["in"]) == dut.step_cycles)
    firsts = log["in"][::3]
    assert np.all(np.diff(firsts) == dut.ii)
    if return_sequences:
        assert [o - i for i, o in zip(log["in"], log["out"])] == [dut.latency] * 12
    else:
        assert [o - i for i, o in zip(firsts, log["out"])] == [dut.latency] * 4
        assert dut.latency == dut.ii


def test_recurrent_bursty_consumer():
    """A consumer that stalls in long bursts while every-step outputs pile up."""
    g = random_recurrent(8, op="gru", steps=4, n_in=2, hidden=3, return_sequences=1)
    check_recurrent(g, (3, 2), 3, n=5, idle=0.0, stall=lambda c: (c // 17) % 3 != 0)


def test_recurrent_wide_state_signed_input():
    g = random_recurrent(11, op="gru", steps=2, n_in=5, hidden=2, in_bits=8, w_bits=6,
                         state_bits=12, lut_bits=9, gate_frac=10, in_signed=True)
    check_recurrent(g, None, 1, n=8)
    check_recurrent(g, (2, 7), 2, n=8, seed=1)


@pytest.mark.parametrize("kw, match", [
    ({"gate_lanes": 3}, "gate_lanes 3 must divide the hidden size 4"),
    ({"gate_lanes": 0}, "gate_lanes must be an int >= 1"),
    ({"fold": (17, 1)}, "pe must be an int in 1..16"),
    ({"fold": (1, 9)}, "simd must be an int in 1..8"),
    ({"fold": (1, 2, 3)}, r"fold must be \(pe, simd\)"),
])
def test_recurrent_rejects(kw, match):
    g = random_recurrent(1, op="gru", steps=2, n_in=4, hidden=4)
    kw = {"fold": None, "gate_lanes": None, **kw}
    with pytest.raises(ValueError, match=match):
        block(g, **kw)


def test_recurrent_rejects_bad_tables():
    g = random_recurrent(1, op="gru", steps=2, n_in=2, hidden=2)
    a = g.nodes[0].attrs
    with pytest.raises(ValueError, match="sigmoid_table must be an integer array of shape"):
        Recurrent("gru", a["weight"], a["bias"], a["multiplier"], a["shift"], a["lut_lo"],
                  a["lut_hi"], a["tanh_table"], g.input.dtype, g.output.dtype, 2, gate_frac=6)
    with pytest.raises(ValueError, match="do not fit state_type"):
        Recurrent("rnn", a["weight"][:2], a["bias"][:2], a["multiplier"][:2], a["shift"][:2],
                  a["lut_lo"], a["lut_hi"], a["tanh_table"] * 100, g.input.dtype,
                  g.output.dtype, 2)
    with pytest.raises(ValueError, match="op must be one of"):
        Recurrent("conv2d", a["weight"], a["bias"], a["multiplier"], a["shift"], a["lut_lo"],
                  a["lut_hi"], a["tanh_table"], g.input.dtype, g.output.dtype, 2)


@pytest.mark.parametrize("pe, simd", [(1, 1), (2, 3), (5, 7)])
def test_folded_single_buffer(pe, simd):
    """The Recurrent engine mode of FoldedDense: output read from the collect buffer; a new
    input waits until the output was taken (ii == latency + 1)."""
    from ddnhw.hw import FoldedDense
    from ddnhw.hw.sim import run_stream
    from ddnhw.ir import IntType
    rng = np.random.default_rng(pe * 10 + simd)
    w, b = rng.integers(-7, 8, size=(5, 7)), rng.integers(-20, 20, size=5)
    xt = IntType(True, 5)
    yt = IntType.for_range(-16 * 7 * 7 - 20, 16 * 7 * 7 + 20)
    x = rng.integers(xt.min, xt.max + 1, size=(20, 7))
    dut = FoldedDense(w, b, xt, yt, pe=pe, simd=simd, single_buffer=True)
    assert dut.ii == dut.latency + 1
    y, log = run_stream(dut, x, idle=0.3, stall=0.4, seed=pe)
    np.testing.assert_array_equal(y, x @ w.T + b)
    assert log["protocol"] == []
    y, log = run_stream(dut, x, seed=pe)
    np.testing.assert_array_equal(y, x @ w.T + b)
    assert np.all(np.diff(log["in"]) == dut.ii)
    assert [o - i for i, o in zip(log["in"], log["out"])] == [dut.latency] * len(x)
