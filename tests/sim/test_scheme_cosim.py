"""Every quantization scheme, end to end on the example models: integer-mode PyTorch == golden
model on the whole digits set, and the generated RTL in Verilator == golden under random idle
cycles and backpressure (the test split plus random vectors that include the extremes).

One float model (the digits MLP 64-16-10, the digits CNN) is trained once; each scheme gets a
short QAT from it, so the weights, scales and multipliers are those of a trained model, not of
a random one."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

from ddnhw import flow, golden
from ddnhw.quant.schemes import ActSpec, WeightSpec, export_scheme_mlp

from .test_runner import _fast_verilator_builds, cache_dir  # noqa: F401

pytestmark = [pytest.mark.cocotb, pytest.mark.slow]

U = WeightSpec
HIDDEN = 16
SCHEMES = {
    "uniform4": (U(bits=4), ActSpec(bits=4, realize="pow2")),
    "lsq_mult": (U(bits=4), ActSpec(bits=4, realize="mult")),
    "pow2": (U("pow2", 4), ActSpec(bits=4, realize="pow2")),
    "codebook": (U("codebook", 2, codebook_bits=6), ActSpec(bits=4)),
    "ternary": (U("ternary", 2), ActSpec(bits=4)),
    "binary_xnor": (U("binary", 1), ActSpec("bipolar", 2)),
    "mixed": ([U(bits=3), U("pow2", 4)], ActSpec(bits=3)),
    "mixed_channels": ([U(bits=4, channel_bits=(4, 2) * (HIDDEN // 2)), U(bits=3)],
                       ActSpec(bits=4)),
}


@pytest.fixture(scope="module")
def digits():
    from ddnhw.datasets import load_digits_split
    from ddnhw.quant.qat import pretrain_float
    data = load_digits_split()
    torch.set_num_threads(1)
    return data, pretrain_float(data[0], data[1], (64, HIDDEN, 10), epochs=20)


def check_scheme_chain(name, digits, cache_dir, n_random=300):  # noqa: F811
    from ddnhw.quant.qat import SchemeConfig, train_scheme
    (xtr, ytr, xte, yte), fm = digits
    w, a = SCHEMES[name]
    cfg = SchemeConfig(weights=w, acts=a, qat_epochs=3, distill=0.5, qat_lr=5e-3)
    model, met = train_scheme(fm, xtr, ytr, xte, yte, cfg)
    assert met["quant_accuracy"] > 0.5, met            # trained, not a random model
    g = export_scheme_mlp(model)
    # integer-mode PyTorch == golden on every digits image (train and test split)
    x_all = np.concatenate([xtr, xte])
    xi = golden.quantize_input(g, x_all)
    assert_array_equal(model.input_codes(torch.as_tensor(x_all)).long().numpy(), xi)
    expected_all = golden.run(g, xi)
    assert_array_equal(model.int_forward(xi), expected_all)
    model.eval()
    with torch.no_grad():
        codes, _ = model.forward_codes(torch.as_tensor(x_all))
    assert_array_equal(codes.numpy(), expected_all)
    # RTL in Verilator == golden, random idle/backpressure
    rtl = cache_dir / "scheme_cosim" / name
    manifest = flow.generate(g, rtl, f"scheme_{name}")
    if name == "binary_xnor":
        assert "XnorDense" in [l["block"] for l in manifest["layers"]]
    x = np.concatenate([golden.quantize_input(g, xte), flow.random_vectors(g, n_random, seed=3)])
    res, expected = flow.cosim(g, rtl, x, simulator="verilator", seed=7, idle_prob=0.3,
                               stall_prob=0.4, build_dir=cache_dir / "scheme_cosim" / "builds")
    assert res.mismatches == 0, res.message
    assert_array_equal(res.outputs, expected)
    # the hardware's predictions on the test split are the golden model's accuracy
    acc = float(np.mean(res.outputs[:len(xte)].argmax(1) == yte))
    assert acc == float(np.mean(golden.classify(g, golden.quantize_input(g, xte)) == yte))


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_scheme_bit_exact_torch_golden_verilator(name, digits, cache_dir):  # noqa: F811
    check_scheme_chain(name, digits, cache_dir)


CNN_SCHEMES = {   # conv, dense: mixed per layer (pow2 conv, ternary dense with multipliers)
    "cnn_mixed": ([U("pow2", 4), U("ternary", 2)], ActSpec(bits=4)),
    "cnn_binary_bipolar": (U("binary", 1), ActSpec("bipolar", 2)),
    "cnn_codebook": (U("codebook", 2, codebook_bits=6), ActSpec(bits=3)),
}


@pytest.fixture(scope="module")
def digits_cnn_float():
    from ddnhw.examples.records import DIGITS_CNN_LAYERS
    from ddnhw.datasets import load_digits_split
    from ddnhw.quant.cnn import CNNConfig, train_cnn
    data = load_digits_split()
    torch.set_num_threads(1)
    r = train_cnn(*data, CNNConfig(layers=[dict(s) for s in DIGITS_CNN_LAYERS], float_epochs=3,
                                   qat_epochs=0))
    r.model.set_quantize(False)
    return data, r.model


@pytest.mark.parametrize("name", sorted(CNN_SCHEMES))
def test_cnn_scheme_bit_exact_torch_golden_verilator(name, digits_cnn_float,  # noqa: F811
                                                     cache_dir):  # noqa: F811
    from ddnhw.flow import cosim_check, random_images
    from ddnhw.quant.qat import SchemeConfig, train_scheme
    from ddnhw.quant.scheme_cnn import SchemeCNN, export_scheme_cnn
    (xtr, ytr, xte, yte), fcnn = digits_cnn_float
    w, a = CNN_SCHEMES[name]
    model = SchemeCNN.from_float(fcnn, weights=w, acts=a)
    img = (lambda v: v.reshape(-1, 1, 8, 8))
    model, met = train_scheme(fcnn, img(xtr), ytr, img(xte), yte,
                              SchemeConfig(weights=w, acts=a, qat_epochs=2, qat_lr=5e-3),
                              model=model)
    assert met["quant_accuracy"] > 0.5, met
    g = export_scheme_cnn(model)
    x_all = np.concatenate([xtr, xte]).reshape(-1, 8, 8, 1)
    xi = golden.quantize_input(g, x_all)
    want = golden.run(g, xi)
    assert_array_equal(model.int_forward(xi), want)
    model.eval()
    with torch.no_grad():
        codes, _ = model.forward_codes(torch.as_tensor(x_all).permute(0, 3, 1, 2))
    assert_array_equal(codes.numpy(), want)
    rtl = cache_dir / "scheme_cosim" / name
    flow.generate(g, rtl)     # ddnhw_top.v, as cosim_check reads it
    x = np.concatenate([xi[-len(xte):], random_images(g, 40, seed=1)])
    r = cosim_check(g, x, rtl, seed=5, idle=0.3, stall=0.4,
                    build_dir=cache_dir / "scheme_cosim" / "builds")
    assert r["mismatches"] == 0, r["message"]
    assert_array_equal(r["outputs"], golden.run(g, x))
