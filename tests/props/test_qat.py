"""Property: the QAT MLP in integer mode == golden model of its export, and the fake-quantized
float forward is the same numbers scaled; random sizes, bits 2..8, weight scales (including
all-zero and saturating rows) and inputs at the extremes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ddnhw import golden

from .strategies import budget, count

import torch
from ddnhw.quant import QuantMLP, export_mlp  # noqa: E402


@budget(100)
@given(sizes=st.lists(st.integers(1, 12), min_size=2, max_size=4),
       in_bits=st.integers(2, 8), w_bits=st.integers(2, 8), a_bits=st.integers(2, 8),
       seed=st.integers(0, 2**31 - 1), wscale=st.sampled_from([1e-3, 1.0, 30.0]),
       out_per_channel=st.booleans(), rows=st.sampled_from(["none", "zero", "max", "min"]))
# regression (shrunk): a per-channel last layer exported an output type with frac 0 although
# its channels had different scales, so the integer argmax differed from the float one
@example(sizes=[1, 2], in_bits=2, w_bits=2, a_bits=2, seed=0, wscale=1e-3, out_per_channel=True,
         rows="none")
def test_int_forward_equals_golden(sizes, in_bits, w_bits, a_bits, seed, wscale,
                                   out_per_channel, rows):
    count("QuantMLP int_forward")
    torch.manual_seed(seed)
    m = QuantMLP(tuple(sizes), in_bits=in_bits, w_bits=w_bits, a_bits=a_bits,
                 out_per_channel=out_per_channel)
    with torch.no_grad():
        for layer in m.layers:
            layer.weight.mul_(wscale)
            layer.bias.mul_(wscale)
            if rows == "zero":
                layer.weight[0] = 0
            elif rows == "max":
                layer.weight[0] = layer.weight.abs().max() + 1
            elif rows == "min":
                layer.weight[0] = -(layer.weight.abs().max() + 1)
    x = torch.rand(64, sizes[0])
    x[0], x[1] = 0.0, 1.0
    x[2] = torch.where(torch.arange(sizes[0]) % 2 == 0, 1.0, 0.0)
    m.calibrate(x)
    g = export_mlp(m)
    xi = m.inp.int_forward(x)
    ti = m.int_forward(xi).numpy()
    np.testing.assert_array_equal(ti, golden.run(g, xi.numpy()))
    # the fake-quantized float32 forward is the same numbers, scaled, as long as float32 holds
    # every accumulator exactly (24-bit mantissa); beyond that it is on the "accuracy only"
    # arrow of the verification chain
    if all(t.dtype.bits <= 24 for t in g.tensors.values()):
        count("QuantMLP float fake-quant")
        m.eval()
        with torch.no_grad():
            fq = m(x).double().numpy()
        np.testing.assert_array_equal(fq * 2.0 ** g.output.dtype.frac, ti)


def test_per_channel_output_argmax_matches_float():
    # the exported graph's integer outputs are the float logits times one power of two
    torch.manual_seed(3)
    m = QuantMLP((6, 5, 4), out_per_channel=True)
    with torch.no_grad():
        m.layers[1].weight[0] *= 8.0     # channel exponents differ
    x = torch.rand(200, 6)
    m.calibrate(x)
    g = export_mlp(m)
    assert len(set(m.layers[1].weight_exponent().tolist())) > 1
    m.eval()
    with torch.no_grad():
        fq = m(x).double().numpy()
    yi = golden.run(g, m.inp.int_forward(x).numpy())
    np.testing.assert_array_equal(fq * 2.0 ** g.output.dtype.frac, yi)
    np.testing.assert_array_equal(np.argmax(fq, 1), np.argmax(yi, 1))
