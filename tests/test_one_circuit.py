"""``ddnhw generate``, ``cosim``, ``build`` and the demo build the same circuit for the same model
and board (one folding decision, :func:`ddnhw.flow.decide`), and a folding written into a model
file travels with it.

Regression: ``ddnhw generate examples/digits_mlp.npz --board icebreaker`` used to fold fc0 to
(1, 32) at II 32 while ``ddnhw build`` and ``ddnhw demo`` built it unrolled at II 1.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ddnhw.hw.dense_rtl as dense_rtl
from ddnhw import flow
from ddnhw.cli.main import main
from ddnhw.ir import load_graph, save_graph
from ddnhw.ir.testing import random_mlp

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits_mlp.npz"


@pytest.fixture
def built(monkeypatch):
    """``ddnhw.board.build`` replaced by a stub that keeps the Verilog of the core it is given
    (the circuit ``flow.build`` would synthesize) instead of running yosys."""
    cores = []

    def fake_build(core, board, outdir, top=None, toolchain="yowasp", timeout=None,
                   limit_s=None):
        # the real build writes the unrolled Dense datapaths (ddnhw.hw.dense_rtl) beside
        # the design, as generate appends them to its Verilog
        cores.append(dense_rtl.convert(core, name="ddnhw_top", emit_src=False))
        return {"board": board, "fmax_mhz": 12.0, "clock_mhz": 12.0, "timing_met": True,
                "luts": 0, "ffs": 0, "dsps": 0, "brams": 0, "bitstream": "none"}
    import ddnhw.board
    monkeypatch.setattr(ddnhw.board, "build", fake_build)
    return cores


def _generated(path):
    return (Path(path) / "ddnhw_top.v").read_text()


def _folded_layers(manifest):
    return {l["name"]: (l["pe"], l["simd"]) for l in manifest["layers"]
            if l.get("folded")}


@pytest.mark.parametrize("model, folded", [("digits", False), ("wide", True)])
def test_generate_cosim_build_and_demo_agree(model, folded, tmp_path, built, monkeypatch):
    if model == "digits":
        graph = load_graph(DIGITS)
    else:   # a 64-64-10 MLP that does not fit the UP5K unrolled
        graph = random_mlp(3, sizes=(64, 64, 10), in_bits=8, w_bits=4, a_bits=4)
    man = flow.generate(graph, tmp_path / "gen", board="icebreaker")
    assert bool(_folded_layers(man)) == folded
    v_gen = _generated(tmp_path / "gen")

    flow.build(graph, "icebreaker", tmp_path / "build", allow_timing_failure=True)
    assert built[-1] == v_gen                       # build synthesizes the generated circuit

    # the CLI: generate, and cosim (which generates when no --rtl is given)
    path = tmp_path / "m.npz"
    save_graph(graph, path)
    assert main(["generate", str(path), "--board", "icebreaker",
                 "--out", str(tmp_path / "cli")]) == 0
    assert _generated(tmp_path / "cli") == v_gen
    monkeypatch.setattr(flow, "cosim", lambda *a, **k: (_Res(), None))
    assert main(["cosim", str(path), "--board", "icebreaker", "--vectors", "random:2",
                 "--out", str(tmp_path / "cos")]) == 0
    assert _generated(tmp_path / "cos") == v_gen
    assert main(["build", str(path), "--board", "icebreaker", "--top", "measure",
                 "--allow-timing-failure", "--out", str(tmp_path / "b")]) == 0
    assert built[-1] == v_gen

    # the demo pipeline plans each board with the same decision
    from ddnhw.flow.pipeline import plan
    from ddnhw import examples
    p = plan(examples.get("mlp"), graph, {}, boards=("icebreaker",), folding="auto")
    assert p["boards"]["icebreaker"] == flow.choose_folding(graph, "icebreaker")["folding"]
    assert bool(p["boards"]["icebreaker"]) == folded


class _Res:
    mismatches, cycles, seconds_run, message = 0, 1, 1.0, ""


def test_folding_travels_with_the_model(tmp_path, built):
    """The model ``generate --board`` writes carries its folding: generated again without a
    board, and built for another board's budget, it is the same circuit."""
    graph = random_mlp(3, sizes=(64, 64, 10), in_bits=8, w_bits=4, a_bits=4)
    man = flow.generate(graph, tmp_path / "a", board="icebreaker")
    folding = _folded_layers(man)
    assert folding
    carried = load_graph(tmp_path / "a" / "model.npz")
    assert {k: v for k, v in flow.model_folding(carried).items() if v} == folding
    man2 = flow.generate(carried, tmp_path / "b")
    assert man2["folding_mode"] == "model"
    assert _generated(tmp_path / "b") == _generated(tmp_path / "a")
    flow.build(carried, "icebreaker", tmp_path / "c", allow_timing_failure=True)
    assert built[-1] == _generated(tmp_path / "a")
    # asking for a plan again (a target II) replans; "none" unrolls
    man3 = flow.generate(carried, tmp_path / "d", folding="none")
    assert not _folded_layers(man3)
    # what the model computes is unchanged: the same hash and the same golden outputs
    assert man["graph_sha256"] == man3["graph_sha256"]
    x = flow.random_vectors(graph, 50)
    from ddnhw import golden
    np.testing.assert_array_equal(golden.run(carried, x), golden.run(graph, x))
