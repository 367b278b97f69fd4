"""SchemeCNN: every weight/activation scheme on convolutional layers; integer mode == fake-quant
codes == golden exactly, the lowered network in the Amaranth simulator == golden under
backpressure, QAT from a float QuantCNN, errors that name the layer."""
import numpy as np
import pytest
import torch

from ddnhw import DdnhwError, golden
from ddnhw.quant.cnn import QuantCNN
from ddnhw.quant.scheme_cnn import SchemeCNN, export_scheme_cnn
from ddnhw.quant.schemes import ActSpec, WeightSpec

U = WeightSpec
SCHEMES = {
    "lsq_mult": (U(bits=4), ActSpec(bits=4)),
    "lsq_pow2": (U(bits=3, full_range=True), ActSpec(bits=3, realize="pow2")),
    "pow2": (U("pow2", 4), ActSpec(bits=4, realize="pow2")),
    "ternary": (U("ternary", 2), ActSpec(bits=2)),
    "binary": (U("binary", 1), ActSpec("bipolar", 2)),
    "codebook": (U("codebook", 2, codebook_bits=6), ActSpec(bits=4)),
    "mixed": ([U(bits=6), U("pow2", 3), U("ternary", 2)], [ActSpec(bits=5), ActSpec(bits=3)]),
}
LAYERS = [{"op": "conv", "out": 4, "kernel": 3, "padding": 1}, {"op": "maxpool", "kernel": 2},
          {"op": "conv", "out": 3, "kernel": 2, "stride": 2}, {"op": "flatten"},
          {"op": "linear", "out": 5}]
SMALL = [{"op": "conv", "out": 3, "kernel": 3}, {"op": "maxpool", "kernel": 2},
         {"op": "flatten"}, {"op": "linear", "out": 4}]


def make(scheme, layers, in_shape, seed):
    torch.manual_seed(seed)
    w, a = SCHEMES[scheme]
    n = sum(s["op"] in ("conv", "linear") for s in layers)
    if scheme == "mixed" and n != 3:
        w, a = w[:n], a[:n - 1]
    m = SchemeCNN(layers, in_shape, 4, w, a)
    x = torch.rand((128,) + tuple(in_shape))
    x[0], x[1] = 0.0, 1.0
    m.calibrate(x)
    return m, x


def check_cnn_int_equals_golden(model, x):
    """int_forward == golden(export) == the fake-quant forward's codes, on NHWC images."""
    g = export_scheme_cnn(model)
    xi = golden.quantize_input(g, x.permute(0, 2, 3, 1).numpy())
    np.testing.assert_array_equal(model.input_codes(x).long().permute(0, 2, 3, 1).numpy(), xi)
    want = golden.run(g, xi)
    np.testing.assert_array_equal(model.int_forward(xi), want)
    model.eval()
    with torch.no_grad():
        codes, _ = model.forward_codes(x)
    np.testing.assert_array_equal(codes.numpy(), want)
    return g, xi


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("seed", [0, 1])
def test_cnn_int_mode_equals_golden(scheme, seed):
    m, x = make(scheme, LAYERS, (2, 8, 8), seed)
    g, _ = check_cnn_int_equals_golden(m, x)
    if scheme == "pow2":
        w = np.abs(g.node("conv0").attrs["weight"])
        assert np.all((w == 0) | (w & (w - 1) == 0))
    # a few QAT steps keep the equality (learned scales and codebooks move)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    m.train()
    for _ in range(3):
        opt.zero_grad()
        m(x).square().mean().backward()
        opt.step()
    check_cnn_int_equals_golden(m, x)


@pytest.mark.parametrize("scheme", ["lsq_mult", "pow2", "binary", "codebook"])
def test_cnn_amaranth_sim_equals_golden(scheme):
    from ddnhw.flow import sim_check
    m, x = make(scheme, SMALL, (1, 6, 6), 3)
    g, xi = check_cnn_int_equals_golden(m, x[:12])
    res = sim_check(g, xi, idle=0.3, stall=0.3, seed=2)
    assert res["mismatches"] == 0


def test_from_float_cnn_keeps_the_float_function():
    torch.manual_seed(0)
    f = QuantCNN(SMALL, (1, 6, 6), bn=True)
    f.eval()
    f.fold_batchnorm()
    f.set_quantize(False)
    m = SchemeCNN.from_float(f, weights=U(bits=8), acts=ActSpec(bits=8))
    m.set_quantize(False)
    x = torch.rand(16, 1, 6, 6)
    torch.testing.assert_close(m(x), f(x))


@pytest.mark.parametrize("layers,match", [
    ([{"op": "conv", "out": 2, "kernel": 3}, {"op": "flatten"}], "last conv/linear"),
    ([{"op": "conv", "out": 2, "kernel": 3, "groups": 2}, {"op": "flatten"},
      {"op": "linear", "out": 2}], "conv0.*groups"),
    ([{"op": "avgpool", "kernel": 2}, {"op": "flatten"}, {"op": "linear", "out": 2}],
     "avgpool0.*not supported"),
    ([{"op": "conv", "out": 2, "kernel": 3}, {"op": "linear", "out": 2}], "linear1.*flatten"),
])
def test_cnn_bad_layers_raise(layers, match):
    with pytest.raises(DdnhwError, match=match):
        SchemeCNN(layers, (2, 6, 6))
