"""Accuracy of the quantized LSTM (QAT) on the digits rows, over several seeds (not in CI).

The ``gru`` example's setting (ddnhw/examples/records.py): the 8x8 digits read row by row
(8 steps of 8 pixels), recurrent layer with hidden 16 -> dense 10, 4-bit inputs and weights,
s8.6 state, 64-entry tables; ``--epochs`` float epochs then as many QAT epochs. Per row: float,
fake-quantized and integer-mode (``QuantSeqClassifier.int_forward``, what the hardware
computes) test accuracy, mean and standard deviation over the seeds.

    .venv/bin/python bench/lstm_accuracy.py [--seeds 5] [--epochs 20]
        [--configs "lstm,gru,lstm:cell_bits=8,lstm:lut_bits=8;epochs=40"] [--out bench/results]

A config is a cell and optional ``SeqConfig`` settings (``;`` separated); ``epochs`` there
overrides ``--epochs`` for that row.

Writes ``<out>/lstm_accuracy.json`` and ``<out>/lstm_accuracy.md``.
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


def parse_config(text):
    """``"lstm"`` or ``"lstm:cell_bits=8,..."`` -> ``(label, cell, settings)``."""
    cell, _, rest = text.partition(":")
    kw = {}
    for item in filter(None, rest.split(";")):
        k, _, v = item.partition("=")
        kw[k.strip()] = int(v)
    return text, cell.strip(), kw


def run_one(cell, kw, seed, epochs, log):
    kw = dict(kw)
    epochs = kw.pop("epochs", epochs)
    import torch
    from ddnhw.quant.rnn import SeqConfig, train_seq
    from ddnhw.examples.data import digits

    torch.set_num_threads(1)
    xtr, ytr, xte, yte = digits(seed)      # the digits split; 8 rows of 8 pixels per image
    xtr, xte = xtr.reshape(-1, 8, 8), xte.reshape(-1, 8, 8)
    cfg = SeqConfig(cell=cell, input_size=8, hidden=16, n_classes=10, steps=8, in_bits=4,
                    w_bits=4, float_epochs=epochs, qat_epochs=epochs, seed=seed, **kw)
    r = train_seq(xtr, ytr, xte, yte, cfg)
    m = r.model
    xi = m.inp.int_forward(torch.as_tensor(xte, dtype=torch.float32))
    int_acc = float(np.mean(m.int_forward(xi).argmax(1).numpy() == yte))
    row = {"seed": seed, "epochs": epochs, "float_accuracy": r.float_accuracy,
           "quant_accuracy": r.quant_accuracy, "int_accuracy": int_acc,
           "seconds": round(r.seconds, 1)}
    if cell == "lstm":
        row["cell_bits"] = m.rec.cell_bits
    log(f"{cell} {kw} seed {seed}: float {r.float_accuracy:.4f} quant {r.quant_accuracy:.4f} "
        f"int {int_acc:.4f} ({r.seconds:.0f} s)")
    return row


def summary(runs):
    out = {}
    for k in ("float_accuracy", "quant_accuracy", "int_accuracy"):
        v = np.array([r[k] for r in runs])
        out[k] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
    return out


def machine():
    return {"node": platform.node(), "machine": platform.machine(),
            "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": __import__("torch").__version__}


def markdown(res):
    lines = ["# LSTM accuracy (QAT) on the digits rows", "",
             f"- date: {res['date']}; machine: {res['machine']['node']} "
             f"({res['machine']['machine']}, {res['machine']['cpus']} CPUs shared with other "
             f"jobs), torch {res['machine']['torch']}",
             f"- model: {res['model']}",
             f"- E float epochs then E QAT epochs per seed (E = {res['epochs']} unless the "
             f"config says otherwise); seeds {res['seeds']}; mean ± standard deviation "
             f"(n - 1) over the seeds; int = integer-mode PyTorch (the exported integer model) "
             f"on the 360 test digits",
             "", "| config | float | quantized (QAT forward) | int mode | per seed (int) |",
             "|---|---|---|---|---|"]
    for row in res["rows"]:
        ms = [f"{100 * row['summary'][k]['mean']:.2f} ± {100 * row['summary'][k]['std']:.2f} %"
              for k in ("float_accuracy", "quant_accuracy", "int_accuracy")]
        per = ", ".join(f"{100 * r['int_accuracy']:.1f}" for r in row["runs"])
        lines.append(f"| {row['config']} | {' | '.join(ms)} | {per} |")
    lines += ["", f"Reproduce: `{res['command']}`", ""]
    return "\n".join(lines)


def main(argv=None):
    p = bench_parser(__doc__, "/tmp/bench-lstm-accuracy")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--configs", default="lstm,gru",
                   help="comma separated; settings after ':' separated by ';', e.g. "
                        "'lstm:cell_bits=8'")
    a = p.parse_args(argv)
    _, out = bench_dirs(a)
    t0 = time.perf_counter()
    rows = []
    for text in a.configs.split(","):
        label, cell, kw = parse_config(text)
        runs = [run_one(cell, kw, s, a.epochs, print) for s in range(a.seeds)]
        rows.append({"config": label, "cell": cell, "settings": kw, "runs": runs,
                     "summary": summary(runs)})
    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "machine": machine(),
           "command": "python bench/lstm_accuracy.py " + " ".join(argv or sys.argv[1:]),
           "model": "digits rows (8 steps x 8 pixels, 4-bit inputs) -> recurrent hidden 16 "
                    "(4-bit weights, s8.6 state, 64-entry tables on [-4, 4), gates 1/64; LSTM "
                    "cell state s<cell_bits>.6) -> dense 10",
           "epochs": a.epochs, "seeds": list(range(a.seeds)), "rows": rows,
           "seconds": round(time.perf_counter() - t0, 1)}
    (out / "lstm_accuracy.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "lstm_accuracy.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
