"""``ddnhw evaluate MODEL --data D``: per-class precision, recall and F1 and the confusion
matrix (classifiers) or MSE/RMSE/MAE (regression models) of the float model (when the model
file carries it), the quantized golden model and, with ``--rtl``, the RTL (Verilator bulk
cosimulation), on one data set."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def _positive_int(text):
    import argparse
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {v}")
    return v


def load_data(graph, spec, seed=None):
    """``(x_real or None, x_int, y, name)`` for ``--data``: ``test`` (the test split of the
    example named in the model file), an example name (its test split), or a ``.npz`` file with
    ``y`` and either ``x`` (real inputs in [0, 1]) or ``x_int`` (integer input codes)."""
    from ddnhw import DdnhwError, examples, golden
    if seed is None:
        seed = int(graph.meta.get("seed", 0))
    shape = tuple(graph.input.shape)
    if spec.endswith(".npz"):
        p = Path(spec)
        try:
            with np.load(p, allow_pickle=False) as z:
                files = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise DdnhwError(f"--data {p}: cannot read: {e}") from None
        if "y" not in files or not ({"x", "x_int"} & set(files)):
            raise DdnhwError(f"--data {p}: needs arrays 'y' and 'x' (real inputs in [0, 1]) or "
                             f"'x_int' (integer input codes); it has {sorted(files)}")
        y = files["y"]
        if "x" in files:
            x = np.asarray(files["x"], np.float64)
            if x.ndim == 0 or x.size != len(x) * int(np.prod(shape)) or len(x) != len(y):
                raise DdnhwError(f"--data {p}: x has shape {x.shape} for {len(y)} labels, the "
                                 f"model takes (N, {', '.join(map(str, shape))})")
            x = x.reshape(len(x), -1)
            return x, golden.quantize_input(graph, x.reshape((len(x),) + shape)), y, str(p)
        xi = files["x_int"]
        if xi.ndim == 0 or xi.size != len(xi) * int(np.prod(shape)) or len(xi) != len(y):
            raise DdnhwError(f"--data {p}: x_int has shape {xi.shape} for {len(y)} labels, the "
                             f"model takes (N, {', '.join(map(str, shape))})")
        return None, golden.check_input(graph, xi.reshape((len(xi),) + shape)), y, str(p)
    name = graph.meta.get("example") if spec == "test" else spec
    if name is None:
        raise DdnhwError("--data test: the model file names no example; give an example name "
                         "or a .npz file")
    ex = examples.get(name)
    _, _, xte, yte = ex.load(seed)
    x = np.asarray(xte, np.float64).reshape(len(xte), -1)
    if x.shape[1] != int(np.prod(shape)):
        raise DdnhwError(f"--data {name}: its inputs have {x.shape[1]} values, the model takes "
                         f"{int(np.prod(shape))} ({'x'.join(map(str, shape))})")
    return x, golden.quantize_input(graph, x.reshape((len(x),) + shape)), yte, \
        f"{name} test split ({ex.dataset}, seed {seed})"


def cmd_evaluate(a):
    from ddnhw import DdnhwError, flow, golden
    import ddnhw.flow.evaluate as ev
    graph = flow.load_model(a.model)
    task = ev.task_of(graph)
    x, xi, y, what = load_data(graph, a.data, a.seed)
    if a.limit:
        x, xi, y = (None if x is None else x[:a.limit]), xi[:a.limit], y[:a.limit]
    log = (lambda m: None) if a.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    float_out = None
    if not a.no_float:
        from ddnhw.quant import float_model
        fm = float_model.load(a.model)
        if fm is None:
            log("the model file carries no float model: golden" + (" and RTL" if a.rtl else "")
                + " only")
        elif x is None:
            log("--data gives integer codes only: no float model evaluation")
        else:
            float_out = float_model.predict(fm, x)
    rtl = None
    if a.rtl:
        out = Path(a.out)
        log(f"generating the RTL into {out} and cosimulating {len(xi)} inputs ({a.simulator}, "
            f"bulk mode, 30 % idle / 30 % backpressure) ...")
        rtl = ev.rtl_outputs(graph, xi, out, board=a.board, simulator=a.simulator, seed=a.seed or 0)
        if rtl["mismatches"]:
            log(f"RTL differs from golden: {rtl['message']}")
    res = ev.evaluate(graph, xi, y, float_outputs=float_out,
                      rtl_outputs=None if rtl is None else rtl["outputs"])
    res.update(model=str(a.model), data=what, example=graph.meta.get("example"))
    if rtl is not None:
        res["rtl"] = {k: rtl[k] for k in ("mismatches", "cycles", "ii_cycles", "folding_mode",
                                          "rtl_dir")}
    print(f"{a.model} on {what}: {res['n']} inputs, {task}")
    print(ev.format_report(res))
    if a.png:
        preds = None
        if task == "regression":
            preds = {"golden": ev.outputs_to_values(graph, golden.run(graph, xi))}
            if float_out is not None:
                preds["float"] = ev.float_to_values(graph, float_out)
            if rtl is not None:
                preds["rtl"] = ev.outputs_to_values(graph, rtl["outputs"])
            preds = {k: preds[k] for k in res["models"]}
        ev.write_png(res, a.png, y_true=y, preds=preds,
                     title=f"{graph.meta.get('example', Path(a.model).name)} on {what}")
        print(f"wrote {a.png}")
    if a.json:
        flow.write_json_atomic(Path(a.json), res)
        print(f"wrote {a.json}")
    if rtl is not None and rtl["mismatches"]:
        raise DdnhwError(f"RTL differs from golden on {rtl['mismatches']} of {len(xi)} inputs "
                         f"({rtl['message']})")
    return 0


def add_parser(sub):
    s = sub.add_parser("evaluate", help="per-class precision/recall/F1 and confusion matrix "
                                        "(or MSE/RMSE) of the float, quantized and RTL models")
    s.add_argument("model", help="model file (.npz)")
    s.add_argument("--data", default="test",
                   help="'test' (default: the test split of the model's example), an example "
                        "name (its test split), or a .npz with 'y' and 'x' (real inputs in "
                        "[0, 1]) or 'x_int' (integer input codes)")
    s.add_argument("--seed", type=int, help="data seed of a generated data set (default: the "
                                            "model file's)")
    s.add_argument("--limit", type=_positive_int, help="evaluate the first N inputs only")
    s.add_argument("--rtl", action="store_true",
                   help="also generate the RTL and cosimulate every input (Verilator bulk)")
    s.add_argument("--board", help="--rtl: the circuit for this board (as `ddnhw generate "
                                   "--board`; default: the model's folding, else unrolled)")
    s.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"],
                   help="--rtl: simulator (default verilator)")
    s.add_argument("--out", default="out/evaluate", help="--rtl: RTL and simulator folder")
    s.add_argument("--no-float", action="store_true", help="skip the float model")
    s.add_argument("--png", help="write the confusion matrices (or predicted vs true) here")
    s.add_argument("--json", help="write every metric as one JSON object here")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_evaluate)
