"""The example records and the one pipeline: every example runs through the same steps and
its summary has the same keys; settings are checked by name; `ddnhw train` trains any example;
the default MLP record trains exactly the shipped demo model."""
import json

import numpy as np
import pytest

from ddnhw import DdnhwError, examples, flow, golden
from ddnhw.cli.main import main
from ddnhw.flow import SUMMARY_KEYS, pipeline

from .test_flow import MODEL

# the smallest settings of each example: keys checks need the pipeline, not accuracy
TINY = {"mlp": dict(hidden=4, epochs=1), "cnn": dict(channels=2, epochs=1),
        "cnn1d": dict(epochs=1), "gru": dict(hidden=2, epochs=1),
        "gru-signal": dict(hidden=2, epochs=1), "rnn": dict(hidden=2, epochs=1),
        "lstm": dict(hidden=2, epochs=1)}
SLOW = {"cnn", "cnn1d"}   # their RTL takes seconds to generate


def test_records():
    assert set(examples.NAMES) >= set(TINY)
    for ex in examples.EXAMPLES.values():
        assert {"epochs", "bits"} <= set(ex.settings), ex.name
        assert callable(ex.load) and callable(ex.trainer) and ex.boards, ex.name
        assert ex.folding in flow.FOLDINGS or callable(ex.folding), ex.name


BUILT = {}


def fake_build(graph, board, out, folding="auto", **kw):
    """flow.build without synthesis: records the folding it was asked to build."""
    BUILT[board] = folding
    return {"luts": 100, "ffs": 50, "dsps": 0, "brams": 0, "fmax_mhz": 30.0, "clock_mhz": 12.0,
            "timing_met": True, "inferences_per_s": 1e6, "folding": {"mode": "fake"}}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in TINY])
def test_summary_keys_are_the_same_for_every_example(name, tmp_path, monkeypatch):
    monkeypatch.setattr(flow.core, "build", fake_build)
    s = examples.run(name, tmp_path, settings=TINY[name], simulator="none", random=3,
                     sim_vectors=2)
    assert list(s) == list(SUMMARY_KEYS)
    assert sorted(json.loads((tmp_path / "summary.json").read_text())) == sorted(SUMMARY_KEYS)
    assert s["example"] == name and s["mismatches"] == 0 and s["sim_mismatches"] == 0
    assert s["int_mode_vectors"] == 360 + 3 and s["int_mode_mismatches"] == 0
    assert s["board"] == "icebreaker" and list(s["boards"]) == ["icebreaker"]
    built = [d for d in s["designs"].values() if d["boards"] == ["icebreaker"]]
    assert len(built) == 1   # the board builds exactly a generated (and checked) design
    fold = BUILT.pop("icebreaker")
    assert built[0]["folding"] == (None if fold == "none" else
                                   {k: list(v) for k, v in fold.items()})
    assert s["vectors_checked"] is None and s["rtl_accuracy"] is None


def test_unknown_setting_named(tmp_path):
    with pytest.raises(DdnhwError, match="'cnn' has no setting 'hidden'.*channels"):
        examples.run("cnn", tmp_path, settings={"hidden": 4})
    assert main(["demo", "--model", "gru", "--prune", "0.3", "--out", str(tmp_path)]) == 2


def test_plan_is_the_single_folding_decision():
    """The RTL and the boards get their folding from one plan: explicit (recurrent records)
    for both, or choose_folding's per board ("auto")."""
    from ddnhw.ir import load_graph
    g = load_graph(MODEL)
    mlp = examples.get("mlp")
    p = pipeline.plan(mlp, g, mlp.settings, ("icebreaker",))
    assert p == {"family": "ice40", "rtl": None, "boards": {"icebreaker": None}}
    p = pipeline.plan(mlp, g, mlp.settings, ("icebreaker",), folding={"fc0": (2, 8)})
    assert p["rtl"] == p["boards"]["icebreaker"] == {"fc0": (2, 8)}


def test_cli_train_any_example(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["train", "--model", "rnn", "--epochs", "1", "--hidden", "2", "--out",
                 str(out), "-q"]) == 0
    assert "model written to" in capsys.readouterr().out
    g = flow.load_model(out)
    assert g.meta["example"] == "rnn" and tuple(g.input.shape) == (8, 8)
    x = examples.input_vectors(g, "test")   # the model's own example's test split
    assert x.shape == (360, 8, 8)


def test_default_mlp_settings_are_the_demo_model():
    """`ddnhw demo`'s defaults are the settings of examples/digits_mlp.npz (64-16-10, 4 bits,
    half the first layer pruned, 120 + 120 epochs, seed 0)."""
    assert dict(examples.get("mlp").settings) == dict(hidden=16, bits=4, prune=0.5, epochs=120)


@pytest.mark.slow
def test_default_mlp_is_the_shipped_demo_model():
    """The default MLP record trains the shipped model's architecture with the same float
    accuracy. (Its QAT weights are not compared: they differ in a few codes from the shipped
    file on this machine's torch build, with the code before the pipeline too.)"""
    from ddnhw.ir import load_graph
    shipped, t = load_graph(MODEL), examples.train("mlp")
    assert [(n.name, n.op) for n in shipped.nodes] == [(n.name, n.op) for n in t.graph.nodes]
    assert t.float_accuracy == shipped.meta["float_accuracy"]
    x, y = examples.test_inputs("mlp", t.graph)
    assert abs(np.mean(golden.classify(t.graph, x) == y) - 0.9611) < 0.01
