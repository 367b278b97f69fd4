"""QuantLSTM: integer-mode PyTorch == an independent NumPy model of the ``lstm`` op's integer
semantics (written here from the plan's spec, not from ddnhw's golden kernel) on random models
and sequences and on a trained digits model's whole test split; the fake-quantized forward ==
the dequantized integer model; the exported attributes; PyTorch conversion; unsupported
configurations named; golden on the exported graph (once the IR knows the op)."""
import numpy as np
import pytest
import torch
from torch import nn

from ddnhw import DdnhwError, golden
from ddnhw.ir import load_graph, save_graph
from ddnhw.ir.ops.recurrent import sigmoid_table, tanh_table
from ddnhw.quant.rnn import (QuantLSTM, QuantSeqClassifier, SeqConfig, export_seq, from_torch,
                             seq_graph, train_seq)

from .test_rnn import random_inputs, scaled_model

CASES = [  # steps, inputs, hidden, classes, settings, every step
    (6, 3, 5, 4, dict(in_bits=4, w_bits=4, state_bits=8, lut_bits=6, gate_frac=6), 0),
    (4, 2, 3, 3, dict(in_bits=2, w_bits=3, state_bits=6, lut_bits=4, gate_frac=3,
                      cell_bits=6), 1),
    (9, 1, 7, 2, dict(in_bits=8, w_bits=8, state_bits=12, lut_bits=9, gate_frac=10,
                      cell_bits=16), 0),
    # lut_frac > state_frac: the tanh(c) index is c times 2
    (3, 5, 2, 5, dict(in_bits=3, w_bits=2, state_bits=5, lut_bits=5, gate_frac=2,
                      lut_frac=4), 1),
    # c clipped to s8.6 = [-2, 2) on long sequences
    (12, 2, 4, 3, dict(in_bits=4, w_bits=4, state_bits=8, lut_bits=8, lut_frac=7, gate_frac=7,
                       cell_bits=8), 0),
    (5, 3, 4, 3, dict(in_bits=6, w_bits=5, state_bits=16, state_frac=9, lut_bits=12,
                      gate_frac=14, cell_bits=30), 1),
]


# -- the reference: the lstm op of PLAN.md in NumPy --------------------------------------------
def rshift(v, s):
    """round_shift: floor((v + 2**(s-1)) / 2**s), v for s == 0 (round half up)."""
    v, s = np.asarray(v, np.int64), np.asarray(s, np.int64)
    half = np.left_shift(np.int64(1), np.maximum(s - 1, 0))
    return np.where(s > 0, np.right_shift(v + half, s), v)


def ref_lstm(a, x):
    """Every ``(h_t, c_t)`` ``(N, T, H)`` of an ``lstm`` node with attributes ``a`` on integer
    inputs ``x`` (N, T, I)."""
    w, b, m, s = (np.asarray(a[k], np.int64) for k in ("weight", "bias", "multiplier", "shift"))
    lo, hi, gf = int(a["lut_lo"]), int(a["lut_hi"]), int(a["gate_frac"])
    tanh = np.asarray(a["tanh_table"], np.int64)
    sig = np.asarray(a["sigmoid_table"], np.int64)
    cb = int(a["cell_bits"])
    cmin, cmax = -(1 << (cb - 1)), (1 << (cb - 1)) - 1
    hsz = w.shape[0] // 4
    assert m.shape == s.shape == (5 * hsz,)

    def act(table, v, k):
        rows = slice(k * hsz, (k + 1) * hsz)
        return table[np.clip(rshift(v * m[rows], s[rows]), lo, hi) - lo]

    n, t, _ = x.shape
    h = np.zeros((n, hsz), np.int64)
    c = np.zeros((n, hsz), np.int64)
    hs, cs = np.zeros((n, t, hsz), np.int64), np.zeros((n, t, hsz), np.int64)
    for k in range(t):
        acc = b + np.concatenate([x[:, k], h], 1) @ w.T
        i = act(sig, acc[:, :hsz], 0)
        f = act(sig, acc[:, hsz:2 * hsz], 1)
        g = act(tanh, acc[:, 2 * hsz:3 * hsz], 2)
        o = act(sig, acc[:, 3 * hsz:], 3)
        c = np.clip(rshift(f * c + i * g, gf), cmin, cmax)
        h = rshift(o * act(tanh, c, 4), gf)
        hs[:, k], cs[:, k] = h, c
    return hs, cs


def ref_logits(g, x):
    """The exported graph ``x → lstm → [flatten] → dense`` evaluated with the reference."""
    node = g.nodes[0]
    hs, cs = ref_lstm(node.attrs, x)
    feat = hs.reshape(len(x), -1) if int(node.attrs["return_sequences"]) else hs[:, -1]
    fc = g.nodes[-1]
    return feat @ fc.attrs["weight"].T + fc.attrs["bias"], hs, cs


# -- models ------------------------------------------------------------------------------------
def random_model(case, seed=0, gain=3.0):
    m = scaled_model("lstm", *CASES[case], seed=seed + case, gain=gain)
    with torch.no_grad():
        hs = m.rec.hidden_size
        m.rec.bias_ih[hs:2 * hs] += 2.0                  # forget gates open
        m.rec.bias_ih[[0, hs, 2 * hs]] += 4.0            # unit 0: c grows by ~1 per step
        m.rec.bias_ih[3 * hs - 1] -= 4.0                 # unit H-1: g towards -1
    return m


def check_int_equals_reference(m, x):
    """Integer-mode PyTorch (state and logits) == the reference on ``x`` (reals)."""
    g = seq_graph(m)
    xi = m.inp.int_forward(x)
    want, hs, cs = ref_logits(g, xi.numpy())
    h = m.rec.int_forward(xi, m.inp.frac).numpy()
    assert np.array_equal(h, hs if m.rec.return_sequences else hs[:, -1])
    assert np.array_equal(m.int_forward(xi).numpy(), want)
    return g, xi, hs, cs


@pytest.mark.parametrize("case", range(len(CASES)))
def test_int_forward_equals_reference(case):
    m = random_model(case)
    g, _, hs, cs = check_int_equals_reference(m, random_inputs(m, 300, case))
    node = g.nodes[0]
    assert node.op == "lstm" and int(node.attrs["return_sequences"]) == CASES[case][5]
    st, ct = m.rec.state_type, m.rec.cell_type
    assert st.min <= hs.min() and hs.max() <= st.max
    assert ct.min <= cs.min() and cs.max() <= ct.max
    assert len(np.unique(hs)) > 2 and len(np.unique(cs)) > 2     # the states move
    if CASES[case][0] * 2 ** m.rec.state_frac > ct.max:         # c can reach its clip
        assert cs.max() == ct.max


@pytest.mark.parametrize("case", range(len(CASES)))
def test_fake_quant_forward_is_the_integer_model(case):
    """The QAT forward (float64) gives exactly the dequantized reference logits."""
    m = random_model(case, seed=5).double()
    x = random_inputs(m, 200, case + 50).double()
    g = seq_graph(m)
    want = ref_logits(g, m.inp.int_forward(x).numpy())[0] * 2.0 ** -g.output.dtype.frac
    m.eval()
    with torch.no_grad():
        got = m(x).numpy()
    assert np.array_equal(got, want)


def test_trained_digits_model_int_equals_reference():
    """A (briefly) trained digits-rows LSTM: the whole test split and random sequences, integer
    mode == reference; the integer accuracy is the fake-quantized one."""
    from ddnhw.examples.data import digits
    torch.set_num_threads(1)
    xtr, ytr, xte, yte = digits()
    xtr, xte = xtr.reshape(-1, 8, 8), xte.reshape(-1, 8, 8)      # 8 rows of 8 pixels
    r = train_seq(xtr, ytr, xte, yte, SeqConfig(cell="lstm", float_epochs=3, qat_epochs=3))
    m = r.model
    x = torch.cat([torch.as_tensor(xte, dtype=torch.float32),
                   random_inputs(m, 200, 3)])
    _, xi, _, _ = check_int_equals_reference(m, x)
    pred = m.int_forward(xi[:len(xte)]).argmax(1).numpy()
    acc = float(np.mean(pred == yte))
    assert abs(acc - r.quant_accuracy) <= 2 / len(yte)    # float32 ties at most
    assert acc > 0.5


# -- exported attributes ------------------------------------------------------------------------
@pytest.mark.parametrize("case", range(len(CASES)))
def test_exported_attributes(case):
    m = random_model(case, gain=20.0)
    rec = m.rec
    a = seq_graph(m).nodes[0].attrs
    _, i, h = CASES[case][:3]
    assert set(a) == {"weight", "bias", "multiplier", "shift", "lut_lo", "lut_hi", "tanh_table",
                      "sigmoid_table", "gate_frac", "cell_bits", "return_sequences"}
    assert a["weight"].shape == (4 * h, i + h) and a["bias"].shape == (4 * h,)
    assert a["multiplier"].shape == a["shift"].shape == (5 * h,)
    for k in ("weight", "bias", "multiplier", "shift", "tanh_table", "sigmoid_table"):
        assert a[k].dtype == np.int64, k
    # the gate rows: a pure shift to the index grid
    assert np.all(a["multiplier"][:4 * h] == 1) and np.all(a["shift"] >= 0)
    # tanh(c): c * 2**(lut_frac - state_frac)
    d = rec.lut_frac - rec.state_frac
    assert np.all(a["multiplier"][4 * h:] == 1 << max(d, 0))
    assert np.all(a["shift"][4 * h:] == max(-d, 0))
    lo, hi = a["lut_lo"], a["lut_hi"]
    assert (lo, hi) == (-(1 << (rec.lut_bits - 1)), (1 << (rec.lut_bits - 1)) - 1)
    assert np.array_equal(a["tanh_table"], tanh_table(lo, hi, rec.lut_frac, rec.state_type))
    assert np.array_equal(a["sigmoid_table"], sigmoid_table(lo, hi, rec.lut_frac, rec.gate_frac))
    k = np.arange(lo, hi + 1) * 2.0 ** -rec.lut_frac           # the tables, independently
    assert np.array_equal(a["sigmoid_table"],
                          np.floor(2.0 ** rec.gate_frac / (1 + np.exp(-k)) + 0.5))
    assert a["gate_frac"] == rec.gate_frac and a["cell_bits"] == rec.cell_bits
    assert a["cell_bits"] == CASES[case][4].get("cell_bits", rec.state_bits + 2)
    assert a["return_sequences"] == CASES[case][5]


def test_weight_layout_is_pytorch_gate_order():
    """IR row block k (i, f, g, o) holds torch rows k*H.. ; x columns first, then h."""
    torch.manual_seed(1)
    q = QuantLSTM(2, 3, name="l")
    with torch.no_grad():
        q.weight_ih.zero_()
        q.weight_hh.zero_()
        for k in range(4):
            q.weight_ih[3 * k:3 * k + 3, 0] = 0.5 * (k + 1) / 4
            q.weight_hh[3 * k:3 * k + 3, 1] = -0.25 * (k + 1) / 4
    a = q.int_attrs(4)
    w = a["weight"]
    for k in range(4):
        blk = w[3 * k:3 * k + 3]
        assert np.all(blk[:, 1] == 0) and np.all(blk[:, 2] == 0) and np.all(blk[:, 4] == 0)
        assert np.all(blk[:, 0] > 0) and np.all(blk[:, 3] < 0)
    ratios = w[::3, 0] / -w[::3, 3]             # x / h weight magnitudes grow with k alike
    assert np.allclose(ratios, ratios[0])


# -- training and PyTorch conversion -------------------------------------------------------------
def test_gradients_reach_every_parameter():
    m = QuantSeqClassifier("lstm", input_size=3, hidden=4, n_classes=3, steps=5)
    x = random_inputs(m, 64, 1)
    for quant in (False, True):
        m.set_quantize(quant)
        m.zero_grad()
        nn.functional.cross_entropy(m(x), torch.arange(64) % 3).backward()
        for name, p in m.named_parameters():
            assert p.grad is not None and torch.any(p.grad != 0), (quant, name)
    assert m.config["cell"] == "lstm" and m.config["cell_bits"] == 10


@pytest.mark.parametrize("mod", [nn.LSTM(3, 4, batch_first=True),
                                 nn.LSTM(3, 4, bias=False, batch_first=True)])
def test_from_torch_float_equals_pytorch(mod):
    torch.manual_seed(0)
    q = from_torch(mod, name="l0", cell_bits=12)
    assert isinstance(q, QuantLSTM) and q.cell_bits == 12 and q.name == "l0"
    q.quantize = False
    x = 2 * torch.rand(7, 6, 3) - 1
    with torch.no_grad():
        out, (h, _) = mod(x)
        assert torch.allclose(q(x), h[0], atol=1e-6)
        q.return_sequences = True
        assert torch.allclose(q(x), out, atol=1e-6)


def test_from_torch_quantized():
    """A converted nn.LSTM, quantized: its integer forward is the reference (the float
    conversion of nn.LSTMCell is checked with the other cells in test_rnn)."""
    torch.manual_seed(0)
    m = QuantSeqClassifier("lstm", input_size=2, hidden=3, n_classes=2, steps=5)
    m.rec = from_torch(nn.LSTM(2, 3, batch_first=True), name="lstm")
    check_int_equals_reference(m, random_inputs(m, 100, 7))


@pytest.mark.parametrize("make, match", [
    (lambda: from_torch(nn.LSTM(3, 4, bidirectional=True), name="e"), "e.*bidirectional=True"),
    (lambda: from_torch(nn.LSTM(3, 4, num_layers=2), name="e"), r"e \(LSTM\): num_layers=2"),
    (lambda: from_torch(nn.LSTM(3, 4, proj_size=2), name="e"), r"e \(LSTM\): proj_size=2"),
    (lambda: from_torch(nn.LSTM(3, 4, num_layers=2, dropout=0.5), name="e"), "num_layers=2"),
    (lambda: QuantLSTM(3, 4, cell_bits=7, name="l1"), r"l1 \(QuantLSTM\): cell_bits = 7"),
    (lambda: QuantLSTM(3, 4, cell_bits=31, name="l1"), r"l1 \(QuantLSTM\): cell_bits = 31"),
    (lambda: QuantLSTM(3, 4, w_bits=1, name="l1"), r"l1 \(QuantLSTM\) weights.*bit width 1"),
    (lambda: QuantSeqClassifier("gru", cell_bits=10), "cell_bits=10 is an LSTM setting"),
    (lambda: QuantSeqClassifier("LSTMX"), "cell='LSTMX' is not supported"),
])
def test_unsupported_configurations_named(make, match):
    with pytest.raises(DdnhwError, match=match):
        make()


def test_dropout_named():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # torch warns on dropout with 1 layer
        mod = nn.LSTM(3, 4, dropout=0.5)
    with pytest.raises(DdnhwError, match=r"e \(LSTM\): dropout=0.5"):
        from_torch(mod, name="e")


# -- the exported graph through ddnhw.golden (needs the IR op ``lstm``) ---------------------------
@pytest.mark.parametrize("case", [0, 1, 3, 4])
def test_golden_on_exported_graph(case, tmp_path):
    m = random_model(case)
    g = export_seq(m, meta={"name": "t"})                       # checked
    xi = m.inp.int_forward(random_inputs(m, 200, case)).numpy()
    env = golden.run_all(g, xi)
    want, hs, _ = ref_logits(g, xi)
    assert np.array_equal(env["h"], hs if m.rec.return_sequences else hs[:, -1])
    assert np.array_equal(env["logits"], want)
    assert np.array_equal(m.int_forward(torch.as_tensor(xi)).numpy(), env["logits"])
    save_graph(g, tmp_path / "m.npz")
    g2 = load_graph(tmp_path / "m.npz")
    assert g2.nodes[0].attrs["cell_bits"] == m.rec.cell_bits
    assert np.array_equal(golden.run(g2, xi), want)
