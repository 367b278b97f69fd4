"""1-D pooling (QuantPool1d; IR maxpool2d/avgpool2d with a ``[1, k]`` or other non-square
kernel): integer-mode PyTorch == golden exactly on random shapes and bit widths, golden ==
a direct reference, the lowered network == golden in the Amaranth simulator under random
idle/stall, and unsupported configurations name the layer and the attribute."""
import numpy as np
import pytest

from ddnhw import DdnhwError, golden
from ddnhw.hw.sim import run_beats
from ddnhw.ir import IntType, IRError, chain_graph
from ddnhw.lower import build_network
from ddnhw.quant.cnn import QuantCNN, QuantPool1d

from .test_cnn import check_int_equals_golden

CASES = [
    ([{"op": "conv1d", "out": 4, "kernel": 3}, {"op": "maxpool1d", "kernel": 2},
      {"op": "flatten"}, {"op": "linear", "out": 3}], (1, 1, 20), (4, 4, 4)),
    ([{"op": "conv1d", "out": 3, "kernel": 5, "stride": 2}, {"op": "avgpool1d", "kernel": 4,
                                                              "stride": 1},
      {"op": "flatten"}, {"op": "linear", "out": 2}], (2, 1, 27), (3, 5, 6)),
    ([{"op": "conv1d", "out": 4, "kernel": 3, "groups": 2}, {"op": "maxpool1d", "kernel": 3,
                                                              "stride": 2},
      {"op": "conv1d", "out": 2, "kernel": 2}, {"op": "avgpool1d", "kernel": 2},
      {"op": "flatten"}, {"op": "linear", "out": 4}], (2, 1, 25), (8, 2, 3)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_int_forward_equals_golden_pool1d(case):
    layers, shape, bits = CASES[case]
    g = check_int_equals_golden(layers, shape, bits, seed=30 + case)
    pools = [n for n in g.nodes if n.op.endswith("pool2d")]
    assert pools and all(n.attrs["kernel"][0] == 1 for n in pools)


def reference_pool(x, kind, kh, kw, stride):
    """Direct loops over the windows (NHWC batch)."""
    n, h, w, c = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    y = np.zeros((n, oh, ow, c), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            win = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw]
            if kind == "max":
                y[:, i, j] = win.max(axis=(1, 2))
            else:
                s = (kh * kw).bit_length() - 1
                y[:, i, j] = (win.sum(axis=(1, 2)) + (1 << s >> 1)) >> s
    return y


POOLS = [("max", (1, 3), 2, (1, 11, 3)), ("avg", (1, 4), 1, (1, 9, 2)),
         ("avg", (2, 1), 2, (4, 5, 2)), ("max", (2, 3), 1, (3, 6, 1)),
         ("avg", (1, 1), 1, (1, 4, 2))]


def pool_graph(kind, kernel, stride, shape, signed):
    return chain_graph(IntType(signed, 5), shape, [
        {"op": f"{kind}pool2d", "name": "p0", "kernel": list(kernel), "stride": stride},
        {"op": "flatten", "name": "f1"}])


@pytest.mark.parametrize("kind, kernel, stride, shape", POOLS)
def test_non_square_pool_golden_and_hardware(kind, kernel, stride, shape):
    g = pool_graph(kind, kernel, stride, shape, signed=True)
    rng = np.random.default_rng(sum(kernel) + stride)
    x = rng.integers(-16, 16, (6,) + shape)
    x[0], x[1] = -16, 15
    want = golden.run(g, x)
    np.testing.assert_array_equal(want, reference_pool(x, kind, *kernel, stride)
                                  .reshape(len(x), -1))
    net = build_network(g)
    got, log = run_beats(net, x.reshape(-1, shape[-1]), len(x), idle=0.3, stall=0.3, seed=2)
    np.testing.assert_array_equal(got, want)
    assert not log["protocol"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="avg", kernel=3), "p7.*kernel=3.*power of two"),
    (dict(kind="max", kernel=0), "p7.*kernel=0"),
    (dict(kind="max", kernel=(1, 2)), "p7.*kernel="),
    (dict(kind="max", kernel=2, stride=0), "p7.*stride=0"),
    (dict(kind="min", kernel=2), "p7.*'min'"),
])
def test_unsupported_pool1d(kwargs, match):
    with pytest.raises(DdnhwError, match=match):
        QuantPool1d(name="p7", **kwargs)


def test_unsupported_pool1d_layers():
    with pytest.raises(DdnhwError, match="p1.*one-row"):
        QuantCNN([{"op": "conv", "out": 2, "kernel": 3}, {"op": "maxpool1d", "kernel": 2,
                                                          "name": "p1"},
                  {"op": "flatten"}, {"op": "linear", "out": 2}], (1, 6, 6))
    with pytest.raises(DdnhwError, match="p1.*padding"):
        QuantCNN([{"op": "conv1d", "out": 2, "kernel": 3}, {"op": "avgpool1d", "kernel": 2,
                                                            "padding": 1, "name": "p1"},
                  {"op": "flatten"}, {"op": "linear", "out": 2}], (1, 1, 16))


@pytest.mark.parametrize("kind, kernel, match", [
    ("avg", [1, 3], "'p0'.*'kernel' 1x3.*power of two"),
    ("avg", [3, 3], "'p0'.*'kernel' 3x3.*power of two"),
    ("max", [1, 0], "'p0'.*'kernel' must be"),
    ("max", [1, 2, 3], "'p0'.*'kernel' must be"),
    ("max", "2", "'p0'.*'kernel' must be"),
])
def test_ir_rejects_bad_pool_kernel(kind, kernel, match):
    g = pool_graph("max", (1, 2), 2, (1, 8, 2), signed=False)
    g.node("p0").op, g.node("p0").attrs["kernel"] = f"{kind}pool2d", kernel
    with pytest.raises(IRError, match=match):
        g.check()
