"""``export-qonnx``: qonnx's execute_onnx on the exported file == the golden model, exactly,
for imported Brevitas models (float in, float out) and for ddnhw's own graphs (MLPs, CNNs with
max/average pooling and depthwise convolution, residual CNNs, the demo model); and
import(export(graph)) computes the same graph with the same layers."""
from pathlib import Path

import numpy as np
import pytest

from ddnhw import golden
from ddnhw.cli.main import main
from ddnhw.frontend import qonnx as fq
from ddnhw.frontend import qonnx_export as qe
from ddnhw.ir import load_graph
from ddnhw.ir.testing import random_cnn, random_mlp, random_residual_cnn

from . import brevitas_models as bm
from .conftest import execute_qonnx

ROOT = Path(__file__).resolve().parents[2]


def _run_exported(path, x):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    m = ModelWrapper(str(path)).transform(InferShapes())
    return execute_onnx(m, {"global_in": x})["global_out"]


def _grid_inputs(g, n, seed):
    """Real inputs exactly on the input grid (codes * 2**-frac), NCHW for images, and codes."""
    codes = np.random.default_rng(seed).integers(g.input.dtype.min, g.input.dtype.max + 1,
                                                 (n,) + g.input.shape)
    codes[0], codes[1] = g.input.dtype.min, g.input.dtype.max
    x = (codes * 2.0 ** -g.input.dtype.frac).astype(np.float32)
    return (x.transpose(0, 3, 1, 2) if x.ndim == 4 else x), codes


NATIVE = {
    "mlp": lambda: random_mlp(1, sizes=(12, 8, 5), in_bits=5, w_bits=4, a_bits=4),
    "cnn_max": lambda: random_cnn(2, pool="max"),
    "cnn_avg_depthwise": lambda: random_cnn(3, pool="avg", depthwise=True),
    "residual": lambda: random_residual_cnn(4),
    "digits_demo": lambda: load_graph(ROOT / "examples" / "digits_mlp.npz"),
}


@pytest.mark.parametrize("name", list(NATIVE))
def test_export_native_exact(name, tmp_path):
    g = NATIVE[name]()
    x, codes = _grid_inputs(g, 24, seed=len(name))
    qe.save(g, tmp_path / "m.onnx", batch=len(x))
    got = _run_exported(tmp_path / "m.onnx", x)
    want = golden.run(g, codes) * 2.0 ** -g.output.dtype.frac
    np.testing.assert_array_equal(got.reshape(want.shape), want.astype(np.float32))


@pytest.mark.parametrize("name", ["mlp_w4a4_perchannel_floatbias", "cnn", "residual_gap",
                                  "bipolar"])
def test_export_imported_float_in_float_out(name, exported, tmp_path):
    path, _ = exported(name)
    g = fq.load(path)
    q = g.meta["input_quant"]
    if q["rounding"] == "BIPOLAR":
        x = np.random.default_rng(0).standard_normal((20,) + tuple(q["shape"])).astype(np.float32)
    else:
        x = bm.test_inputs(q["shape"], 20, q["scale"], q["lo"], q["hi"])
    if name == "cnn":      # the command's file (batch 1)
        out = tmp_path / "m.onnx"
        assert main(["export-qonnx", str(_save(g, tmp_path)), "--out", str(out)]) == 0
        np.testing.assert_array_equal(_run_exported(out, x[:1]), golden.predict(g, x[:1]))
    qe.save(g, tmp_path / "b.onnx", batch=len(x))
    np.testing.assert_array_equal(_run_exported(tmp_path / "b.onnx", x), golden.predict(g, x))
    np.testing.assert_array_equal(_run_exported(tmp_path / "b.onnx", x), execute_qonnx(path, x))


def _save(g, tmp_path):
    from ddnhw.ir import save_graph
    save_graph(g, tmp_path / "m.npz")
    return tmp_path / "m.npz"


def _same_graph(a, b):
    """Same ops in order, same MAC weights and biases (up to a common power-of-two factor a
    requantizer absorbs), same requant ratios, clips and rounding."""
    assert [n.op for n in a.nodes] == [n.op for n in b.nodes]
    for na, nb in zip(a.nodes, b.nodes):
        assert a.tensors[na.outputs[0]].shape == b.tensors[nb.outputs[0]].shape
        if na.op in ("dense", "conv2d"):
            np.testing.assert_array_equal(na.attrs["weight"], nb.attrs["weight"])
            np.testing.assert_array_equal(na.attrs["bias"], nb.attrs["bias"])
        if na.op == "requant":
            for k in ("lo", "hi"):
                assert int(na.attrs[k]) == int(nb.attrs[k])
            assert na.attrs.get("rounding", "half_up") == nb.attrs.get("rounding", "half_up")
            ra = na.attrs["multiplier"] / 2.0 ** na.attrs["shift"]
            rb = nb.attrs["multiplier"] / 2.0 ** nb.attrs["shift"]
            np.testing.assert_array_equal(ra, rb)


@pytest.mark.parametrize("name", ["mlp", "cnn_max", "residual", "digits_demo"])
def test_round_trip_native(name, tmp_path):
    g = NATIVE[name]()
    qe.save(g, tmp_path / "m.onnx")
    back = fq.load(tmp_path / "m.onnx")
    _same_graph(g, back)
    _, codes = _grid_inputs(g, 50, seed=7)
    np.testing.assert_array_equal(golden.run(back, codes), golden.run(g, codes))


@pytest.mark.parametrize("name", ["mlp_w8a8", "cnn", "residual_gap"])
def test_round_trip_imported(name, exported, tmp_path):
    path, _ = exported(name)
    g = fq.load(path)
    qe.save(g, tmp_path / "m.onnx")
    back = fq.load(tmp_path / "m.onnx")
    _same_graph(g, back)
    q = g.meta["input_quant"]
    x = bm.test_inputs(q["shape"], 40, q["scale"], q["lo"], q["hi"])
    np.testing.assert_array_equal(golden.predict(back, x), golden.predict(g, x))


def test_export_refuses_recurrent(tmp_path):
    from ddnhw.ir.testing import random_recurrent
    with pytest.raises(qe.QonnxExportError, match=r"node '.*' \(gru\): no QONNX form"):
        qe.save(random_recurrent(0, op="gru"), tmp_path / "m.onnx")
