"""``ddnhw import``, ``ddnhw predict`` (floats and ``--codes``) and ``ddnhw export-qonnx`` on
a small QONNX model: outputs equal qonnx's executor; bad arguments and files exit 2 with one
line naming them."""
import numpy as np
import onnx
import pytest

from ddnhw import golden
from ddnhw.cli.main import main
from ddnhw.ir import load_graph

from . import brevitas_models as bm
from .qonnx_graphs import mlp_model
from .test_qonnx_semantics import _execute

N = 32


@pytest.fixture
def model(tmp_path):
    m = mlp_model(n=N, mode="HALF_UP", narrow=True)
    onnx.save(m, tmp_path / "m.onnx")
    assert main(["import", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "m.npz")]) == 0
    return m, tmp_path / "m.npz"


@pytest.mark.parametrize("cmd", ["import", "predict", "export-qonnx"])
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0 and cmd in capsys.readouterr().out


def test_import_prints_table(tmp_path, capsys):
    onnx.save(mlp_model(n=N), tmp_path / "m.onnx")
    assert main(["import", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "m.npz")]) == 0
    out = capsys.readouterr().out
    assert "dense" in out and "requant" in out and "half_even" in out and "exact" in out


def test_predict_floats_and_codes(model, tmp_path, capsys):
    m, npz = model
    x = bm.test_inputs((12,), N, 2.0 ** -4, -31, 31, seed=5)
    np.save(tmp_path / "x.npy", x)
    assert main(["predict", str(npz), "--inputs", str(tmp_path / "x.npy"), "--out",
                 str(tmp_path / "y.npy")]) == 0
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, _execute(m, x))
    g = load_graph(npz)
    codes = golden.quantize_input(g, x)
    np.save(tmp_path / "c.npy", codes)
    assert main(["predict", str(npz), "--inputs", str(tmp_path / "c.npy"), "--out",
                 str(tmp_path / "yc.npy"), "--codes"]) == 0
    yc = np.load(tmp_path / "yc.npy")
    assert yc.dtype == np.int64
    np.testing.assert_array_equal(yc * np.float32(g.meta["output_scale"][0]), y)


def test_bad_arguments(model, tmp_path, capsys):
    _, npz = model
    assert main(["predict", str(npz), "--inputs", "x.csv", "--out", str(tmp_path / "y.npy")]) == 2
    assert "--inputs" in capsys.readouterr().err
    np.save(tmp_path / "f.npy", np.zeros((2, 12), np.float32))
    assert main(["predict", str(npz), "--inputs", str(tmp_path / "f.npy"), "--out",
                 str(tmp_path / "y.npy"), "--codes"]) == 2
    assert "must be integers" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), np.float32))
    assert main(["predict", str(npz), "--inputs", str(tmp_path / "bad.npy"), "--out",
                 str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "shape" in err
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x01garbage")
    assert main(["import", str(tmp_path / "junk.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "junk.onnx" in err
    assert main(["cosim", str(npz)]) == 2
    assert "imported model has no test split" in capsys.readouterr().err


def test_export_cli(model, tmp_path):
    m, npz = model
    assert main(["export-qonnx", str(npz), "--out", str(tmp_path / "back.onnx")]) == 0
    x = bm.test_inputs((12,), 1, 2.0 ** -4, -31, 31, seed=6)
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    back = ModelWrapper(str(tmp_path / "back.onnx")).transform(InferShapes())
    np.testing.assert_array_equal(execute_onnx(back, {"global_in": x})["global_out"],
                                  golden.predict(load_graph(npz), x))
