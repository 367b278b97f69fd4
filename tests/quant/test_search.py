"""Mixed-precision search: Pareto front, candidates, and the ``ddnhw search`` command."""
import json

from ddnhw.cli.main import main
from ddnhw.ir import load_graph
from ddnhw.quant.search import candidates, pareto_front


def test_pareto_front_keeps_non_dominated_rows():
    rows = [{"accuracy": a, "luts": c, "i": i}
            for i, (a, c) in enumerate([(0.9, 100), (0.8, 120), (0.95, 300), (0.95, 400),
                                        (0.7, 50)])]
    assert [r["i"] for r in pareto_front(rows)] == [4, 0, 2]


def test_candidates_per_layer_bits():
    c = candidates(2, (2, 4), (3,))
    assert [[s.bits for s in ws] for ws, _ in c] == [[2, 2], [2, 4], [4, 2], [4, 4]]
    assert len(candidates(3, (2, 3, 4), (2, 3, 4), limit=5)) == 5


def test_search_command_writes_front_and_pick(tmp_path, capsys):
    rc = main(["search", "--hidden", "4", "--w-bits", "2,3", "--a-bits", "2", "--epochs", "1",
               "--float-epochs", "2", "--limit", "2", "-q", "-o", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "pareto" in out and "picked" in out
    res = json.loads((tmp_path / "search.json").read_text())
    assert len(res["rows"]) == 2 and any(r["pareto"] for r in res["rows"])
    g = load_graph(tmp_path / "search_pick.npz")
    assert g.meta["sizes"] == [64, 4, 10]
