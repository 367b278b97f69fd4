"""ddnhw demo --model cnn|cnn1d end to end through the CLI (short training, a few images)."""
import json

import pytest

from ddnhw.cli.main import main


def test_demo_cnn(tmp_path):
    rc = main(["demo", "--model", "cnn", "--out", str(tmp_path / "d"), "--cnn-epochs", "3",
               "--channels", "4", "--sim-images", "5", "-q", "--cosim", "none", "--no-synth",
               "--json", str(tmp_path / "s.json")])
    s = json.loads((tmp_path / "s.json").read_text())
    assert rc == 0 and s["mismatches"] == 0 and s["sim_vectors"] == 5
    assert s["vectors_checked"] is None and s["simulator"] == "none"
    assert s["int_mode_mismatches"] == 0 and s["int_mode_vectors"] == 360 + 40
    assert s["model"]["layers"][0]["out"] == 4
    assert (tmp_path / "d" / "rtl" / "ddnhw_top.v").exists()


@pytest.mark.cocotb
def test_demo_cnn_cosim(tmp_path):
    rc = main(["demo", "--model", "cnn", "--out", str(tmp_path / "d"), "--cnn-epochs", "2",
               "--channels", "4", "--sim-images", "3", "-q", "--cosim", "verilator",
               "--cosim-random", "10", "--no-synth", "--json", str(tmp_path / "s.json")])
    s = json.loads((tmp_path / "s.json").read_text())
    assert rc == 0 and s["mismatches"] == 0 and s["cosim_mismatches"] == 0
    assert s["vectors_checked"] == 360 + 10 and s["simulator"] == "verilator"
    assert s["rtl_accuracy"] == s["quant_accuracy"]


def test_demo_cnn1d(tmp_path):
    rc = main(["demo", "--model", "cnn1d", "--out", str(tmp_path / "d"), "--cnn-epochs", "2",
               "--sim-images", "4", "-q", "--cosim", "none", "--no-synth",
               "--json", str(tmp_path / "s.json")])
    s = json.loads((tmp_path / "s.json").read_text())
    assert rc == 0 and s["mismatches"] == 0 and s["sim_vectors"] == 4
    m = json.loads((tmp_path / "d" / "rtl" / "manifest.json").read_text())
    assert m["input"]["shape"] == [1, 32, 1] and m["input"]["beats"] == 32


@pytest.mark.synth
@pytest.mark.slow
def test_demo_cnn_folds_cosims_and_builds_for_the_up5k(tmp_path):
    """The digits CNN does not fit the UP5K unrolled: the demo folds it for the board,
    cosimulates that folded circuit too, and builds it."""
    rc = main(["demo", "--model", "cnn", "--out", str(tmp_path / "d"), "--cnn-epochs", "2",
               "--sim-images", "2", "-q", "--cosim", "verilator", "--cosim-random", "4",
               "--boards", "icebreaker", "--json", str(tmp_path / "s.json")])
    s = json.loads((tmp_path / "s.json").read_text())
    assert rc == 0 and s["mismatches"] == 0
    folded = s["designs"]["rtl-icebreaker"]
    assert folded["boards"] == ["icebreaker"] and folded["folding"]
    assert folded["cosim"]["vectors"] == 364 and folded["cosim"]["mismatches"] == 0
    assert s["designs"]["rtl"]["folding"] is None and s["designs"]["rtl"]["boards"] == []
    r = s["boards"]["icebreaker"]
    assert r["folding"]["mode"] == "explicit" and r["luts"] <= 5280 and r["fmax_mhz"] > 0
    assert r["ii_cycles"] == folded["ii_cycles"]
