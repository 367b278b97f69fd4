"""QuantCNN with residual blocks: integer-mode PyTorch == golden exactly (random shapes, bit
widths), the export has an ``add`` with aligned shifts, unsupported residual arguments."""
import numpy as np
import pytest

from ddnhw import DdnhwError
from ddnhw.quant.cnn import QuantCNN

from .test_cnn import check_int_equals_golden

CASES = [
    ([{"op": "conv", "out": 4, "kernel": 3, "padding": 1}, {"op": "res", "kernel": 3},
      {"op": "maxpool", "kernel": 2}, {"op": "flatten"}, {"op": "linear", "out": 10}],
     (1, 8, 8), (4, 4, 4)),
    ([{"op": "res", "kernel": 3, "mid": 3}, {"op": "flatten"}, {"op": "linear", "out": 3}],
     (2, 5, 6), (3, 5, 3)),
    ([{"op": "conv", "out": 3, "kernel": 3, "stride": 2}, {"op": "res", "kernel": 1},
      {"op": "res", "kernel": 3, "mid": 5}, {"op": "avgpool", "kernel": 2}, {"op": "flatten"},
      {"op": "linear", "out": 4}], (2, 9, 9), (8, 2, 6)),
    ([{"op": "res", "kernel": 5, "mid": 2}, {"op": "conv", "out": 2, "kernel": 3},
      {"op": "flatten"}, {"op": "linear", "out": 2}], (3, 6, 7), (2, 8, 5)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_residual_int_forward_equals_golden(case):
    layers, shape, bits = CASES[case]
    g = check_int_equals_golden(layers, shape, bits, seed=10 + case)
    adds = [n for n in g.nodes if n.op == "add"]
    assert len(adds) == sum(s["op"] == "res" for s in layers)
    for n in adds:
        (x0, x1), y = (g.tensors[t] for t in n.inputs), g.tensors[n.outputs[0]]
        assert y.dtype.frac == max(x0.dtype.frac, x1.dtype.frac)
        assert (n.attrs["shift0"], n.attrs["shift1"]) == (y.dtype.frac - x0.dtype.frac,
                                                          y.dtype.frac - x1.dtype.frac)
        # the skip input is the block's input tensor, which also feeds the block's first conv
        assert sum(x1.name in m.inputs for m in g.nodes) == 2


@pytest.mark.parametrize("bits, shifted", [((8, 2, 2), 0), ((4, 4, 4), 1)])
def test_residual_shifts_both_ways(bits, shifted):
    # the accumulator's binary point is usually the finer one (the block input is shifted); with
    # 8-bit inputs and 2-bit weights and activations the input's is finer (the accumulator is)
    g = check_int_equals_golden(CASES[1][0], (2, 5, 6), bits, seed=0, n=16)
    n = next(n for n in g.nodes if n.op == "add")
    shifts = (n.attrs["shift0"], n.attrs["shift1"])
    assert shifts[shifted] > 0 and shifts[1 - shifted] == 0


@pytest.mark.parametrize("spec, match", [
    ({"op": "res", "kernel": 2, "name": "r1"}, "r1.*kernel=2 must be odd"),
    ({"op": "res", "kernel": 3, "mid": 0, "name": "r2"}, "r2.*mid=0"),
    ({"op": "res", "kernel": 3, "stride": 2, "name": "r3"}, "r3.*unsupported.*stride"),
])
def test_residual_unsupported(spec, match):
    with pytest.raises(DdnhwError, match=match):
        QuantCNN([spec, {"op": "flatten"}, {"op": "linear", "out": 2}], (2, 4, 4))
    with pytest.raises(DdnhwError, match="res after flatten"):
        QuantCNN([{"op": "flatten"}, {"op": "res"}, {"op": "linear", "out": 2}], (2, 4, 4))
