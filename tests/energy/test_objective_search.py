"""Energy as a decision: ``--objective energy`` picks the least-energy folding that meets the
throughput (checked against energies estimated separately), an impossible throughput is a
one-line exit 2, and ``ddnhw search --energy`` adds the energy column, its front and the PNG.

Gate-level builds are cached by content (DDNHW_ENERGY_CACHE): the separate estimates of the
same circuits reuse the builds of the run under test.
"""
import json

import numpy as np
import pytest

from ddnhw.cli.main import main

pytestmark = pytest.mark.synth

CLOCK = 12.0    # iCEBreaker


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "energy_cache"
    monkeypatch.setenv("DDNHW_ENERGY_CACHE", str(d))
    return d


def _layer_folds(man):
    return {layer["name"]: (layer["pe"], layer["simd"]) if layer["folded"] else None
            for layer in man["layers"] if "pe" in layer}


def test_objective_energy_picks_the_least_energy_folding(tmp_path, cache, capsys):
    from ddnhw.energy import estimate_energy
    from ddnhw.energy.objective import candidate_foldings
    from ddnhw.flow import random_vectors
    from ddnhw.ir import save_graph
    from ddnhw.ir.testing import random_mlp
    g = random_mlp(5, sizes=(8, 4, 3))
    m = tmp_path / "m.npz"
    save_graph(g, m)
    t = CLOCK * 1e6 / 2                  # II <= 2 at 12 MHz: unrolled and one folding
    out = tmp_path / "gen"
    assert main(["generate", str(m), "--board", "icebreaker", "--objective", "energy",
                 "--min-throughput", str(t), "--energy-inputs", "random:48",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "objective energy:" in printed

    # the candidates' energies, estimated here one by one on the same inputs
    x = random_vectors(g, 48, 0)
    cands = candidate_foldings(g, "icebreaker", t)
    assert len(cands) >= 2 and cands[0][0] == "unrolled"
    rows = []
    for i, (label, fold) in enumerate(cands):
        r = estimate_energy(g, "icebreaker", tmp_path / f"sep{i}", inputs=x, folding=fold)
        assert r["gate_level_mismatches"] == 0
        rows.append((r["energy_nj_per_inference"], CLOCK * 1e6 / r["ii_cycles"] >= t, label,
                     fold))
    assert len({e for e, *_ in rows}) == len(rows)      # distinct: the pick is meaningful
    best = min((r for r in rows if r[1]), key=lambda r: r[0])
    assert f"objective energy: {best[2]} ({best[0]:.3f}" in printed
    # the generated circuit is the picked folding
    man = json.loads((out / "manifest.json").read_text())
    folds = _layer_folds(man)
    if best[3] == "none":
        assert all(v is None for v in folds.values()), folds
    else:
        want = {k: tuple(v) if v else None for k, v in best[3].items()}
        assert folds == want, (folds, want)
    assert man["ii_cycles"] <= 2


def test_objective_energy_impossible_throughput_exit_2(tmp_path, capsys):
    from ddnhw.ir import save_graph
    from ddnhw.ir.testing import random_mlp
    m = tmp_path / "m.npz"
    save_graph(random_mlp(5, sizes=(8, 4, 3)), m)
    rc = main(["generate", str(m), "--board", "icebreaker", "--objective", "energy",
               "--min-throughput", "2e7", "--out", str(tmp_path / "gen")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--min-throughput 2e+07" in err[0], err
    assert not (tmp_path / "gen" / "manifest.json").exists()


def test_search_energy_column_front_and_png(tmp_path, cache, capsys):
    from ddnhw.energy import estimate_energy
    from ddnhw.ir import load_graph
    from ddnhw.sweep.families import SchemeMLPFamily
    out = tmp_path / "s"
    # one candidate (each costs a gate-level build); the front logic is tested with LUTs in
    # tests/quant/test_search.py
    rc = main(["search", "--hidden", "4", "--w-bits", "2", "--a-bits", "2", "--epochs", "1",
               "--float-epochs", "2", "--energy", "-q", "-o", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "nJ/inf" in printed and "search_pareto.png" in printed
    res = json.loads((out / "search.json").read_text())
    assert res["energy_board"] == "icebreaker"
    rows = res["rows"]
    assert len(rows) == 1
    for r in rows:
        assert r["energy_nj_per_inference"] > 0 and r["energy_gate_level_mismatches"] == 0
    # the energy front: not dominated in (accuracy, energy)
    for r in rows:
        dominated = any(o is not r and o["accuracy"] >= r["accuracy"] and
                        o["energy_nj_per_inference"] <= r["energy_nj_per_inference"] and
                        (o["accuracy"], o["energy_nj_per_inference"]) !=
                        (r["accuracy"], r["energy_nj_per_inference"]) for o in rows)
        assert r["energy_pareto"] == (not dominated)
    png = out / "search_pareto.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the sweep's table has the column too
    head = (out / "sweep" / "results.csv").read_text().splitlines()[0].split(",")
    assert "energy_nj_per_inference" in head
    # the picked model's energy, estimated on its own (unrolled, digits test split) is the row's
    pick = next(r for r in rows if r["index"] == res["pick"])
    g = load_graph(out / "search_pick.npz")
    x = SchemeMLPFamily().test_split(g, 0)[0]
    e = estimate_energy(g, "icebreaker", tmp_path / "own", inputs=x, folding="none")
    assert e["energy_nj_per_inference"] == pytest.approx(pick["energy_nj_per_inference"],
                                                         rel=1e-12)
    assert np.isfinite(e["energy_nj_per_inference"])


def test_search_energy_board_must_match_family(tmp_path, capsys):
    rc = main(["search", "--family", "ecp5", "--energy", "--energy-board", "icebreaker",
               "-q", "-o", str(tmp_path)])
    assert rc == 2
    assert "--energy-board icebreaker" in capsys.readouterr().err
