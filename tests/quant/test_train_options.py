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
