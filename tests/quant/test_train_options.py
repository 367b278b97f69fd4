"""Training options of the examples: input normalization folded exactly into the first layer,
per-channel output layer exported bit-exact, the float model snapshot, distillation."""
import numpy as np
import pytest
import torch

from ddnhw import golden
from ddnhw.quant.cnn import CNNConfig, QuantCNN, export_cnn, train_cnn
from ddnhw.quant.modules import QuantMLP
from ddnhw.quant.rnn import QuantSeqClassifier
from ddnhw.quant.train import TrainConfig, fold_input_norm, set_input_norm, train_mlp

SIGNAL = [{"op": "conv1d", "out": 4, "kernel": 5, "stride": 2},
          {"op": "conv1d", "out": 4, "kernel": 3, "stride": 2},
          {"op": "flatten"}, {"op": "linear", "out": 3}]


@pytest.mark.parametrize("kind", ["mlp", "cnn", "seq"])
def test_input_norm_folds_exactly(kind):
    torch.manual_seed(0)
    if kind == "mlp":
        model, x = QuantMLP((12, 6, 3)), torch.rand(50, 12)
    elif kind == "cnn":
        model, x = QuantCNN(SIGNAL, (1, 1, 20), bn=False), torch.rand(50, 1, 1, 20)
    else:
        model = QuantSeqClassifier("gru", input_size=2, hidden=5, n_classes=3, steps=4)
        x = torch.rand(50, 8)
    model.set_quantize(False)
    model.eval()
    set_input_norm(model, x * 0.2 + 0.4)
    before = model(x)
    fold_input_norm(model)
    assert model.inp.norm.numel() == 0
    assert torch.allclose(model(x), before, atol=1e-5)


def test_padded_conv_refuses_input_norm():
    from ddnhw import DdnhwError
    model = QuantCNN([{"op": "conv", "out": 2, "kernel": 3, "padding": 1}, {"op": "flatten"},
                      {"op": "linear", "out": 2}], (1, 4, 4), bn=False)
    set_input_norm(model, torch.rand(10, 1, 4, 4))
    with pytest.raises(DdnhwError, match="zero-padded"):
        fold_input_norm(model)


def test_out_per_channel_cnn_is_bit_exact():
    rng = np.random.default_rng(0)
    x = rng.random((120, 20)).astype(np.float32)
    y = (x[:, :10].sum(1) > 5).astype(np.int64) + (x[:, 10:].sum(1) > 5)
    cfg = CNNConfig(layers=SIGNAL, in_shape=(1, 1, 20), float_epochs=2, qat_epochs=2,
                    out_per_channel=True, input_norm=True, distill=0.5)
    r = train_cnn(x[:80], y[:80], x[80:], y[80:], cfg)
    assert r.model.body[-1].per_channel
    g = export_cnn(r.model)
    xi = golden.quantize_input(g, x.reshape(-1, 1, 20, 1))
    ours = r.model.int_forward(torch.as_tensor(xi).permute(0, 3, 1, 2)).numpy()
    assert np.array_equal(ours, golden.run(g, xi))
    assert r.float_model is not None and r.float_model.inp.norm.numel() == 2


def test_distill_and_snapshot_mlp(digits):
    xtr, ytr, xte, yte = digits
    cfg = TrainConfig(sizes=(64, 8, 10), float_epochs=2, qat_epochs=2, prune=0.5, distill=0.5)
    r = train_mlp(xtr[:300], ytr[:300], xte, yte, cfg)
    # the snapshot is the float model before pruning
    assert float(r.float_model.layers[0].mask.mean()) == 1.0
    assert float(r.model.layers[0].mask.mean()) < 0.6
    assert 0 <= r.quant_accuracy <= 1


def test_column_signal_cnn_is_the_row_cnn():
    """A signal as one column ((C, L, 1), kernels k x 1) computes what the one-row CNN computes
    with the same weights, and its export (an (L, 1, C) image) is bit-exact with golden."""
    torch.manual_seed(1)
    row = QuantCNN(SIGNAL, (1, 1, 20), in_bits=8, bn=False)
    col = QuantCNN(SIGNAL, (1, 20, 1), in_bits=8, bn=False)
    with torch.no_grad():
        for a, b in zip(row.body, col.body):
            if hasattr(a, "weight"):
                b.weight.copy_(a.weight.reshape(b.weight.shape))
                b.bias.copy_(a.bias)
    x = torch.rand(60, 20)
    row.set_quantize(True)
    row.calibrate(x.reshape(-1, 1, 1, 20))
    for a, b in zip(row.body, col.body):      # the same activation grids
        if hasattr(a, "frac"):
            b.frac = a.frac
    col.set_quantize(True)
    assert torch.allclose(row(x.reshape(-1, 1, 1, 20)), col(x.reshape(-1, 1, 20, 1)),
                          atol=1e-4)
    g_row, g = export_cnn(row), export_cnn(col)
    assert tuple(g.input.shape) == (20, 1, 1) and tuple(g_row.input.shape) == (1, 20, 1)
    xi = golden.quantize_input(g, x.numpy().reshape(-1, 20, 1, 1))
    ours = col.int_forward(torch.as_tensor(xi).permute(0, 3, 1, 2)).numpy()
    assert np.array_equal(ours, golden.run(g, xi))
    assert np.array_equal(golden.run(g_row, xi.reshape(-1, 1, 20, 1)), golden.run(g, xi))


def test_mse_exponents_and_activation_grid():
    from ddnhw.quant.cnn import mse_act_frac
    from ddnhw.quant.quantizers import mse_weight_exponent, pow2_weight_exponent
    torch.manual_seed(2)
    w = torch.randn(16, 40)
    w[0, 0] = 9.0                      # one outlier: clipping it is worth a finer grid
    e_max = pow2_weight_exponent(w, 4, True)
    e_mse = mse_weight_exponent(w, 4, True)
    assert torch.all(e_mse <= e_max) and e_mse[0] < e_max[0]

    def err(e):
        s = torch.pow(2.0, e).unsqueeze(1)
        return ((torch.clamp(torch.floor(w / s + 0.5), -7, 7) * s - w) ** 2).sum(1)
    assert torch.all(err(e_mse) <= err(e_max))
    h = torch.relu(torch.randn(10000)) * 3
    f = mse_act_frac(h, 4)

    def q(ff):
        return float(((torch.clamp(torch.floor(h * 2.0 ** ff + .5), 0, 15) / 2.0 ** ff - h)
                      ** 2).sum())
    assert q(f) <= min(q(f - 1), q(f + 1))


def test_frozen_exponents_train_bit_exact():
    """QAT with frozen least-squared-error weight exponents and MSE activation grids (the
    UP5K MNIST-1D CNN's settings) on a column signal: the export is bit-exact with the
    integer-mode model and the exponents stay the frozen ones."""
    rng = np.random.default_rng(0)
    x = rng.random((120, 20)).astype(np.float32)
    y = (x[:, :10].sum(1) > 5).astype(np.int64) + (x[:, 10:].sum(1) > 5)
    cfg = CNNConfig(layers=SIGNAL, in_shape=(1, 20, 1), in_bits=8, float_epochs=2,
                    qat_epochs=2, out_per_channel=True, freeze_exponents="mse",
                    act_calibration="mse")
    r = train_cnn(x[:80], y[:80], x[80:], y[80:], cfg)
    convs = [m for m in r.model.modules() if hasattr(m, "frozen_exponent")]
    assert len(convs) == 3 and all(m.frozen_exponent is not None for m in convs)
    g = export_cnn(r.model)
    xi = golden.quantize_input(g, x.reshape(-1, 20, 1, 1))
    ours = r.model.int_forward(torch.as_tensor(xi).permute(0, 3, 1, 2)).numpy()
    assert np.array_equal(ours, golden.run(g, xi))
    from ddnhw import DdnhwError
    with pytest.raises(DdnhwError, match="freeze_exponents"):
        train_cnn(x[:80], y[:80], x[80:], y[80:],
                  CNNConfig(layers=SIGNAL, in_shape=(1, 20, 1), freeze_exponents="max2"))
    with pytest.raises(DdnhwError, match="act_calibration"):
        QuantCNN(SIGNAL, (1, 20, 1), act_calibration="p99")
