"""The logic-domain examples (lut, lut-signal, lut-jets): through the one pipeline with the
same summary keys, integer mode == golden; the synthetic jet data; hostile settings get one
clear error (from the API and from the CLI, exit status 2)."""
import json

import numpy as np
import pytest

from ddnhw import DdnhwError, examples, flow
from ddnhw.cli.main import main
from ddnhw.examples.lut import JET_CLASSES, JET_FEATURES, jets
from ddnhw.flow import SUMMARY_KEYS
from ddnhw.ir import load_graph

TINY = {"lut": dict(layers=((40, 4),), epochs=1), "lut-signal": dict(layers=((30, 3),),
                                                                     epochs=1),
        "lut-jets": dict(layers=((20, 6), (10, 2)), epochs=1)}


@pytest.mark.parametrize("name", TINY)
def test_pipeline(name, tmp_path, monkeypatch):
    monkeypatch.setattr(flow.core, "build", lambda *a, **k: {
        "luts": 1, "ffs": 1, "dsps": 0, "brams": 0, "fmax_mhz": 1.0, "clock_mhz": 1.0,
        "timing_met": True, "inferences_per_s": 1.0, "folding": {"mode": "fake"}})
    s = examples.run(name, tmp_path, settings=TINY[name], simulator="none", random=50,
                     sim_vectors=5)
    assert list(s) == list(SUMMARY_KEYS)
    assert s["int_mode_mismatches"] == 0 and s["sim_mismatches"] == 0
    assert s["ii_cycles"] == 1 and s["quant_accuracy"] == s["float_accuracy"]
    g = load_graph(next(tmp_path.glob("*.npz")))
    assert [n.op for n in g.nodes][0] == "thermometer" and g.nodes[-1].op == "popcount"
    assert json.loads((tmp_path / "summary.json").read_text())["example"] == name


def test_jets():
    a, b = jets(0), jets(0)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    xtr, ytr, xte, yte = a
    assert xtr.shape[1] == JET_FEATURES and set(np.unique(ytr)) == set(range(JET_CLASSES))
    assert xtr.min() >= 0 and xtr.max() <= 1 and len(xte) == 2400
    # another seed reorders the same task
    other = jets(1)
    np.testing.assert_array_equal(np.sort(np.concatenate([other[1], other[3]])),
                                  np.sort(np.concatenate([ytr, yte])))


@pytest.mark.parametrize("settings, match", [
    ({"layers": ((40, 7),)}, r"'lut0'.*fan-in k = 7 is out of range"),
    ({"layers": "big"}, r"setting 'layers' must be a list of \(neurons, k\) pairs"),
    ({"layers": ((40, 4), (5, 3))}, r"'lut1'.*5 neurons cannot make 10 class groups"),
    ({"encoding": "gray"}, r"encoding 'gray' is unknown"),
])
def test_hostile_settings(settings, match, tmp_path):
    with pytest.raises(DdnhwError, match=match):
        examples.train("lut", epochs=1, **settings)


def test_cli(tmp_path, capsys):
    out = tmp_path / "lut.npz"
    assert main(["train", "--model", "lut", "--epochs", "1", "--out", str(out)]) == 0
    g = load_graph(out)
    assert g.meta["example"] == "lut" and g.node("lut0").attrs["table"].shape == (600, 16)
    # a model file whose truth table does not match its fan-in: one line, exit status 2
    with np.load(out) as z:
        files = {k: z[k] for k in z.files}
    files["lut0/table"] = files["lut0/table"][:, :8]
    np.savez(tmp_path / "bad.npz", **files)
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "rtl")]) == 2
    err = capsys.readouterr().err
    assert "'lut0'" in err and "need (600, 16)" in err and len(err.strip().splitlines()) == 1
