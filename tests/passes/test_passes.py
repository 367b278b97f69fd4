"""The passes: each writes its ``hw`` annotation without touching its input graph, reaches a fixed
point (a second run changes nothing), and the annotations survive save/load."""
import json

import numpy as np
import pytest

from ddnhw.ir import load_graph, save_graph
from ddnhw.ir.testing import random_mlp, random_residual_cnn
from ddnhw.lower import build_network
from ddnhw.lower.network import graph_sha256
from ddnhw.passes import (FifoSizing, RequantFusion, SetFolding, SkipFifoSizing, XnorInference,
                          hw_of, lowering_passes, run_passes)
from ddnhw.passes.base import PassError, copy_graph

FAST_THEN_SLOW = {"fc0": None, "fc1": (1, 2)}


def annotations(graph):
    return {n.name: hw_of(n) for n in graph.nodes if hw_of(n)}


def check_pass(p, graph):
    """``p`` annotates a copy (the input is unchanged) and a second run changes nothing."""
    before = json.dumps(graph.to_json(), sort_keys=True)
    g1, changed = p.apply(graph)
    assert json.dumps(graph.to_json(), sort_keys=True) == before
    g2, again = p.apply(g1)
    assert not again and annotations(g2) == annotations(g1)
    return g1, changed


def test_requant_fusion_marks_folded_layers_only():
    g = random_mlp(31, sizes=(8, 6, 4, 3))
    g, _ = SetFolding({"fc0": (2, 4), "fc1": None, "fc2": (1, 1)}).apply(g)
    g, changed = check_pass(RequantFusion(), g)
    assert changed
    assert annotations(g)["fc0"] == {"fold": [2, 4], "fuse_requant": "fc0_rq"}
    assert "fuse_requant" not in hw_of(g.node("fc1"))      # unrolled
    assert "fuse_requant" not in hw_of(g.node("fc2"))      # its output is the graph's
    g, changed = check_pass(RequantFusion(enabled=False), g)
    assert changed and "fuse_requant" not in hw_of(g.node("fc0"))


def test_set_folding_writes_every_foldable_node():
    g = random_mlp(31, sizes=(8, 6, 4, 3))
    g, _ = check_pass(SetFolding({"fc1": (2, 3)}), g)
    assert [hw_of(n).get("fold", "absent") for n in g.nodes] == [
        None, "absent", [2, 3], "absent", None]
    with pytest.raises(PassError, match="'fc0_rq', which is not a foldable layer"):
        SetFolding({"fc0_rq": (1, 1)}).apply(g)


def test_fifo_sizing_and_fixed_point():
    g = random_mlp(31, sizes=(8, 6, 4, 3))
    g, _ = SetFolding(FAST_THEN_SLOW).apply(g)
    g, changed = run_passes(g, lowering_passes())
    assert changed
    ann = annotations(g)
    assert ann["fc0_rq"]["fifo_after"] >= 2 and "fuse_requant" in ann["fc1"]
    g2, changed = run_passes(g, lowering_passes())
    assert not changed and annotations(g2) == ann
    g3, changed = check_pass(FifoSizing("none"), g)
    assert changed and not any("fifo_after" in a for a in annotations(g3).values())


def test_skip_fifo_sizing():
    g = random_residual_cnn(0, in_shape=(5, 5, 2))
    g1, changed = check_pass(SkipFifoSizing(), g)
    assert changed and hw_of(g1.node("res_add"))["skip_fifo"] >= 14     # the branch's lead
    g2, _ = check_pass(SkipFifoSizing({"res_add": 0}), g1)
    assert hw_of(g2.node("res_add"))["skip_fifo"] == 0
    with pytest.raises(PassError, match="skip_fifos names 'nope'"):
        SkipFifoSizing({"nope": 3}).apply(g)


def test_xnor_inference_follows_option():
    from tests.lower.test_xnor_lowering import _binary_graph
    g, _ = _binary_graph(0)
    g1, changed = check_pass(XnorInference(), g)
    assert changed and any(hw_of(n).get("xnor") for n in g1.nodes)
    g2, changed = check_pass(XnorInference(enabled=False), g1)
    assert changed and not annotations(g2)


def test_annotations_saved_and_build_the_same_circuit(tmp_path):
    from amaranth.back import verilog
    g = random_mlp(31, sizes=(8, 6, 4, 3))
    ann, _ = run_passes(g, [SetFolding(FAST_THEN_SLOW), *lowering_passes()])
    save_graph(ann, tmp_path / "m.npz")
    loaded = load_graph(tmp_path / "m.npz")
    assert annotations(loaded) == annotations(ann)
    assert graph_sha256(loaded) == graph_sha256(ann) != graph_sha256(g)
    a = verilog.convert(build_network(loaded), name="top", emit_src=False)
    b = verilog.convert(build_network(g, folding=FAST_THEN_SLOW), name="top", emit_src=False)
    assert a == b


def test_copy_graph_shares_arrays_not_annotations():
    g = random_mlp(0, sizes=(4, 3))
    c = copy_graph(g)
    c.nodes[0].attrs["hw"] = {"fold": [1, 1]}
    assert "hw" not in g.nodes[0].attrs
    assert c.nodes[0].attrs["weight"] is g.nodes[0].attrs["weight"]
    assert isinstance(c.nodes[0].attrs["weight"], np.ndarray)
