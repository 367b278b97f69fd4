"""DWN-style training of lookup-table networks: the EFD gradient by its definition, integer
mode PyTorch == golden on whole data sets and random inputs, the hostile settings."""
import numpy as np
import pytest
import torch

from ddnhw import DdnhwError, golden
from ddnhw.datasets import load_digits_split
from ddnhw.ir import IntType
from ddnhw.quant.lut import (LutConfig, LutLayer, LutNet, export_lut, input_codes,
                             random_connections, thermometer_thresholds, train_lut)


def test_efd_gradient_is_its_definition():
    rng = np.random.default_rng(0)
    m, k = 5, 3
    layer = LutLayer(m, 2, k, rng)
    x = torch.tensor(rng.integers(0, 2, (4, m)), dtype=torch.float32, requires_grad=True)
    g = torch.tensor(rng.normal(size=(4, 2)), dtype=torch.float32)
    y = layer(x)
    (y * g).sum().backward()
    table = (layer.table.detach() > 0).numpy().astype(float)
    conn = layer.inputs.numpy()
    want_x = np.zeros((4, m))
    want_t = np.zeros((2, 1 << k))
    for b in range(4):
        for j in range(2):
            bits = [int(x[b, c]) for c in conn[j]]
            a = sum(v << i for i, v in enumerate(bits))
            assert y[b, j] == table[j, a]
            want_t[j, a] += g[b, j]
            for i in range(k):
                d = 0.0
                for a2 in range(1 << k):
                    ham = sum(((a2 >> q) & 1) != bits[q] for q in range(k) if q != i)
                    d += (1 if (a2 >> i) & 1 else -1) * table[j, a2] / (1 + ham)
                want_x[b, conn[j, i]] += float(g[b, j]) * d
    np.testing.assert_allclose(x.grad.numpy(), want_x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.table.grad.numpy(), want_t, rtol=1e-5, atol=1e-6)


def test_connections_distinct_and_balanced():
    idx = random_connections(20, 30, 6, np.random.default_rng(1))
    assert all(len(set(r)) == 6 for r in idx)
    counts = np.bincount(idx.ravel(), minlength=20)
    assert counts.max() - counts.min() <= 2


def test_thresholds():
    t = IntType(False, 4, 4)
    codes = np.random.default_rng(0).integers(0, 16, (100, 3))
    th = thermometer_thresholds(codes, 3, t)
    assert th.shape == (3, 3) and np.all(np.diff(th, axis=1) >= 0)
    assert th.min() >= 1 and th.max() <= 15
    assert thermometer_thresholds(codes, 3, t, "uniform").tolist() == [[4, 8, 12]] * 3
    with pytest.raises(DdnhwError, match="encoding 'gray'"):
        thermometer_thresholds(codes, 3, t, "gray")


@pytest.mark.parametrize("layers, match", [
    (((8, 7),), r"'lut0'.*fan-in k = 7 is out of range.*2 to 6"),
    (((8, 1),), r"'lut0'.*fan-in k = 1"),
    (((8, 4), (3, 2)), r"'lut1'.*3 neurons cannot make 4 class groups"),
    ((), "at least one table layer"),
])
def test_hostile_settings(layers, match):
    with pytest.raises(DdnhwError, match=match):
        LutNet(np.ones((4, 2), np.int64), IntType(False, 4, 4), layers, 4)


def test_int_mode_equals_golden_on_whole_data_set():
    xtr, ytr, xte, yte = load_digits_split()
    r = train_lut(xtr, ytr, xte, yte, LutConfig(layers=((40, 4), (30, 5)), levels=2, epochs=1,
                                                seed=3))
    assert r.accuracy > 0.2                       # it learns something in 1 epoch
    g = export_lut(r.model, meta={"example": "lut"})
    x = input_codes(np.concatenate([xtr, xte]), g.input.dtype)
    t = g.input.dtype
    x = np.concatenate([x, np.random.default_rng(0).integers(t.min, t.max + 1, (500, 64))])
    want = golden.run(g, x)
    np.testing.assert_array_equal(r.model.int_forward(torch.tensor(x)).numpy(), want)
    # and the float forward's bits are the integer ones (scores = popcount / tau)
    with torch.no_grad():
        np.testing.assert_allclose(r.model(torch.tensor(x, dtype=torch.float32)).numpy()
                                   * r.model.tau, want)
    assert r.accuracy == pytest.approx(np.mean(golden.classify(g, x[len(xtr):len(xtr) + len(xte)])
                                               == yte))
