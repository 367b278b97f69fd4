"""Golden ``lstm`` against an independent per-sample python-int loop written from the spec in
PLAN/``ddnhw.ir.ops.lstm``; range inference; hostile attributes (IRError naming the node and
the attribute); save/load."""
import numpy as np
import pytest

from ddnhw import golden
from ddnhw.ir import IntType, IRError, load_graph, save_graph
from ddnhw.ir.ops import infer_range
from ddnhw.ir.testing import random_lstm, random_lstm_classifier


def _rs(v, s):
    return (v + (1 << (s - 1))) >> s if s else v


def _reference(node, seq):
    """Every h_t of one sequence ``(T, I)``: plain python ints, one unit at a time."""
    a = node.attrs
    w = [[int(v) for v in row] for row in a["weight"]]
    b = [int(v) for v in a["bias"]]
    m = [int(v) for v in a["multiplier"]]
    s = [int(v) for v in a["shift"]]
    sig = [int(v) for v in a["sigmoid_table"]]
    tanh = [int(v) for v in a["tanh_table"]]
    lo, hi = int(a["lut_lo"]), int(a["lut_hi"])
    gf, cb = int(a["gate_frac"]), int(a["cell_bits"])
    cmin, cmax = -2 ** (cb - 1), 2 ** (cb - 1) - 1
    H = len(b) // 4

    def act(table, v, row):
        idx = min(hi, max(lo, _rs(v * m[row], s[row])))
        return table[idx - lo]

    h, c, outs = [0] * H, [0] * H, []
    for x in seq:
        u = [int(v) for v in x] + h
        acc = [b[r] + sum(w[r][k] * u[k] for k in range(len(u))) for r in range(4 * H)]
        new_h, new_c = [], []
        for j in range(H):
            i = act(sig, acc[j], j)
            f = act(sig, acc[H + j], H + j)
            g = act(tanh, acc[2 * H + j], 2 * H + j)
            o = act(sig, acc[3 * H + j], 3 * H + j)
            cj = min(cmax, max(cmin, _rs(f * c[j] + i * g, gf)))
            new_c.append(cj)
            new_h.append(_rs(o * act(tanh, cj, 4 * H + j), gf))
        h, c = new_h, new_c
        outs.append(h)
    return outs


def check_lstm(g, seed, n=24):
    t = g.input
    rng = np.random.default_rng(seed)
    x = rng.integers(t.dtype.min, t.dtype.max + 1, size=(n,) + t.shape)
    x[0], x[1] = t.dtype.max, t.dtype.min                          # extremes
    y = golden.run(g, x)
    node = g.nodes[0]
    want = np.array([_reference(node, seq) for seq in x])
    np.testing.assert_array_equal(y, want if node.attrs["return_sequences"] else want[:, -1])
    lo, hi = infer_range(g, node)
    assert lo.min() <= y.min() and y.max() <= hi.max()
    return y


@pytest.mark.parametrize("seed", range(8))
def test_golden_matches_reference(seed):
    g = random_lstm(seed, steps=2 + seed % 5, n_in=1 + seed % 4, hidden=1 + seed % 5,
                    lut_bits=4 + seed % 4, gate_frac=seed % 8, cell_bits=4 + 2 * seed,
                    state_bits=6 + seed % 4, return_sequences=seed % 2,
                    in_signed=seed % 3 == 0)
    check_lstm(g, seed)


def test_cell_clip_is_exercised():
    # a narrow cell saturates: the reference must agree exactly where clipping happens
    g = random_lstm(5, steps=8, hidden=3, cell_bits=3, return_sequences=1)
    check_lstm(g, 5, n=40)
    g2 = random_lstm(5, steps=8, hidden=3, cell_bits=30, return_sequences=1)
    x = np.random.default_rng(5).integers(0, 16, size=(40,) + g.input.shape)
    assert np.any(golden.run(g, x) != golden.run(g2, x))


def test_classifier_runs_and_roundtrips(tmp_path):
    g = random_lstm_classifier(2, steps=3, hidden=4)
    assert [n.op for n in g.nodes] == ["lstm", "dense", "requant"]
    save_graph(g, tmp_path / "c.npz")
    g2 = load_graph(tmp_path / "c.npz")
    x = np.random.default_rng(0).integers(0, 16, size=(30,) + g.input.shape)
    np.testing.assert_array_equal(golden.run(g, x), golden.run(g2, x))


@pytest.mark.parametrize("seq", [0, 1])
def test_save_load_roundtrip(tmp_path, seq):
    g = random_lstm(7, return_sequences=seq)
    g.nodes[0].attrs["hw"] = {"fold": [1, 4], "gate_lanes": 2}
    save_graph(g, tmp_path / "l.npz")
    g2 = load_graph(tmp_path / "l.npz")
    a, a2 = g.nodes[0].attrs, g2.nodes[0].attrs
    assert sorted(a) == sorted(a2)
    for k in a:
        np.testing.assert_array_equal(a[k], a2[k]) if isinstance(a[k], np.ndarray) else None
    assert a2["hw"] == {"fold": [1, 4], "gate_lanes": 2} and a2["cell_bits"] == a["cell_bits"]
    x = np.random.default_rng(seq).integers(0, 16, size=(30,) + g.input.shape)
    np.testing.assert_array_equal(golden.run(g, x), golden.run(g2, x))


def _set(key, value):
    return lambda n: n.attrs.__setitem__(key, value)


def _drop(key):
    return lambda n: n.attrs.pop(key)


@pytest.mark.parametrize("mutate, attr", [
    (lambda n: n.attrs.update(weight=n.attrs["weight"][:-1]), "weight"),
    (lambda n: n.attrs.update(weight=n.attrs["weight"][:, :-1]), "weight"),
    (lambda n: n.attrs.update(bias=n.attrs["bias"][:-1]), "bias"),
    (lambda n: n.attrs.update(multiplier=n.attrs["multiplier"][:16]), "multiplier"),
    (lambda n: n.attrs.update(shift=n.attrs["shift"][:16]), "shift"),
    (lambda n: n.attrs.update(shift=n.attrs["shift"] + 60), "shift"),
    (_set("cell_bits", 1), "cell_bits"),
    (_set("cell_bits", 31), "cell_bits"),
    (_set("cell_bits", 8.0), "cell_bits"),
    (_drop("cell_bits"), "cell_bits"),
    (_set("gate_frac", 31), "gate_frac"),
    (_set("gate_frac", True), "gate_frac"),
    (_drop("sigmoid_table"), "sigmoid_table"),
    (lambda n: n.attrs.update(sigmoid_table=n.attrs["sigmoid_table"] + 1000), "sigmoid_table"),
    (lambda n: n.attrs.update(sigmoid_table=n.attrs["sigmoid_table"] - 1000), "sigmoid_table"),
    (lambda n: n.attrs.update(tanh_table=n.attrs["tanh_table"][:-1]), "tanh_table"),
    (lambda n: n.attrs.update(tanh_table=n.attrs["tanh_table"] * 100), "tanh_table"),
    (_set("lut_hi", -100), "lookup table range"),
    (_set("return_sequences", 2), "return_sequences"),
    (lambda n: n.attrs.update(multiplier=n.attrs["multiplier"] * (1 << 50)), "int64"),
    (lambda n: n.attrs.update(cell_bits=30, multiplier=n.attrs["multiplier"] * (1 << 30)),
     "int64"),
])
def test_bad_attributes_name_node_and_attribute(mutate, attr):
    g = random_lstm(0, hidden=4)
    mutate(g.nodes[0])
    with pytest.raises(IRError, match=attr) as e:
        g.check()
    assert "'lstm'" in str(e.value)


def test_state_type_must_be_signed_and_hold_the_range():
    g = random_lstm(1)
    g.tensors["h"].dtype = IntType(False, 8, 6)
    with pytest.raises(IRError, match="'lstm'.*signed"):
        g.check()
    g = random_lstm(1)
    g.tensors["x"].shape = (4, 3, 1)
    with pytest.raises(IRError, match="'lstm'.*sequence input"):
        g.check()
