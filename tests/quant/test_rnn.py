"""QuantRNN / QuantGRU: integer-mode PyTorch == golden exactly (random shapes, bit widths, last
step and every step), the fake-quantized forward == the dequantized integer model, PyTorch
conversion, and unsupported configurations named."""
import numpy as np
import pytest
import torch
from torch import nn

from ddnhw import DdnhwError, golden
from ddnhw.ir import IRError, load_graph, save_graph
from ddnhw.quant.rnn import QuantGRU, QuantRNN, QuantSeqClassifier, export_seq, from_torch

CASES = [  # cell, steps, inputs, hidden, classes, in/w/state/lut bits, gate_frac, every step
    ("gru", 6, 3, 5, 4, dict(in_bits=4, w_bits=4, state_bits=8, lut_bits=6, gate_frac=6), 0),
    ("gru", 4, 2, 3, 3, dict(in_bits=2, w_bits=3, state_bits=6, lut_bits=4, gate_frac=3), 1),
    ("gru", 9, 1, 7, 2, dict(in_bits=8, w_bits=8, state_bits=12, lut_bits=9, gate_frac=10), 0),
    ("gru", 3, 5, 2, 5, dict(in_bits=3, w_bits=2, state_bits=5, lut_bits=5, gate_frac=2,
                             lut_frac=4), 1),
    ("rnn", 6, 3, 5, 4, dict(in_bits=4, w_bits=4, state_bits=8, lut_bits=6), 0),
    ("rnn", 5, 4, 6, 3, dict(in_bits=5, w_bits=6, state_bits=10, lut_bits=7), 1),
    ("rnn", 2, 1, 2, 2, dict(in_bits=2, w_bits=2, state_bits=3, lut_bits=3), 0),
    ("rnn", 8, 2, 4, 6, dict(in_bits=6, w_bits=3, state_bits=16, lut_bits=12, state_frac=9), 1),
]


def random_model(case, seed=0, gain=3.0):
    return scaled_model(*CASES[case], seed=seed + case, gain=gain)


def scaled_model(cell, t, i, h, c, kw, rs, seed, gain):
    """A seeded ``cell`` classifier whose parameters are scaled by random gains, with an
    all-zero recurrent row and an all-zero input row."""
    torch.manual_seed(seed)
    m = QuantSeqClassifier(cell, input_size=i, hidden=h, n_classes=c, steps=t,
                           return_sequences=rs, **kw)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(gain * torch.rand(()) + 0.2)        # drive the tables into saturation too
        m.rec.weight_hh[0] = 0                           # an all-zero recurrent row
        m.rec.weight_ih[-1] = 0                          # and an all-zero input row
    return m


def random_inputs(m, n, seed):
    x = torch.rand(n, m.steps, m.rec.input_size, generator=torch.Generator().manual_seed(seed))
    x[0], x[1] = 0.0, 1.0
    return x


def check_int_equals_golden(m, x):
    """Export ``m``; its integer forward (state and logits) equals golden on ``x`` (reals)."""
    g = export_seq(m)
    xi = m.inp.int_forward(x)
    env = golden.run_all(g, xi.numpy())
    h = m.rec.int_forward(xi, m.inp.frac).numpy()
    assert np.array_equal(h, env["h"])
    assert np.array_equal(m.int_forward(xi).numpy(), env["logits"])
    return g, xi, env


@pytest.mark.parametrize("case", range(len(CASES)))
def test_int_forward_equals_golden(case):
    m = random_model(case)
    g, xi, env = check_int_equals_golden(m, random_inputs(m, 300, case))
    node = g.nodes[0]
    assert node.op == CASES[case][0] and int(node.attrs["return_sequences"]) == CASES[case][6]
    st = g.tensors["h"].dtype
    assert st.min <= env["h"].min() and env["h"].max() <= st.max
    # the state moves: not stuck in one table entry
    assert len(np.unique(env["h"])) > 2


@pytest.mark.parametrize("case", range(len(CASES)))
def test_fake_quant_forward_is_the_integer_model(case):
    """The QAT forward (float64) gives exactly the dequantized golden logits."""
    m = random_model(case, seed=5).double()
    x = random_inputs(m, 200, case + 50).double()
    g = export_seq(m)
    want = golden.run(g, m.inp.int_forward(x).numpy()) * 2.0 ** -g.output.dtype.frac
    m.eval()
    with torch.no_grad():
        got = m(x).numpy()
    assert np.array_equal(got, want)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_export_roundtrip_and_gradients(cell, tmp_path):
    m = QuantSeqClassifier(cell, input_size=3, hidden=4, n_classes=3, steps=5)
    x = random_inputs(m, 64, 1)
    loss = nn.functional.cross_entropy(m(x), torch.arange(64) % 3)
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.any(p.grad != 0), name
    g = export_seq(m, meta={"name": "t"})
    save_graph(g, tmp_path / "m.npz")
    g2 = load_graph(tmp_path / "m.npz")
    xi = m.inp.int_forward(x).numpy()
    assert np.array_equal(golden.run(g2, xi), golden.run(g, xi))
    assert g2.meta["cell"] == cell and g2.meta["name"] == "t"


@pytest.mark.parametrize("mod", [nn.GRU(3, 4, batch_first=True), nn.RNN(3, 4, batch_first=True),
                                 nn.GRU(3, 4, bias=False, batch_first=True)])
def test_from_torch_float_equals_pytorch(mod):
    q = from_torch(mod, name="r0")
    q.quantize = False
    x = torch.rand(7, 6, 3)
    with torch.no_grad():
        want = mod(x)[0][:, -1]
        assert torch.allclose(q(x), want, atol=1e-6)
    assert isinstance(q, QuantGRU if isinstance(mod, nn.GRU) else QuantRNN)


@pytest.mark.parametrize("make, hidden_of", [(nn.GRUCell, lambda out: out),
                                             (nn.LSTMCell, lambda out: out[0])])
def test_from_torch_cells(make, hidden_of):
    torch.manual_seed(0)
    cell = make(2, 3)
    q = from_torch(cell)
    q.quantize = False
    x = torch.rand(4, 1, 2)
    with torch.no_grad():
        assert torch.allclose(q(x), hidden_of(cell(x[:, 0])), atol=1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda: from_torch(nn.GRU(3, 4, bidirectional=True), name="g"), "g.*bidirectional=True"),
    (lambda: from_torch(nn.GRU(3, 4, num_layers=2), name="g"), "g.*num_layers=2"),
    (lambda: from_torch(nn.RNN(3, 4, nonlinearity="relu"), name="r"), "r.*nonlinearity='relu'"),
    (lambda: from_torch(nn.Linear(3, 4), name="l"), r"l \(Linear\): not a recurrent layer"),
    (lambda: QuantSeqClassifier("transformer"), "cell='transformer' is not supported"),
    (lambda: QuantGRU(3, 4, w_bits=0, name="g1"), r"g1 \(QuantGRU\) weights.*bit width 0"),
    (lambda: QuantGRU(3, 4, w_bits=33, name="g1"), r"g1 \(QuantGRU\) weights.*bit width 33"),
    (lambda: QuantRNN(3, 4, state_bits=0, name="r1"), r"r1 \(QuantRNN\): state_bits = 0"),
    (lambda: QuantRNN(3, 4, state_bits=33, name="r1"), r"r1 \(QuantRNN\): state_bits = 33"),
    (lambda: QuantGRU(3, 4, lut_bits=33, name="g1"), r"g1 \(QuantGRU\): lut_bits = 33"),
    (lambda: QuantGRU(3, 4, lut_bits=0, name="g1"), r"g1 \(QuantGRU\): lut_bits = 0"),
    (lambda: QuantGRU(3, 4, gate_frac=0, name="g1"), r"g1 \(QuantGRU\): gate_frac = 0"),
    (lambda: QuantGRU(3, 4, state_bits=8, state_frac=7, name="g1"), "g1.*state_frac = 7"),
    (lambda: QuantGRU(3, 0, name="g1"), "g1.*hidden_size = 0"),
    (lambda: QuantSeqClassifier("gru", in_bits=33), r"input \(QuantInput\).*bit width 33"),
])
def test_unsupported_configurations_named(make, match):
    with pytest.raises(DdnhwError, match=match):
        make()


def test_bad_input_shape_and_nan_named():
    m = QuantSeqClassifier("gru", input_size=3, hidden=2, n_classes=2, steps=4)
    with pytest.raises(DdnhwError, match=r"input of shape \(2, 5, 3\) is not \(N, 4, 3\)"):
        m(torch.rand(2, 5, 3))
    with torch.no_grad():
        m.rec.weight_hh[0, 0] = float("nan")
    with pytest.raises(DdnhwError, match="layer gru: weight_hh contains NaN"):
        export_seq(m)


def test_exported_graph_is_checked():
    m = random_model(0)
    g = export_seq(m)
    g.nodes[0].attrs["tanh_table"] = g.nodes[0].attrs["tanh_table"][:-1]
    with pytest.raises(IRError, match="tanh_table"):
        g.check()


@pytest.mark.parametrize("case", range(len(CASES)))
def test_index_requantization_is_a_shift(case):
    """Accumulator scales are capped at the index grid: every multiplier is 1."""
    m = random_model(case, gain=20.0)
    assert np.all(export_seq(m).nodes[0].attrs["multiplier"] == 1)


@pytest.mark.parametrize("case, fold", [(0, None), (1, (1, 2)), (4, (2, 3)), (5, None)])
def test_exported_model_in_hardware_sim(case, fold):
    """The exported graph (last step or every step + flatten, unrolled or folded) lowered and
    run in the Amaranth simulator under random idle/stall == golden."""
    from ddnhw.flow import sim_check
    m = random_model(case)
    g = export_seq(m)
    x = m.inp.int_forward(random_inputs(m, 6, case)).numpy()
    opts = {"folding": {m.rec.name: fold, "fc": (1, 1)}} if fold else {}
    r = sim_check(g, x, seed=case, **opts)
    assert r["mismatches"] == 0
    assert np.array_equal(r["outputs"], golden.run(g, x))
