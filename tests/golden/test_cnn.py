"""Golden conv2d / pooling / flatten against an independent reference (PyTorch in float64,
exact for these small integers), and IR checks of the image ops."""
import numpy as np
import pytest
import torch

from ddnhw import golden
from ddnhw.fixedpoint import round_shift
from ddnhw.ir import IntType, IRError, chain_graph, load_graph, save_graph
from ddnhw.ir.testing import random_cnn


def reference(g, x):
    """NCHW PyTorch evaluation of a chain graph (float64)."""
    h = torch.as_tensor(x, dtype=torch.float64).permute(0, 3, 1, 2)
    for n in g.nodes:
        a = n.attrs
        if n.op == "conv2d":
            w = torch.as_tensor(a["weight"], dtype=torch.float64).permute(0, 3, 1, 2)
            h = torch.nn.functional.conv2d(h, w, torch.as_tensor(a["bias"], dtype=torch.float64),
                                           stride=a["stride"], padding=a["padding"],
                                           groups=a["groups"])
        elif n.op == "requant":
            c = h.permute(0, 2, 3, 1).numpy().astype(np.int64)
            c = np.clip(round_shift(c * a["multiplier"], a["shift"]), a["lo"], a["hi"])
            h = torch.as_tensor(c, dtype=torch.float64).permute(0, 3, 1, 2)
        elif n.op == "maxpool2d":
            h = torch.nn.functional.max_pool2d(h, a["kernel"], a["stride"])
        elif n.op == "avgpool2d":
            k = a["kernel"]
            s = torch.nn.functional.avg_pool2d(h, k, a["stride"]) * k * k
            h = torch.as_tensor(round_shift(s.round().numpy().astype(np.int64),
                                            (k * k).bit_length() - 1), dtype=torch.float64)
        elif n.op == "flatten":
            h = h.permute(0, 2, 3, 1).reshape(len(h), -1)
        elif n.op == "dense":
            h = h @ torch.as_tensor(a["weight"], dtype=torch.float64).T + \
                torch.as_tensor(a["bias"], dtype=torch.float64)
    return h.numpy().astype(np.int64)


CASES = [dict(), dict(stride=2), dict(padding=0), dict(depthwise=True),
         dict(pool="avg"), dict(pool=None, kernel=1, padding=0),
         dict(in_shape=(7, 5, 3), stride=2, padding=1, pool=None, kernel=2),
         dict(in_shape=(8, 8, 1), channels=4, pool="avg", pool_kernel=4),
         dict(in_shape=(5, 6, 2), kernel=3, padding=2, depthwise=True, pool="max")]


@pytest.mark.parametrize("seed", range(len(CASES)))
def test_golden_matches_reference(seed, tmp_path):
    g = random_cnn(seed, **CASES[seed])
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 16, (20,) + g.input.shape)
    y = golden.run(g, x)
    np.testing.assert_array_equal(y, reference(g, x))
    save_graph(g, tmp_path / "m.npz")
    np.testing.assert_array_equal(golden.run(load_graph(tmp_path / "m.npz"), x), y)


def test_accumulator_bound_reached():
    g = random_cnn(3, padding=0)
    w = g.node("conv0").attrs["weight"]
    t = g.tensors["conv0_acc"].dtype
    x = np.zeros((1,) + g.input.shape, np.int64)
    x[0, :3, :3] = np.where(w[0] > 0, 15, 0)      # the first window maximizes channel 0
    y = golden.run_all(g, x)["conv0_acc"][0, 0, 0, 0]
    assert y == (w[0] * x[0, :3, :3]).sum() + g.node("conv0").attrs["bias"][0] <= t.max


def test_avgpool_needs_power_of_two():
    with pytest.raises(IRError, match="pool0.*power of two"):
        chain_graph(IntType(False, 4), (6, 6, 1), [{"op": "avgpool2d", "name": "pool0",
                                                   "kernel": 3}])


def test_conv_shape_errors():
    with pytest.raises(IRError, match="c1.*groups"):
        chain_graph(IntType(False, 4), (4, 4, 3), [{"op": "conv2d", "name": "c1", "groups": 2,
                                                   "weight": np.ones((2, 3, 3, 1), np.int64),
                                                   "bias": np.zeros(2, np.int64)}])
    with pytest.raises(IRError, match="does not fit"):
        chain_graph(IntType(False, 4), (2, 2, 1), [{"op": "maxpool2d", "kernel": 3}])
