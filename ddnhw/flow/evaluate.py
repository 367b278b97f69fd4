"""Evaluation beyond accuracy (``ddnhw evaluate``): per-class precision, recall and F1 and the
confusion matrix of a classifier, MSE/RMSE/MAE of a regression model, for up to three versions
of one model on one data set: the float model (when the model file carries it,
:mod:`ddnhw.quant.float_model`), the quantized golden model and the RTL (Verilator bulk
cosimulation).

A model file says what it computes in its meta: ``task`` ``"classification"`` (default: the
output is one score per class, the prediction its argmax, first index on ties) or
``"regression"`` (one output value per input: the output code times ``2**-frac`` of the output
type, then ``target_offset + target_scale * value``, the meta's mapping back to the target's
units).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ddnhw import DdnhwError, golden
from ddnhw.ir import Graph

__all__ = ["TASKS", "task_of", "classification_metrics", "regression_metrics", "outputs_to_values",
           "float_to_values", "predictions", "evaluate", "format_report", "write_png",
           "rtl_outputs"]

TASKS = ("classification", "regression")


def task_of(graph: Graph) -> str:
    """The task the model file states (``meta["task"]``, default ``classification``)."""
    task = graph.meta.get("task", "classification")
    if task not in TASKS:
        raise DdnhwError(f"model meta: task {task!r} is not known ({', '.join(TASKS)})")
    return task


def _target_map(graph):
    return float(graph.meta.get("target_offset", 0.0)), float(graph.meta.get("target_scale", 1.0))


def outputs_to_values(graph: Graph, out) -> np.ndarray:
    """A regression graph's integer outputs ``(N, 1)`` as target values ``(N,)``."""
    out = np.asarray(out).reshape(len(out), -1)
    if out.shape[1] != 1:
        raise DdnhwError(f"regression model: {out.shape[1]} outputs per input, expected 1")
    off, scale = _target_map(graph)
    return off + scale * out[:, 0].astype(np.float64) * 2.0 ** -graph.output.dtype.frac


def float_to_values(graph: Graph, out) -> np.ndarray:
    """A float regression model's real outputs ``(N, 1)`` as target values ``(N,)``."""
    off, scale = _target_map(graph)
    return off + scale * np.asarray(out, np.float64).reshape(len(out), -1)[:, 0]


def predictions(graph: Graph, out, real=False) -> np.ndarray:
    """Class indices (classification) or target values (regression) of outputs ``out``: the
    graph's integer outputs, or with ``real`` the float model's."""
    if task_of(graph) == "regression":
        return float_to_values(graph, out) if real else outputs_to_values(graph, out)
    out = np.asarray(out)
    return np.argmax(out.reshape(len(out), -1), axis=-1)


def _pair(y_true, y_pred, dtype, what):
    y_true = np.asarray(y_true, dtype).ravel()
    y_pred = np.asarray(y_pred, dtype).ravel()
    if y_true.shape != y_pred.shape:
        raise DdnhwError(f"metrics: {len(y_true)} {what} but {len(y_pred)} predictions")
    if len(y_true) == 0:
        raise DdnhwError("metrics: no inputs to evaluate")
    return y_true, y_pred


def classification_metrics(y_true, y_pred, n_classes=None) -> dict:
    """Accuracy, confusion matrix (rows: true class, columns: predicted), per-class precision,
    recall, F1 and support, and their macro and support-weighted means. A class never
    predicted has precision 0 (and F1 0); a class absent from ``y_true`` has recall 0 and is
    left out of the means (support 0)."""
    y_true, y_pred = _pair(y_true, y_pred, np.int64, "labels")
    k = int(n_classes or max(y_true.max(), y_pred.max()) + 1)
    if y_true.min() < 0 or y_pred.min() < 0 or max(y_true.max(), y_pred.max()) >= k:
        raise DdnhwError(f"metrics: labels or predictions outside 0..{k - 1}")
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(0), cm.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    pr = precision + recall
    f1 = np.divide(2 * precision * recall, pr, out=np.zeros(k), where=pr > 0)
    present = support > 0
    w = support / support.sum()

    def means(v):
        return {"macro": float(v[present].mean()), "weighted": float(np.sum(v * w))}
    return {"n": int(len(y_true)), "accuracy": float(tp.sum() / len(y_true)),
            "confusion": cm.tolist(),
            "per_class": [{"class": c, "precision": float(precision[c]),
                           "recall": float(recall[c]), "f1": float(f1[c]),
                           "support": int(support[c])} for c in range(k)],
            "precision": means(precision), "recall": means(recall), "f1": means(f1)}


def regression_metrics(y_true, y_pred) -> dict:
    """MSE, RMSE, MAE, the largest absolute error, and R² (1 - MSE / variance of the
    targets)."""
    y_true, y_pred = _pair(y_true, y_pred, np.float64, "targets")
    err = y_pred - y_true
    mse = float(np.mean(err ** 2))
    var = float(np.var(y_true))
    return {"n": int(len(y_true)), "mse": mse, "rmse": float(np.sqrt(mse)),
            "mae": float(np.mean(np.abs(err))), "max_abs_error": float(np.max(np.abs(err))),
            "r2": float(1 - mse / var) if var > 0 else None}


def evaluate(graph: Graph, x_int, y, *, float_outputs=None, rtl_outputs=None,
             n_classes=None) -> dict:
    """Metrics of the quantized golden model on integer inputs ``x_int`` against ``y``, and of
    the float model's outputs ``float_outputs`` and the RTL's ``rtl_outputs`` (each optional,
    on the same inputs). ``{"task", "n", "models": {"float"|"golden"|"rtl": metrics},
    "rtl_mismatches"}`` (RTL outputs that differ from golden in any element)."""
    task = task_of(graph)
    gold = golden.run(graph, x_int)
    outs = {"float": float_outputs, "golden": gold, "rtl": rtl_outputs}
    res = {"task": task, "n": int(len(y)), "models": {}, "rtl_mismatches": None}
    if task == "classification":
        k = int(n_classes or np.prod(graph.output.shape))
    for name, out in outs.items():
        if out is None:
            continue
        if len(out) != len(y):
            raise DdnhwError(f"evaluate: {name} gave {len(out)} outputs for {len(y)} inputs")
        pred = predictions(graph, out, real=name == "float")
        res["models"][name] = (classification_metrics(y, pred, k)
                               if task == "classification" else regression_metrics(y, pred))
    if rtl_outputs is not None:
        r = np.asarray(rtl_outputs).reshape(gold.shape)
        res["rtl_mismatches"] = int(np.sum(np.any(r != gold, axis=tuple(range(1, gold.ndim)))))
    return res


def _pct(v):
    return f"{100 * v:.2f}"


def format_report(res: dict) -> str:
    """The metrics as text tables: for classifiers a per-class table (precision / recall / F1
    per model) and each model's confusion matrix; for regression one row per model."""
    models = res["models"]
    lines = []
    if res["task"] == "regression":
        lines.append(f"{'model':<8} {'MSE':>10} {'RMSE':>10} {'MAE':>10} {'max |err|':>10} "
                     f"{'R2':>8}")
        for name, m in models.items():
            r2 = "n/a" if m["r2"] is None else f"{m['r2']:.4f}"
            lines.append(f"{name:<8} {m['mse']:>10.5f} {m['rmse']:>10.5f} {m['mae']:>10.5f} "
                         f"{m['max_abs_error']:>10.5f} {r2:>8}")
    else:
        names = list(models)
        lines.append("accuracy: " + ", ".join(f"{n} {_pct(models[n]['accuracy'])} %"
                                              for n in names))
        head = f"{'class':>5} {'support':>7}" + "".join(
            f" | {n + ' P':>10} {'R':>6} {'F1':>6}" for n in names)
        lines += ["", "per class (%): precision, recall, F1", head, "-" * len(head)]
        for c, row in enumerate(models[names[0]]["per_class"]):
            cells = "".join(f" | {_pct(models[n]['per_class'][c]['precision']):>10} "
                            f"{_pct(models[n]['per_class'][c]['recall']):>6} "
                            f"{_pct(models[n]['per_class'][c]['f1']):>6}" for n in names)
            lines.append(f"{c:>5} {row['support']:>7}{cells}")
        for avg in ("macro", "weighted"):
            cells = "".join(f" | {_pct(models[n]['precision'][avg]):>10} "
                            f"{_pct(models[n]['recall'][avg]):>6} "
                            f"{_pct(models[n]['f1'][avg]):>6}" for n in names)
            lines.append(f"{avg:>13}{cells}")
        for n in names:
            cm = np.asarray(models[n]["confusion"])
            w = max(3, len(str(cm.max())))
            lines += ["", f"confusion matrix, {n} (rows: true class, columns: predicted)",
                      "     " + "".join(f"{c:>{w + 1}}" for c in range(len(cm)))]
            lines += [f"{c:>4} " + "".join(f"{v:>{w + 1}}" for v in row)
                      for c, row in enumerate(cm)]
    if res.get("rtl_mismatches") is not None:
        lines += ["", f"RTL vs golden: {res['rtl_mismatches']} of {res['n']} outputs differ"]
    return "\n".join(lines)


def write_png(res: dict, path, y_true=None, preds=None, title="") -> Path:
    """A PNG of the result: one confusion-matrix heat map per model (classification) or
    predicted against true values per model (regression, needs ``y_true`` and ``preds``:
    ``{model: values}``). Needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DdnhwError("--png needs matplotlib: pip install matplotlib") from None
    from ddnhw.atomic import atomic_open
    names = list(res["models"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 4.3), squeeze=False)
    for ax, n in zip(axes[0], names):
        m = res["models"][n]
        if res["task"] == "classification":
            cm = np.asarray(m["confusion"])
            ax.imshow(cm, cmap="Blues")
            for (i, j), v in np.ndenumerate(cm):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                            color="white" if v > cm.max() / 2 else "black")
            ax.set_xticks(range(len(cm)))
            ax.set_yticks(range(len(cm)))
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(f"{n}: accuracy {_pct(m['accuracy'])} %, macro F1 "
                         f"{_pct(m['f1']['macro'])} %", fontsize=9)
        else:
            ax.scatter(y_true, preds[n], s=4, alpha=0.5)
            lo, hi = float(np.min(y_true)), float(np.max(y_true))
            ax.plot([lo, hi], [lo, hi], "k--", lw=1)
            ax.set_xlabel("true")
            ax.set_ylabel("predicted")
            ax.set_title(f"{n}: RMSE {m['rmse']:.4f}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path


def rtl_outputs(graph: Graph, x_int, out_dir, *, board=None, folding="auto",
                simulator="verilator", seed=0) -> dict:
    """The RTL's outputs on ``x_int``: generate the circuit into ``out_dir`` (the folding
    :func:`ddnhw.flow.decide` picks for ``board``/``folding``, as ``ddnhw generate``), then
    cosimulate every input in bulk mode under 30 % idle / 30 % backpressure.
    ``{"outputs", "mismatches", "cycles", "ii_cycles", "folding_mode", "rtl_dir"}``."""
    import ddnhw.flow.core as core
    man = core.generate(graph, out_dir, board=board, folding=folding)
    r = core.cosim_check(graph, x_int, out_dir, simulator=simulator, seed=seed,
                         build_dir=Path(out_dir) / f"sim_{simulator}")
    return {"outputs": r["outputs"], "mismatches": r["mismatches"], "cycles": r["cycles"],
            "ii_cycles": man["ii_cycles"], "folding_mode": man["folding_mode"],
            "rtl_dir": str(out_dir), "message": r["message"]}
