"""Folding selection is one decision, written into the model: every command that builds a model
for a budget gets the same folding, and the saved annotated model builds the same circuit each
time (generate == cosim == build)."""
from pathlib import Path

import pytest
from amaranth.back import verilog

from ddnhw import DdnhwError
from ddnhw.board import get_board
from ddnhw.ir import load_graph, save_graph
from ddnhw.ir.testing import random_mlp
from ddnhw.lower import build_network
from ddnhw.passes import FoldSelection, choose, hw_of, lowering_passes, run_passes
from ddnhw.passes.fold import select

DIGITS = Path(__file__).parents[2] / "examples" / "digits_mlp.npz"


def budget(board):
    return get_board(board).budget_for()


def rtl(graph, **options):
    return verilog.convert(build_network(graph, **options), name="top", emit_src=False)


def test_digits_mlp_one_decision_for_generate_and_build():
    # `ddnhw generate --board icebreaker` and `ddnhw build --board icebreaker` both call
    # choose(): the demo model fits the UP5K unrolled, so both keep it unrolled at II 1
    from ddnhw import flow
    g = load_graph(DIGITS)
    plan = choose(g, budget("icebreaker"))
    assert plan["mode"] == "unrolled" and plan["folding"] is None
    assert flow.choose_folding(g, "icebreaker") == plan       # build's path
    annotated, again = select(g, budget("icebreaker"))
    assert again == plan
    assert all(hw_of(n)["fold"] is None for n in annotated.nodes if n.op == "dense")
    assert rtl(annotated) == rtl(g)


def test_folding_saved_in_model_builds_one_circuit(tmp_path):
    g = random_mlp(0, sizes=(64, 64, 10))         # does not fit the UP5K unrolled
    p = FoldSelection(budget("icebreaker"))
    annotated, changed = p.apply(g)
    assert changed and p.plan["mode"] == "auto"
    assert {n.name: hw_of(n)["fold"] for n in annotated.nodes if "fold" in hw_of(n)} == {
        k: list(v) if v else None for k, v in p.plan["folding"].items()}
    assert not p.apply(annotated)[1]                           # a fixed point
    annotated, _ = run_passes(annotated, lowering_passes())    # what the flow saves
    save_graph(annotated, tmp_path / "m.npz")
    as_generate = rtl(load_graph(tmp_path / "m.npz"))
    as_build = rtl(load_graph(tmp_path / "m.npz"))
    assert as_generate == as_build == rtl(g, folding=p.plan["folding"])
    net = build_network(load_graph(tmp_path / "m.npz"))
    assert net.ii == p.plan["ii"] > 1


def test_choose_errors():
    g = random_mlp(0, sizes=(8, 4))
    with pytest.raises(TypeError, match="budget must be a Budget"):
        choose(g, "icebreaker")
    with pytest.raises(DdnhwError, match="unknown folding"):
        choose(g, budget("icebreaker"), "fast")
