"""``flow.build`` folds the network for the board: unrolled when it fits, automatic folding when
it does not (or on request), and the report records the folding."""
import json

import pytest

from ddnhw import DdnhwError, flow
from ddnhw.ir import load_graph
from ddnhw.ir.testing import random_mlp
from ddnhw.lower import build_network

from .test_flow import MODEL


@pytest.fixture(scope="module")
def big():
    return random_mlp(0, sizes=(64, 64, 10))


def check_plan(plan, mode, family):
    assert plan["mode"] == mode and plan["family"] == family
    assert set(plan["limit"]) >= {"luts"}
    if mode == "unrolled":
        assert plan["folding"] is None
        assert plan["unrolled_estimate"]["luts"] <= plan["limit"]["luts"] / 0.85 * 0.95
    return plan


def test_demo_model_stays_unrolled_on_icebreaker():
    check_plan(flow.choose_folding(load_graph(MODEL), "icebreaker"), "unrolled", "ice40")


def test_big_model_unrolled_where_it_fits(big):
    check_plan(flow.choose_folding(big, "ulx3s-85f"), "unrolled", "ecp5")   # ~23k of 83k LUTs


@pytest.mark.parametrize("board,family,kw", [("icebreaker", "ice40", {}),
                                             ("ulx3s-85f", "ecp5", {"max_luts": 12000})])
def test_big_model_folds_to_fit(big, board, family, kw):
    plan = check_plan(flow.choose_folding(big, board, **kw), "auto", family)
    assert plan["unrolled_estimate"]["luts"] > plan["limit"]["luts"]
    assert plan["estimate"]["luts"] <= plan["limit"]["luts"]
    assert set(plan["folding"]) == {"fc0", "fc1"}
    assert plan["ii"] == build_network(big, folding=plan["folding"]).ii > 1


def test_target_ii_and_max_luts_force_folding():
    g = load_graph(MODEL)
    plan = check_plan(flow.choose_folding(g, "icebreaker", target_ii=32), "auto", "ice40")
    assert plan["ii"] <= 32 and plan["estimate"]["luts"] <= plan["limit"]["luts"]
    with pytest.raises(DdnhwError, match="nothing fits with target II 16"):
        flow.choose_folding(g, "icebreaker", target_ii=16)
    plan = check_plan(flow.choose_folding(g, "icebreaker", max_luts=3000), "auto", "ice40")
    assert plan["estimate"]["luts"] <= 3000 * 0.85 and plan["limit"]["luts"] == 2550
    assert any(v is not None for v in plan["folding"].values())


def test_none_and_explicit(big):
    plan = flow.choose_folding(big, "icebreaker", "none")
    assert plan["mode"] == "unrolled" and plan["folding"] is None
    plan = flow.choose_folding(big, "icebreaker", {"fc0": (4, 8)})
    assert plan == {"mode": "explicit", "folding": {"fc0": (4, 8)}, "family": "ice40"}


@pytest.mark.parametrize("kwargs,match", [
    ({"folding": "some"}, "unknown folding"),
    ({"folding": "none", "target_ii": 4}, "need folding='auto'"),
    ({"folding": {"fc0": (1, 1)}, "max_luts": 1000}, "only to folding='auto'"),
])
def test_bad_folding_arguments(big, kwargs, match):
    with pytest.raises(DdnhwError, match=match):
        flow.choose_folding(big, "icebreaker", **kwargs)


def test_cli_build_passes_folding(monkeypatch, tmp_path, capsys):
    from ddnhw.cli.main import main
    seen = {}

    def fake_build(graph, board, out, **kw):
        seen.update(kw, board=board)
        return {"luts": 1, "ffs": 2, "dsps": 0, "brams": 3, "fmax_mhz": 20.0, "clock_mhz": 12.0,
                "timing_met": True, "bitstream": "x.bin", "ii_cycles": 8, "latency_cycles": 12,
                "folding": {"mode": "auto", "layers": [
                    {"name": "fc0", "op": "dense", "folded": True, "pe": 2, "simd": 4, "ii": 8}]}}
    monkeypatch.setattr(flow, "build", fake_build)
    assert main(["build", str(MODEL), "--board", "icebreaker", "--out", str(tmp_path),
                 "--target-ii", "8", "--folding", "auto"]) == 0
    assert seen["folding"] == "auto" and seen["target_ii"] == 8 and seen["max_luts"] is None
    out = capsys.readouterr().out
    assert "fc0: pe 2 simd 4, II 8" in out and "folding auto: II 8" in out


@pytest.mark.synth
def test_build_folded_for_icebreaker_records_folding(tmp_path):
    g = random_mlp(1, sizes=(16, 12, 4))
    rep = flow.build(g, "icebreaker", tmp_path, top="measure", max_luts=1500)
    fold = rep["folding"]
    assert fold["mode"] == "auto" and rep["ii_cycles"] > 1
    dense = [layer for layer in fold["layers"] if layer["op"] == "dense"]
    assert any(layer["folded"] for layer in dense)
    assert json.loads((tmp_path / "report.json").read_text())["folding"] == json.loads(
        json.dumps(fold))
    assert rep["timing_met"]
