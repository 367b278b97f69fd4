"""`ddnhw evaluate` and its metrics (ddnhw.flow.evaluate): per-class precision/recall/F1 and
confusion matrix against scikit-learn, regression metrics, the float model stored in the model
file, the regression example through the pipeline, and the CLI with RTL cosimulation."""
import json

import numpy as np
import pytest

from ddnhw import DdnhwError, examples, flow, golden
from ddnhw.cli.main import main
import ddnhw.flow.evaluate as ev

from .._tools import needs_icarus


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn(seed):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    y = rng.integers(0, k, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, k, 300))
    if seed == 0:
        p[p == 1] = 0     # a class never predicted: precision 0
    m = ev.classification_metrics(y, p, k)
    assert np.array_equal(m["confusion"], confusion_matrix(y, p, labels=range(k)))
    for avg in ("macro", "weighted"):
        ps, rs, fs, _ = precision_recall_fscore_support(y, p, labels=range(k), average=avg,
                                                        zero_division=0)
        assert m["precision"][avg] == pytest.approx(ps)
        assert m["recall"][avg] == pytest.approx(rs)
        assert m["f1"][avg] == pytest.approx(fs)
    ps, rs, fs, sup = precision_recall_fscore_support(y, p, labels=range(k), zero_division=0)
    for c, row in enumerate(m["per_class"]):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == \
            (pytest.approx(ps[c]), pytest.approx(rs[c]), pytest.approx(fs[c]), sup[c])
    assert m["accuracy"] == pytest.approx(np.mean(y == p))


def test_regression_metrics():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = ev.regression_metrics(y, y + np.array([0.5, -0.5, 0.0, 1.0]))
    assert m["mse"] == pytest.approx(1.5 / 4) and m["rmse"] == pytest.approx(np.sqrt(1.5 / 4))
    assert m["mae"] == pytest.approx(0.5) and m["max_abs_error"] == 1.0
    assert m["r2"] == pytest.approx(1 - (1.5 / 4) / np.var(y))


def test_metrics_refuse_bad_input():
    with pytest.raises(DdnhwError, match="2 labels but 3"):
        ev.classification_metrics([0, 1], [0, 1, 1])
    with pytest.raises(DdnhwError, match="outside 0..1"):
        ev.classification_metrics([0, 1], [0, 2], 2)
    with pytest.raises(DdnhwError, match="no inputs"):
        ev.regression_metrics([], [])


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    """The signal-freq regression example through the pipeline (tiny training, no RTL)."""
    out = tmp_path_factory.mktemp("freq")
    s = examples.run("signal-freq", out, settings=dict(hidden=4, epochs=2), boards=(),
                     simulator="none", random=20)
    return out, s


def test_regression_example_pipeline(regression_run):
    out, s = regression_run
    assert s["task"] == "regression" and s["quant_accuracy"] is None
    assert s["int_mode_mismatches"] == 0 and s["mismatches"] == 0
    g = flow.load_model(out / "model.npz")
    assert g.meta["task"] == "regression" and tuple(g.output.shape) == (1,)
    x, y = examples.test_inputs("signal-freq", g)
    values = ev.outputs_to_values(g, golden.run(g, x))
    assert s["quant_rmse"] == pytest.approx(np.sqrt(np.mean((values - y) ** 2)))
    assert 1.0 <= y.min() and y.max() <= 4.0
    rows = dict(flow.summary_rows(s))
    assert rows["quantized RMSE (golden)"] == f"{s['quant_rmse']:.4f}"


def test_float_model_round_trip(regression_run, tmp_path):
    """The model file carries the float model (before QAT); the graph is untouched by it."""
    from ddnhw.quant import float_model
    out, s = regression_run
    path = out / "model.npz"
    fm = float_model.load(path)
    assert fm is not None
    _, _, xte, yte = examples.get("signal-freq").load(0)
    g = flow.load_model(path)
    pred = ev.float_to_values(g, float_model.predict(fm, xte))
    assert np.sqrt(np.mean((pred - yte) ** 2)) == pytest.approx(s["float_rmse"], rel=1e-5)
    bare = tmp_path / "bare.npz"
    flow.save_graph(g, bare)
    assert float_model.load(bare) is None
    assert flow.load_model(bare).to_json() == g.to_json()


def test_cli_evaluate_classifier(tmp_path, capsys):
    m = tmp_path / "m.npz"
    assert main(["train", "--model", "mlp", "--epochs", "2", "--hidden", "4", "--out", str(m),
                 "-q"]) == 0
    js, png = tmp_path / "e.json", tmp_path / "e.png"
    assert main(["evaluate", str(m), "--json", str(js), "--png", str(png), "-q"]) == 0
    out = capsys.readouterr().out
    assert "confusion matrix, golden" in out and "confusion matrix, float" in out
    r = json.loads(js.read_text())
    g = flow.load_model(m)
    x, y = examples.test_inputs("mlp", g)
    gold = r["models"]["golden"]
    assert gold["accuracy"] == pytest.approx(np.mean(golden.classify(g, x) == y))
    assert np.sum(gold["confusion"]) == len(y) == 360
    assert set(r["models"]) == {"float", "golden"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_evaluate_bad_data(tmp_path, capsys):
    m = tmp_path / "m.npz"
    assert main(["train", "--model", "mlp", "--epochs", "1", "--hidden", "4", "--out", str(m),
                 "-q"]) == 0
    bad = tmp_path / "d.npz"
    np.savez(bad, x=np.zeros((3, 5)), y=np.zeros(3))
    assert main(["evaluate", str(m), "--data", str(bad)]) == 2
    assert "x has shape (3, 5)" in capsys.readouterr().err
    assert main(["evaluate", str(m), "--data", "nosuch"]) == 2
    assert main(["evaluate", str(m), "--limit", "0"]) == 2     # a bad argument: exit 2


@pytest.mark.cocotb
@needs_icarus
def test_cli_evaluate_regression_rtl(regression_run, tmp_path, capsys):
    """The regression model in hardware: RTL outputs (cosimulated) == golden, same RMSE."""
    out, s = regression_run
    js = tmp_path / "e.json"
    assert main(["evaluate", str(out / "model.npz"), "--rtl", "--simulator", "icarus",
                 "--limit", "60", "--out", str(tmp_path / "rtl"), "--json", str(js), "-q"]) == 0
    r = json.loads(js.read_text())
    assert r["task"] == "regression" and r["n"] == 60 and r["rtl_mismatches"] == 0
    assert r["models"]["rtl"] == r["models"]["golden"]
    assert set(r["models"]) == {"float", "golden", "rtl"}


def test_cli_train_regression_example(tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert main(["train", "--model", "signal-freq", "--epochs", "1", "--hidden", "4", "--out",
                 str(out), "-q"]) == 0
    assert "quantized RMSE" in capsys.readouterr().out
    assert flow.load_model(out).meta["task"] == "regression"
