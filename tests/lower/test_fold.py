import numpy as np
import pytest

from ddnhw import DdnhwError
from ddnhw.golden import run
from ddnhw.hw.sim import run_stream
from ddnhw.ir.testing import random_mlp
from ddnhw.lower import build_network
from ddnhw.board import get_board
from ddnhw.lower.fold import auto_fold, plan_folding


def board_budget(name):
    return get_board(name).budget_for()


@pytest.fixture(scope="module")
def mlp():
    return random_mlp(0, sizes=(64, 64, 10))


def smallest_luts(graph):
    """LUT estimate of the cheapest folding (budgets in the tests are multiples of it)."""
    return plan_folding(graph, target_ii=10 ** 9)["estimate"]["luts"]


def check_plan(graph, plan):
    for n in graph.nodes:
        if n.op != "dense":
            continue
        fold = plan["folding"][n.name]
        if fold is not None:
            n_out, n_in = n.attrs["weight"].shape
            assert n_out % fold[0] == 0 and n_in % fold[1] == 0
    for k, lim in plan["limit"].items():
        assert plan["estimate"][k] <= lim
    assert plan["ii"] == max(l["ii"] for l in plan["layers"].values())


@pytest.mark.parametrize("board,sizes", [("icebreaker", (64, 16, 10)), ("icebreaker", (64, 64, 10)),
                                         ("ulx3s-85f", (64, 64, 10))])
def test_auto_fold_board(board, sizes):
    g = random_mlp(0, sizes=sizes)
    plan = plan_folding(g, board_budget(board))
    check_plan(g, plan)
    assert plan["limit"]["luts"] < plan["budget"]["luts"]     # margin held back


def test_auto_fold_balanced(mlp):
    plan = plan_folding(mlp, max_luts=int(2 * smallest_luts(mlp)))
    check_plan(mlp, plan)
    iis = [l["ii"] for l in plan["layers"].values()]
    # no layer is needlessly faster than the slowest: each one's ii is within 2x of the max
    assert min(iis) * 2 >= max(iis) or min(iis) == 1


def test_auto_fold_monotonic(mlp):
    lo = smallest_luts(mlp)
    iis = [plan_folding(mlp, max_luts=int(f * lo))["ii"] for f in (1.5, 3, 10)]
    assert iis[0] >= iis[1] >= iis[2]


@pytest.mark.parametrize("target", [1, 16, 100, 4096])
def test_auto_fold_target_ii(mlp, target):
    plan = plan_folding(mlp, target_ii=target)
    check_plan(mlp, plan)
    assert plan["ii"] <= target


def test_auto_fold_nothing_fits(mlp):
    with pytest.raises(DdnhwError, match=r"smallest footprint .*layer 'fc0' dominates"):
        auto_fold(mlp, max_luts=smallest_luts(mlp) // 2)
    with pytest.raises(DdnhwError, match="smallest footprint"):
        auto_fold(mlp, board_budget("icebreaker"), target_ii=1)


def test_auto_fold_errors(mlp):
    with pytest.raises(ValueError, match="budget .* or target_ii"):
        auto_fold(mlp)
    with pytest.raises(ValueError, match="margin"):
        auto_fold(mlp, max_luts=5000, margin=1.5)
    with pytest.raises(TypeError, match="budget must be a Budget"):
        auto_fold(mlp, "icebreaker")


def test_auto_folded_network_exact():
    g = random_mlp(3, sizes=(16, 8, 4))
    folding = auto_fold(g, max_luts=int(1.5 * smallest_luts(g)))
    net = build_network(g, folding=folding)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 16, size=(12, 16))
    y, log = run_stream(net, x, idle=0.3, stall=0.3, seed=3,
                        max_cycles=20 * (net.ii + net.latency) * 4)
    np.testing.assert_array_equal(y, run(g, x))
