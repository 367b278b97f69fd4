import numpy as np
import pytest
import torch

from ddnhw import DdnhwError, golden
from ddnhw.quant import QuantMLP, export_mlp, round_ste, pow2_weight_exponent


def check_int_equals_golden(model, x_real):
    g = export_mlp(model)
    xi = model.inp.int_forward(torch.as_tensor(x_real))
    ti = model.int_forward(xi).numpy()
    np.testing.assert_array_equal(ti, golden.run(g, xi.numpy()))
    # and the fake-quantized float forward is the same numbers, scaled
    model.eval()
    with torch.no_grad():
        fq = model(torch.as_tensor(x_real, dtype=torch.float64).float()).double().numpy()
    out_frac = g.output.dtype.frac
    np.testing.assert_array_equal(fq * 2.0 ** out_frac, ti)
    return g


def test_int_mode_equals_golden_on_whole_digits(trained_mlp, digits):
    xtr, _, xte, _ = digits
    check_int_equals_golden(trained_mlp.model, np.concatenate([xtr, xte]))


def test_quantized_accuracy_close_to_float(trained_mlp):
    # a short training run; the demo's full run is within 1.5 points (see README)
    assert trained_mlp.float_accuracy > 0.9
    assert trained_mlp.quant_accuracy > trained_mlp.float_accuracy - 0.04


@pytest.mark.parametrize("seed,bits", [(0, 2), (1, 3), (2, 5), (3, 8)])
def test_int_mode_equals_golden_random(seed, bits):
    torch.manual_seed(seed)
    m = QuantMLP((20, 9, 7, 5), in_bits=bits, w_bits=bits, a_bits=bits)
    x = torch.rand(300, 20)
    x[0] = 0
    x[1] = 1
    m.calibrate(x)
    check_int_equals_golden(m, x.numpy())


def test_round_is_half_up_with_straight_through_gradient():
    x = torch.tensor([0.5, 1.5, -0.5, 2.4], requires_grad=True)
    y = round_ste(x)
    assert y.tolist() == [1.0, 2.0, 0.0, 2.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_weight_exponent_fits_max():
    w = torch.tensor([[0.7, -0.2], [3.5, 0.0], [0.0, 0.0]])
    e = pow2_weight_exponent(w, 4, per_channel=True)
    q = torch.floor(w / 2 ** e.unsqueeze(1) + 0.5)
    assert q.abs().max() <= 7
    assert e[2] == 0


@pytest.mark.parametrize("bits", [0, 1, 9, 33, 4.0])
def test_impossible_bit_widths_are_rejected(bits):
    with pytest.raises(DdnhwError, match="bit width"):
        QuantMLP((4, 3, 2), w_bits=bits)


def test_export_requires_calibration():
    with pytest.raises(DdnhwError, match="relu0"):
        export_mlp(QuantMLP((4, 3, 2)))


def test_export_rejects_nan_weights():
    m = QuantMLP((4, 3, 2))
    m.calibrate(torch.rand(10, 4))
    with torch.no_grad():
        m.layers[1].weight[0, 0] = float("nan")
    with pytest.raises(DdnhwError, match="fc1"):
        export_mlp(m)
