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


def test_channel_bits_by_importance_and_candidates():
    import torch
    from ddnhw.quant.modules import QuantMLP
    from ddnhw.quant.search import channel_bits_by_importance, channel_candidates
    torch.manual_seed(0)
    m = QuantMLP((8, 4, 3))
    with torch.no_grad():
        m.layers[0].weight.copy_(torch.tensor([[1.0] * 8, [0.1] * 8, [0.5] * 8, [0.2] * 8]))
        m.layers[1].weight.fill_(1.0)
        m.layers[1].weight[:, 2] = 0.1          # channel 2 is read by small weights: 0.05
    assert channel_bits_by_importance(m.layers, 0, 4, 2, 0.5) == (4, 2, 2, 4)
    assert channel_bits_by_importance(m.layers, 0, 4, 2, 0.25) == (4, 4, 2, 4)
    c = channel_candidates(m, 4, 2, (0.5,), (3,), 4)
    assert c[0][0][0].channel_bits == (4, 2, 2, 4) and c[0][0][1].bits == 3


def test_search_command_with_channel_bits(tmp_path, capsys):
    rc = main(["search", "--hidden", "4", "--w-bits", "3", "--a-bits", "2", "--epochs", "1",
               "--float-epochs", "2", "--channel-fractions", "0.5", "-q", "-o", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "search.json").read_text())
    assert len(res["rows"]) == 2 and "DSPs" in capsys.readouterr().out
    assert res["rows"][1]["channel_bits"][0] is not None and "(2x2)" in res["rows"][1]["label"]
