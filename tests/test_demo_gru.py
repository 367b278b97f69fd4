"""ddnhw demo --model gru|gru-signal|rnn end to end through the CLI (short training, small
hidden state), the demo's stop when no hardware lowering exists, and the shipped examples'
accuracy and integer-mode == golden on their whole test splits (full training: slow)."""
import json

import numpy as np
import pytest

from ddnhw import DdnhwError, examples, golden
from ddnhw.cli.main import main
from ddnhw.flow import pipeline


def _demo(tmp_path, model, *extra):
    rc = main(["demo", "--model", model, "--out", str(tmp_path / "d"), "--seq-epochs", "1",
               "--hidden", "4", "-q", "--json", str(tmp_path / "s.json"), *extra])
    return rc, json.loads((tmp_path / "s.json").read_text())


@pytest.mark.parametrize("model, steps, lanes, simd", [
    ("gru", 8, 8, 4), ("gru-signal", 32, 1, 2), ("rnn", 8, 8, 4)])
def test_demo_seq_sim(tmp_path, model, steps, lanes, simd):
    rc, s = _demo(tmp_path, model, "--seq-sim-images", "3", "--cosim", "none", "--no-synth")
    assert rc == 0 and s["mismatches"] == 0 and s["sim_vectors"] == 3
    assert s["int_mode_mismatches"] == 0 and s["int_mode_vectors"] == 360 + 40
    assert s["vectors_checked"] is None and s["boards"] == {}
    m = json.loads((tmp_path / "d" / "rtl" / "manifest.json").read_text())
    assert m["input"]["beats"] == steps and m["input"]["shape"] == [steps, lanes]
    assert s["folding"][s["model"]["cell"]] == [1, simd]   # SIMD over [x_t, h]


@pytest.mark.slow
@pytest.mark.cocotb
def test_demo_gru_cosim(tmp_path):
    rc, s = _demo(tmp_path, "gru", "--seq-sim-images", "0", "--cosim", "verilator",
                  "--cosim-random", "10", "--no-synth")
    assert rc == 0 and s["mismatches"] == 0 and s["cosim_mismatches"] == 0
    assert s["vectors_checked"] == 360 + 10 and s["simulator"] == "verilator"
    assert s["rtl_accuracy"] == pytest.approx(s["quant_accuracy"])


def test_demo_stops_after_golden_without_lowering(tmp_path, monkeypatch):
    from ddnhw.lower import registry
    monkeypatch.delitem(registry.LOWERINGS, "gru")
    with pytest.raises(DdnhwError, match=r"no hardware lowering of \['dense', 'gru'\]"):
        examples.run("gru", tmp_path / "d", settings=dict(hidden=2, epochs=1),
                     simulator="none", boards=())
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert s["int_mode_mismatches"] == 0 and (tmp_path / "d" / "model.npz").exists()
    assert not (tmp_path / "d" / "rtl").exists()


def test_unknown_example_named():
    with pytest.raises(DdnhwError, match="'nosuch'") as e:
        examples.get("nosuch")
    for name in ("mlp", "cnn", "cnn-dws", "cnn1d", "gru", "gru-signal", "lstm", "rnn"):
        assert name in str(e.value)


@pytest.mark.slow
@pytest.mark.parametrize("name, floor", [("gru", 0.93), ("gru-signal", 0.95)])
def test_shipped_examples(name, floor):
    """Full training (deterministic): 4-bit accuracy close to float, and integer-mode PyTorch
    == golden on the whole test split and random sequences."""
    t = examples.train(name)
    vec = pipeline.vectors(examples.get(name), t.graph, random=200)
    m = pipeline.check_golden(t, vec)
    assert m["int_mode_mismatches"] == 0 and m["int_mode_vectors"] == 560
    assert m["quant_accuracy"] >= floor and t.float_accuracy >= floor
    assert m["quant_accuracy"] == pytest.approx(t.qat_accuracy, abs=0.01)
    x = vec.x_test
    assert np.array_equal(t.model.int_forward(x).numpy(), golden.run(t.graph, x))


def test_training_is_deterministic():
    a = examples.train("gru-signal", hidden=3, epochs=1).graph
    b = examples.train("gru-signal", hidden=3, epochs=1).graph
    for k in ("weight", "bias", "multiplier", "shift"):
        assert np.array_equal(a.nodes[0].attrs[k], b.nodes[0].attrs[k])
    assert np.array_equal(a.nodes[-1].attrs["weight"], b.nodes[-1].attrs["weight"])


@pytest.mark.slow
@pytest.mark.cocotb
def test_demo_gru_unrolled_cosim(tmp_path):
    """The full-size digits GRU (hidden 16) fully unrolled: Verilator == golden on the test
    split and random sequences under idle/backpressure."""
    s = examples.run("gru", tmp_path / "d", settings=dict(epochs=2), sim_vectors=0,
                     simulator="verilator", random=10, boards=(), folding="none")
    assert s["folding"] is None and s["ii_cycles"] < 100
    assert s["mismatches"] == 0 and s["cosim_mismatches"] == 0 and s["vectors_checked"] == 370
