"""Accuracy over seeds, per example and setting: float, QAT and quantized (golden) accuracy,
mean ± standard deviation over the seeds (not in CI).

Each config is an example of ``ddnhw demo --model`` with optional settings overrides::

    python bench/accuracy.py [--seeds 5] [--configs "mlp,mlp:distill=0.5,cnn,gru"]
        [--name accuracy] [--out bench/results]

Settings after ``:`` are ``;``-separated ``key=value`` (ints, floats, true/false). For every
config and seed: train (``ddnhw.examples.train``: the example's trainer, PyTorch with one
thread), export, and score the exported integer model with the golden model on the test split
(RMSE for a regression example). Writes ``<out>/<name>.json`` and ``<out>/<name>.md``.

Seeds change the training (initialisation and batch order), not the data split, except for
generated data sets (``waveforms``), whose split is generated from the seed as well.
Floating-point training is not bit-reproducible across CPUs (BLAS kernels sum in different
orders), so single runs differ between machines; means over seeds are what we compare.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_dirs, bench_parser  # noqa: E402


def _value(text):
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for f in (int, float):
        try:
            return f(t)
        except ValueError:
            pass
    return t


def parse_config(text):
    """``"mlp"`` or ``"mlp:distill=0.5;epochs=200"`` -> ``(label, example, settings)``."""
    name, _, rest = text.partition(":")
    kw = {}
    for item in filter(None, rest.split(";")):
        k, _, v = item.partition("=")
        kw[k.strip()] = _value(v)
    return text, name.strip(), kw


def run_one(name, kw, seed, log=print):
    """Train example ``name`` with settings ``kw`` and seed ``seed``; the row of scores."""
    import torch
    from ddnhw import examples, golden
    from ddnhw.flow import pipeline

    torch.set_num_threads(1)
    ex = examples.get(name)
    # the example's settings with the overrides; a trainer's optional settings (distill,
    # in_bits, qat_epochs, input_norm, ...) may be given even when the record does not list them
    t = ex.trainer(ex, ex.load(seed), {**pipeline.resolve_settings(ex), **kw}, seed, None)
    x, y = pipeline.test_inputs(ex, t.graph, seed)
    acc, rmse = pipeline.score(t.graph, golden.run(t.graph, x), y)
    row = {"seed": seed, "seconds": round(t.seconds, 1)}
    if ex.task == "regression":
        row.update(float_rmse=t.float_accuracy, qat_rmse=t.qat_accuracy, quant_rmse=rmse)
        log(f"{name} {kw} seed {seed}: RMSE float {t.float_accuracy:.4f} quant {rmse:.4f} "
            f"({t.seconds:.0f} s)")
    else:
        row.update(float_accuracy=t.float_accuracy, qat_accuracy=t.qat_accuracy,
                   quant_accuracy=acc)
        log(f"{name} {kw} seed {seed}: float {t.float_accuracy:.4f} quant {acc:.4f} "
            f"({t.seconds:.0f} s)")
    return row, t


def stats(runs, key):
    v = np.array([r[key] for r in runs], np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max())}


def summary(runs):
    keys = [k for k in ("float_accuracy", "qat_accuracy", "quant_accuracy", "float_rmse",
                        "qat_rmse", "quant_rmse") if k in runs[0]]
    return {k: stats(runs, k) for k in keys}


def machine():
    import torch
    return {"node": platform.node(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "cpu_model": _cpu_model()}


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def fmt(s, pct=True):
    if pct:
        return f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f} %"
    return f"{s['mean']:.4f} ± {s['std']:.4f}"


def table(rows):
    """Markdown table lines of ``rows`` (each with ``config``, ``runs``, ``summary``)."""
    lines = ["| config | float | quantized (golden) | quantized − float (mean) | per seed "
             "(quantized) |", "|---|---|---|---|---|"]
    for row in rows:
        s = row["summary"]
        if "quant_rmse" in s:
            per = ", ".join(f"{r['quant_rmse']:.3f}" for r in row["runs"])
            d = s["quant_rmse"]["mean"] - s["float_rmse"]["mean"]
            lines.append(f"| {row['config']} (RMSE) | {fmt(s['float_rmse'], False)} | "
                         f"{fmt(s['quant_rmse'], False)} | {d:+.4f} | {per} |")
        else:
            per = ", ".join(f"{100 * r['quant_accuracy']:.1f}" for r in row["runs"])
            d = 100 * (s["quant_accuracy"]["mean"] - s["float_accuracy"]["mean"])
            lines.append(f"| {row['config']} | {fmt(s['float_accuracy'])} | "
                         f"{fmt(s['quant_accuracy'])} | {d:+.2f} points | {per} |")
    return lines


def markdown(res, title="Accuracy over seeds"):
    m = res["machine"]
    lines = [f"# {title}", "",
             f"- date: {res['date']}; machine: {m['cpu_model']} ({m['machine']}, {m['cpus']} "
             f"CPUs, shared with other jobs), Python {m['python']}, torch {m['torch']} (one "
             f"thread)",
             f"- seeds {res['seeds']}; mean ± standard deviation (n - 1) over the seeds; "
             f"quantized = the exported integer model (golden, bit-exact with the RTL) on the "
             f"example's test split; settings: the example's defaults (`ddnhw/examples/"
             f"records.py`) with the config's overrides",
             "- float training is not bit-reproducible across CPUs (BLAS summation order), so "
             "single seeds differ between machines; everything after export is exact integer "
             "arithmetic and reproducible", ""]
    lines += table(res["rows"])
    lines += ["", f"Reproduce: `{res['command']}` ({res['seconds']:.0f} s)", ""]
    return "\n".join(lines)


def run_configs(configs, seeds, log=print, done=None):
    """The rows of ``configs`` over ``seeds`` seeds; ``done(rows)`` after each config (the
    results so far are written even if a later config is interrupted)."""
    rows = []
    for text in configs:
        label, name, kw = parse_config(text)
        runs = [run_one(name, kw, s, log)[0] for s in range(seeds)]
        rows.append({"config": label, "example": name, "settings": kw, "runs": runs,
                     "summary": summary(runs)})
        if done:
            done(rows)
    return rows


def main(argv=None):
    p = bench_parser(__doc__, "/tmp/bench-accuracy")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--configs", default="mlp,cnn,cnn1d,gru,gru-signal,lstm,rnn",
                   help="comma separated examples, settings after ':' separated by ';'")
    p.add_argument("--name", default="accuracy", help="output file stem")
    p.add_argument("--title", default="Accuracy over seeds, per example")
    a = p.parse_args(argv)
    _, out = bench_dirs(a)
    t0 = time.perf_counter()

    def write(rows):
        res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "machine": machine(),
               "command": "python bench/accuracy.py " + " ".join(argv or sys.argv[1:]),
               "seeds": list(range(a.seeds)), "rows": rows,
               "seconds": round(time.perf_counter() - t0, 1)}
        (out / f"{a.name}.json").write_text(json.dumps(res, indent=1) + "\n")
        (out / f"{a.name}.md").write_text(markdown(res, a.title))
        return res
    print(markdown(write(run_configs(a.configs.split(","), a.seeds, done=write)), a.title))


if __name__ == "__main__":
    main()
