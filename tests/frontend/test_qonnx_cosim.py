"""Imported Brevitas models in Verilator: the RTL == the golden model under random idle cycles
and backpressure, through the user's commands (``ddnhw import`` then ``ddnhw cosim --vectors
x.npy`` with float inputs), and through the flow API: a folded MLP and the CNN (depthwise conv,
Trunc after an average pool), with QONNX's half-even rounding in the requantizers."""
import numpy as np
import pytest

from ddnhw import flow, golden
from ddnhw.cli.main import main
from ddnhw.frontend import qonnx as fq
from ddnhw.ir import load_graph

from . import brevitas_models as bm
from ..sim.test_runner import _fast_verilator_builds, cache_dir  # noqa: F401

pytestmark = pytest.mark.cocotb


def test_cli_import_cosim_mlp(exported, tmp_path, capsys, cache_dir):  # noqa: F811
    path, _ = exported("mlp_w2a2")
    model = tmp_path / "model.npz"
    assert main(["import", str(path), "--out", str(model)]) == 0
    g = load_graph(model)
    q = g.meta["input_quant"]
    x = bm.test_inputs(q["shape"], 300, q["scale"], q["lo"], q["hi"], seed=3)
    np.save(tmp_path / "x.npy", x)
    capsys.readouterr()
    assert main(["cosim", str(model), "--vectors", str(tmp_path / "x.npy"), "--out",
                 str(tmp_path / "rtl"), "--idle", "0.3", "--stall", "0.3"]) == 0
    assert "300 vectors, 0 mismatches" in capsys.readouterr().out
    # and the same vectors as integer codes
    np.save(tmp_path / "codes.npy", golden.quantize_input(g, x))
    assert main(["cosim", str(model), "--vectors", str(tmp_path / "codes.npy"), "--rtl",
                 str(tmp_path / "rtl")]) == 0


@pytest.mark.parametrize("name", ["mlp_w2a2", "cnn"])
def test_cosim(name, exported, tmp_path, cache_dir):  # noqa: F811
    # the MLP folded (FoldedDense with the half-even requantizer fused into its PE lanes),
    # the CNN unrolled (sliding windows, depthwise conv, the Trunc after the average pool)
    path, _ = exported(name)
    g = fq.load(path)
    q = g.meta["input_quant"]
    x = golden.quantize_input(g, bm.test_inputs(q["shape"], 60, q["scale"], q["lo"], q["hi"]))
    if name == "mlp_w2a2":
        fc = [n.name for n in g.nodes if n.op == "dense"]
        kw = {"folding": {fc[0]: (4, 8), fc[1]: (2, 4)}}
    else:
        kw = {"folding": "none"}
    man = flow.generate(g, tmp_path / "rtl", **kw)
    assert any(layer.get("folded") for layer in man["layers"]) == (name == "mlp_w2a2")
    r = flow.cosim_check(flow.load_model(tmp_path / "rtl" / "model.npz"), x, tmp_path / "rtl",
                         idle=0.3, stall=0.3, seed=1, build_dir=cache_dir / f"qonnx_{name}")
    assert r["mismatches"] == 0, r["message"]
    np.testing.assert_array_equal(r["outputs"], golden.run(g, x))
