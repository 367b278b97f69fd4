import numpy as np
import pytest

from ddnhw import DdnhwError, golden
from ddnhw.ir import IntType, IRError, load_graph, save_graph
from ddnhw.ir.ops import dense_acc_type
from ddnhw.ir.testing import random_mlp


def check_roundtrip(tmp_path, g):
    p = tmp_path / "m.npz"
    save_graph(g, p)
    g2 = load_graph(p)
    x = np.random.default_rng(0).integers(g.input.dtype.min, g.input.dtype.max + 1,
                                          (50,) + g.input.shape)
    np.testing.assert_array_equal(golden.run(g, x), golden.run(g2, x))
    assert [str(t.dtype) for t in g.tensors.values()] == [str(t.dtype) for t in g2.tensors.values()]


@pytest.mark.parametrize("seed", range(3))
def test_roundtrip(tmp_path, seed):
    check_roundtrip(tmp_path, random_mlp(seed))


@pytest.mark.parametrize("seed", range(5))
def test_accumulator_type_is_tight_and_safe(seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(-7, 8, (6, 20))
    b = rng.integers(-50, 50, 6)
    t = dense_acc_type(w, b, IntType(False, 4))
    # worst-case inputs per output reach the bound exactly
    hi_x = np.where(w > 0, 15, 0)
    lo_x = np.where(w < 0, 15, 0)
    his = (w * hi_x).sum(1) + b
    los = (w * lo_x).sum(1) + b
    assert t.min <= los.min() and his.max() <= t.max
    narrower = IntType(t.signed, t.bits - 1) if t.bits > 2 else None
    if narrower is not None:
        assert not narrower.contains(int(los.min()), int(his.max()))


@pytest.mark.parametrize("content,msg", [
    (b"not a zip", "not a ddnhw model file"),
    (b"", "not a ddnhw model file"),
])
def test_malformed_files_name_the_file(tmp_path, content, msg):
    p = tmp_path / "bad.npz"
    p.write_bytes(content)
    with pytest.raises(IRError, match=msg) as e:
        load_graph(p)
    assert "bad.npz" in str(e.value)


def test_truncated_file(tmp_path):
    p = tmp_path / "m.npz"
    save_graph(random_mlp(0), p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(IRError, match="m.npz"):
        load_graph(p)


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(DdnhwError, match="does not exist"):
        load_graph(tmp_path / "nope.npz")


def test_too_narrow_output_type_is_rejected():
    g = random_mlp(0)
    acc = g.tensors["fc0_acc"]
    acc.dtype = IntType(True, 4)
    with pytest.raises(IRError, match="fc0"):
        g.check()


def test_golden_rejects_bad_inputs():
    g = random_mlp(0, sizes=(4, 3, 2))
    with pytest.raises(DdnhwError, match="shape"):
        golden.run(g, np.zeros((2, 5), np.int64))
    with pytest.raises(DdnhwError, match="out of range"):
        golden.run(g, np.full((2, 4), 16))
    with pytest.raises(DdnhwError, match="integers"):
        golden.run(g, np.zeros((2, 4), np.float32))
