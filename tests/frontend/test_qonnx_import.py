"""Brevitas models exported as QONNX, imported into the IR: the golden model == qonnx's
execute_onnx == Brevitas itself, exactly, on inputs with saturating values and exact ties."""
import numpy as np
import pytest

from ddnhw import golden
from ddnhw.frontend import qonnx as fq
from ddnhw.ir import load_graph, save_graph

from . import brevitas_models as bm
from .conftest import brevitas_forward, execute_qonnx

N = 256


def _inputs(g, seed=0):
    q = g.meta["input_quant"]
    if q["rounding"] == "BIPOLAR":
        rng = np.random.default_rng(seed)
        shape = tuple(q["shape"])
        x = rng.standard_normal((N,) + shape).astype(np.float32)
        x[: N // 4] = 0.0          # the bipolar boundary: 0 -> +1
        return x
    return bm.test_inputs(q["shape"], N, q["scale"], q["lo"], q["hi"], seed)


@pytest.mark.parametrize("name", list(bm.MODELS) + ["cnn:dynamo"])
def test_import_exact(name, exported, tmp_path):
    path, model = exported(name)
    g = fq.load(path)
    x = _inputs(g)
    got = golden.predict(g, x)
    want = execute_qonnx(path, x)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, brevitas_forward(model, x))
    # the model file round trip keeps meta (input quantizer, output scale)
    save_graph(g, tmp_path / "m.npz")
    np.testing.assert_array_equal(golden.predict(load_graph(tmp_path / "m.npz"), x), got)


def test_inner_ties_are_exercised(exported):
    # the comparison above is only meaningful if requantizers meet exact ties: count them
    path, _ = exported("mlp_w8a8")
    g = fq.load(path)
    env = golden.run_all(g, golden.quantize_input(g, _inputs(g)))
    ties = 0
    for n in g.nodes:
        if n.op == "requant" and int(n.attrs["shift"][0]) > 0:
            s = int(n.attrs["shift"][0])
            acc = env[n.inputs[0]] * n.attrs["multiplier"]
            ties += int(np.sum(acc % (1 << s) == (1 << (s - 1))))
    assert ties > 0


def test_layer_table_and_types(exported):
    path, _ = exported("cnn")
    g = fq.load(path)
    ops = [n.op for n in g.nodes]
    assert ops.count("conv2d") == 3 and "maxpool2d" in ops and "flatten" in ops
    assert g.input.shape == (10, 10, 2)          # NCHW model, NHWC IR
    table = fq.layer_table(g)
    assert "conv2d" in table and "groups 4" in table
