"""ddnhw demo --model gru|gru-signal|rnn end to end through the CLI (short training, small
hidden state), the demo's stop when no hardware lowering exists, and the shipped examples'
accuracy and integer-mode == golden on their whole test splits (full training: slow)."""
import json

import numpy as np
import pytest

from ddnhw import DdnhwError, golden, seq_demo
from ddnhw.cli.main import main


def _demo(tmp_path, model, *extra):
    rc = main(["demo", "--model", model, "--out", str(tmp_path / "d"), "--seq-epochs", "1",
               "--hidden", "4", "-q", "--json", str(tmp_path / "s.json"), *extra])
    return rc, json.loads((tmp_path / "s.json").read_text())


@pytest.mark.parametrize("model, steps, lanes, simd", [
    ("gru", 8, 8, 4), ("gru-signal", 32, 1, 2), ("rnn", 8, 8, 4)])
def test_demo_seq_sim(tmp_path, model, steps, lanes, simd):
    rc, s = _demo(tmp_path, model, "--seq-sim-images", "3", "--cosim", "none", "--no-synth")
    assert rc == 0 and s["mismatches"] == 0 and s["sim_images"] == 3
    assert s["int_mode_mismatches"] == 0 and s["int_mode_vectors"] == 360 + 200
    assert "cosim_images" not in s and s["boards"] == {}
    m = json.loads((tmp_path / "d" / "rtl" / "manifest.json").read_text())
    assert m["input"]["beats"] == steps and m["input"]["shape"] == [steps, lanes]
    assert s["folding"][s["cell"]] == [1, simd]   # SIMD over [x_t, h]


@pytest.mark.slow
@pytest.mark.cocotb
def test_demo_gru_cosim(tmp_path):
    rc, s = _demo(tmp_path, "gru", "--seq-sim-images", "0", "--cosim", "verilator",
                  "--cosim-random", "10", "--no-synth")
    assert rc == 0 and s["mismatches"] == 0 and s["cosim_mismatches"] == 0
    assert s["cosim_images"] == 360 + 10 and s["cosim_simulator"] == "verilator"
    assert s["cosim_accuracy"] == pytest.approx(s["golden_accuracy"])


def test_demo_stops_after_golden_without_lowering(tmp_path, monkeypatch):
    from ddnhw.lower import registry
    monkeypatch.delitem(registry.LOWERINGS, "gru")
    with pytest.raises(DdnhwError, match=r"no hardware lowering of \['dense', 'gru'\]"):
        seq_demo.run_seq_demo("gru", tmp_path / "d", hidden=2, epochs=1, cosim="none",
                              boards=())
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert s["int_mode_mismatches"] == 0 and (tmp_path / "d" / "model.npz").exists()
    assert not (tmp_path / "d" / "rtl").exists()


def test_unknown_example_named():
    with pytest.raises(DdnhwError, match="'lstm'.*gru, gru-signal, rnn"):
        seq_demo.seq_data("lstm")


@pytest.mark.slow
@pytest.mark.parametrize("name, floor", [("gru", 0.93), ("gru-signal", 0.95)])
def test_shipped_examples(name, floor):
    """Full training (deterministic): 4-bit accuracy close to float, and integer-mode PyTorch
    == golden on the whole test split and random sequences."""
    g, m, model = seq_demo.train_seq_example(name)
    assert m["int_mode_mismatches"] == 0 and m["int_mode_vectors"] == 560
    assert m["golden_accuracy"] >= floor and m["float_accuracy"] >= floor
    assert m["golden_accuracy"] == pytest.approx(m["quant_accuracy"], abs=0.01)
    x, y = seq_demo.seq_inputs(g, name)
    assert np.array_equal(model.int_forward(x).numpy(), golden.run(g, x))


def test_training_is_deterministic():
    a, ma, _ = seq_demo.train_seq_example("gru-signal", hidden=3, epochs=1, random=0)
    b, mb, _ = seq_demo.train_seq_example("gru-signal", hidden=3, epochs=1, random=0)
    for k in ("weight", "bias", "multiplier", "shift"):
        assert np.array_equal(a.nodes[0].attrs[k], b.nodes[0].attrs[k])
    assert np.array_equal(a.nodes[-1].attrs["weight"], b.nodes[-1].attrs["weight"])
    assert ma["golden_accuracy"] == mb["golden_accuracy"]


@pytest.mark.slow
@pytest.mark.cocotb
def test_demo_gru_unrolled_cosim(tmp_path):
    """The full-size digits GRU (hidden 16) fully unrolled: Verilator == golden on the test
    split and random sequences under idle/backpressure."""
    s = seq_demo.run_seq_demo("gru", tmp_path / "d", epochs=2, sim_images=0,
                              cosim="verilator", cosim_random=10, boards=(), folding={})
    assert s["folding"] == {} and s["ii_cycles"] < 100
    assert s["mismatches"] == 0 and s["cosim_mismatches"] == 0 and s["cosim_images"] == 370
