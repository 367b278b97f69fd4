"""Every QONNX quantizer variant (rounding mode, bit width, signed, narrow) exact against
qonnx's executor; hostile files give one clear error."""
import numpy as np
import onnx
import pytest

from ddnhw import golden
from ddnhw.frontend import qonnx as fq

from . import brevitas_models as bm
from .qonnx_graphs import mlp_model

N = 64
MODES = sorted(fq.ROUNDING)


def _execute(model, x):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    m = ModelWrapper(model).transform(InferShapes())
    return execute_onnx(m, {"x": x})["y"]


def _check(model, tmp_path, in_scale=2.0 ** -4, lo=-32, hi=31, seeds=(0, 1, 2)):
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    g = fq.load(path)
    for seed in seeds:
        x = bm.test_inputs((12,), N, in_scale, lo, hi, seed)
        np.testing.assert_array_equal(golden.predict(g, x), _execute(model, x))
    return g


@pytest.mark.parametrize("k,mode", list(enumerate(MODES)))
def test_rounding_modes_bits_signed_narrow(k, mode, tmp_path):
    bits = (2, 4, 8)[k % 3]
    narrow = bool(k % 2)
    signed = bool(k // 2 % 2)
    model = mlp_model(n=N, in_bits=6, w_bits=bits, a_bits=bits, mode=mode, narrow=narrow,
                      act_signed=signed, relu=not signed, seed=k)
    g = _check(model, tmp_path, lo=-32 + narrow)
    rq = [n for n in g.nodes if n.op == "requant"]
    assert rq and rq[0].attrs["rounding"] == fq.ROUNDING[mode]
    lo_expected = (-(1 << (bits - 1)) + narrow) if signed else 0
    assert int(rq[0].attrs["lo"]) == lo_expected


def test_scale_ratio_with_odd_multiplier(tmp_path):
    # a = 3/8 of a power of two: an exact multiplier 3 and a shift
    model = mlp_model(n=N, a_scale=0.25, w_scale=0.375,
                      mode="HALF_UP")
    g = _check(model, tmp_path)
    assert int(g.node("qa").attrs["multiplier"][0]) == 3


def test_inexact_scale_is_an_error_unless_approx(tmp_path):
    model = mlp_model(n=N, a_scale=0.3)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    with pytest.raises(fq.QonnxImportError, match=r"node 'qa'.*not an integer times a power "
                                                  r"of two.*--approx"):
        fq.load(path)
    g = fq.load(path, approx=True)
    assert g.meta["approximations"] and g.meta["approximations"][0]["node"] == "qa"
    x = bm.test_inputs((12,), N, 2.0 ** -4, -32, 31, 0)
    # approximate: close to, not necessarily equal to, the float model
    np.testing.assert_allclose(golden.predict(g, x), _execute(model, x), atol=0.3 * 4 * 12)


def test_nonzero_zero_point(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(mlp_model(n=N, zp=1.0), path)
    with pytest.raises(fq.QonnxImportError, match=r"node 'qa' \(Quant\): non-zero zero point"):
        fq.load(path)


def test_unsupported_op(tmp_path):
    from onnx import helper

    def sigmoid(nodes, inits):
        nodes[-1] = helper.make_node("MatMul", ["qa", "qw2"], ["y0"], name="mm2")
        nodes.append(helper.make_node("Sigmoid", ["y0"], ["y"], name="sig"))
        return nodes, inits
    path = tmp_path / "m.onnx"
    onnx.save(mlp_model(n=N, extra=sigmoid), path)
    with pytest.raises(fq.QonnxImportError, match=r"node 'sig' \(Sigmoid\): unsupported op "
                                                  r"Sigmoid"):
        fq.load(path)


def test_hostile_files(tmp_path):
    good = tmp_path / "good.onnx"
    onnx.save(mlp_model(n=N), good)
    data = good.read_bytes()
    cases = {"not_onnx.onnx": b"hello, this is not a protobuf \x00\xff" * 10,
             "truncated.onnx": data[: len(data) // 2],
             "empty.onnx": b""}
    for name, blob in cases.items():
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(fq.QonnxImportError, match=rf"{name}: (not an ONNX model|malformed)"):
            fq.load(p)
    with pytest.raises(fq.QonnxImportError, match="does not exist"):
        fq.load(tmp_path / "missing.onnx")
    # opset mismatch: a future default opset, and a qonnx op without its domain declared
    m = mlp_model(n=N, opset=99)
    onnx.save(m, tmp_path / "future.onnx")
    with pytest.raises(fq.QonnxImportError, match=r"opset mismatch: .*opset 99"):
        fq.load(tmp_path / "future.onnx")
    m = mlp_model(n=N)
    del m.opset_import[1]
    onnx.save(m, tmp_path / "nodomain.onnx")
    with pytest.raises(fq.QonnxImportError, match=r"opset mismatch: .*qonnx.custom_op.general"):
        fq.load(tmp_path / "nodomain.onnx")


def test_float_input_without_quant(tmp_path):
    from onnx import helper

    def no_input_quant(nodes, inits):
        nodes = [n for n in nodes if n.name != "qx"]
        nodes = [helper.make_node("MatMul", ["x", "qw1"], ["mm1"], name="mm1")
                 if n.name == "mm1" else n for n in nodes]
        return nodes, inits
    path = tmp_path / "m.onnx"
    onnx.save(mlp_model(n=N, extra=no_input_quant), path)
    with pytest.raises(fq.QonnxImportError, match="used before any Quant"):
        fq.load(path)


def _multithreshold(thresholds, out_scale=1.0, out_bias=0.0):
    from onnx import helper, numpy_helper

    def add(nodes, inits):
        nodes = [n for n in nodes if n.name not in ("bias1", "relu1", "qa")]
        inits.append(numpy_helper.from_array(thresholds.astype(np.float32), "thr"))
        nodes.insert(-1, helper.make_node("MultiThreshold", ["mm1", "thr"], ["qa"], name="mt",
                                          domain="qonnx.custom_op.general", out_dtype="UINT4",
                                          out_scale=out_scale, out_bias=out_bias))
        return nodes, inits
    return add


@pytest.mark.parametrize("steps,out_bias,clip", [((3, 4), 0.0, (0, 7)),
                                                  ((4, 2), -2.0, (-4, 3))])
def test_multithreshold_uniform(steps, out_bias, clip, tmp_path):
    # FINN's streamlined form: thresholds on the accumulator, equally spaced per channel
    # (steps of 3 or 4 accumulator units: not a power of two, and one), between accumulator
    # values and on them, an unsigned and a signed (out_bias) count
    rng = np.random.default_rng(0)
    step = np.where(np.arange(8) % 2, *steps) * 2.0 ** -7       # accumulator scale 2**-7
    start = rng.integers(-20, 20, 8) * 2.0 ** -7 + np.where(np.arange(8) % 3, 2.0 ** -8, 0)
    thr = start[:, None] + step[:, None] * np.arange(7)[None, :]
    model = mlp_model(n=N, extra=_multithreshold(thr, out_scale=0.5, out_bias=out_bias))
    g = _check(model, tmp_path)
    rq = g.node("mt")
    assert rq.op == "requant" and rq.attrs["rounding"] == "floor"
    assert (int(rq.attrs["lo"]), int(rq.attrs["hi"])) == clip


def test_multithreshold_uneven_is_an_error(tmp_path):
    thr = np.tile(np.array([0.0, 0.1, 0.5, 0.6]), (8, 1))
    path = tmp_path / "m.onnx"
    onnx.save(mlp_model(n=N, extra=_multithreshold(thr)), path)
    with pytest.raises(fq.QonnxImportError, match=r"node 'mt' \(MultiThreshold\): channel 0: "
                                                  r"the thresholds .* not equally spaced"):
        fq.load(path)
