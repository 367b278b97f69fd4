"""Golden rnn/gru against an independent scalar python-int implementation, and attribute checks."""
import numpy as np
import pytest

from ddnhw.golden import executor
from ddnhw.ir import IRError
from ddnhw.ir.ops.recurrent import sigmoid_table, tanh_table
from ddnhw.ir.testing import random_recurrent
from ddnhw.ir.types import IntType


def _rs(v, s):
    return (v + (1 << (s - 1))) >> s if s else v


def _act(table, v, m, s, lo, hi):
    return int(table[min(hi, max(lo, _rs(v * int(m), int(s)))) - lo])


def _scalar(node, seq):
    """One sequence, python ints, written from the spec in ddnhw.ir.ops.recurrent."""
    a = node.attrs
    w = [[int(v) for v in row] for row in a["weight"]]
    b = [int(v) for v in a["bias"]]
    lo, hi = int(a["lut_lo"]), int(a["lut_hi"])
    gru = node.op == "gru"
    H = len(b) // (4 if gru else 1)
    h = [0] * H
    outs = []
    for x in seq:
        u = [int(v) for v in x] + h
        acc = [b[j] + sum(w[j][c] * u[c] for c in range(len(u))) for j in range(len(b))]
        if not gru:
            h = [_act(a["tanh_table"], acc[j], a["multiplier"][j], a["shift"][j], lo, hi)
                 for j in range(H)]
        else:
            gf = int(a["gate_frac"])
            new = []
            for j in range(H):
                r = _act(a["sigmoid_table"], acc[j], a["multiplier"][j], a["shift"][j], lo, hi)
                z = _act(a["sigmoid_table"], acc[H + j], a["multiplier"][H + j],
                         a["shift"][H + j], lo, hi)
                pre = (acc[2 * H + j] << gf) + r * acc[3 * H + j]
                n = _act(a["tanh_table"], pre, a["multiplier"][2 * H + j],
                         a["shift"][2 * H + j], lo, hi)
                new.append(n + _rs(z * (h[j] - n), gf))
            h = new
        outs.append(list(h))
    return outs


@pytest.mark.parametrize("op", ["rnn", "gru"])
@pytest.mark.parametrize("seed", range(6))
def test_golden_matches_scalar_reference(op, seed):
    rs = seed % 2
    g = random_recurrent(seed, op=op, steps=3 + seed % 4, n_in=2 + seed % 3, hidden=1 + seed % 5,
                         lut_bits=4 + seed % 4, gate_frac=3 + seed % 5, return_sequences=rs,
                         in_signed=bool(seed % 3 == 0))
    t = g.input
    rng = np.random.default_rng(seed)
    x = rng.integers(t.dtype.min, t.dtype.max + 1, size=(20,) + t.shape)
    x[0] = t.dtype.max
    x[1] = t.dtype.min
    y = executor.run(g, x)
    node = g.nodes[0]
    want = np.array([_scalar(node, s) for s in x])
    assert np.array_equal(y, want if rs else want[:, -1])
    o = g.output.dtype
    assert o.min <= y.min() and y.max() <= o.max


def test_gru_state_is_kept_between_steps():
    g = random_recurrent(3, op="gru", steps=6, return_sequences=1)
    x = np.random.default_rng(1).integers(0, 16, size=(50,) + g.input.shape)
    y = executor.run(g, x)
    # a step's output depends on the earlier steps: changing step 0 changes later states
    x2 = x.copy()
    x2[:, 0] = 15 - x2[:, 0]
    y2 = executor.run(g, x2)
    assert np.any(y[:, -1] != y2[:, -1])


def test_tables_are_the_rounded_functions():
    st = IntType(True, 8, 6)
    tab = tanh_table(-32, 31, 3, st)
    k = np.arange(-32, 32)
    assert np.array_equal(tab, np.clip(np.floor(np.tanh(k / 8) * 64 + 0.5), -128, 127))
    sig = sigmoid_table(-32, 31, 3, 7)
    assert sig.min() >= 0 and sig.max() <= 128 and sig[32] == 64   # sigmoid(0) = 1/2


def _node(g):
    return g.nodes[0]


@pytest.mark.parametrize("mutate, msg", [
    (lambda n: n.attrs.update(return_sequences=2), "return_sequences"),
    (lambda n: n.attrs.update(lut_hi=n.attrs["lut_lo"] - 1), "lookup table range"),
    (lambda n: n.attrs.update(tanh_table=n.attrs["tanh_table"][:-1]), "tanh_table"),
    (lambda n: n.attrs.update(sigmoid_table=n.attrs["sigmoid_table"] + 1000), "sigmoid_table"),
    (lambda n: n.attrs.update(shift=n.attrs["shift"] - 100), "shift"),
    (lambda n: n.attrs.update(multiplier=n.attrs["multiplier"][:2]), "multiplier"),
    (lambda n: n.attrs.update(gate_frac=-1), "gate_frac"),
    (lambda n: n.attrs["weight"].__setitem__((8, 5), 1), "n_x must be zero"),
    (lambda n: n.attrs.update(weight=n.attrs["weight"][:, :-1]), "columns"),
    (lambda n: n.attrs.update(multiplier=n.attrs["multiplier"] * (1 << 50)), "int64"),
])
def test_bad_attributes_name_the_node(mutate, msg):
    g = random_recurrent(0, op="gru", hidden=4)
    mutate(_node(g))
    with pytest.raises(IRError, match=msg) as e:
        g.check()
    assert "'gru'" in str(e.value)


def test_unsigned_state_rejected():
    g = random_recurrent(0, op="rnn")
    g.tensors["h"].dtype = IntType(False, 8, 6)
    with pytest.raises(IRError, match="signed"):
        g.check()
