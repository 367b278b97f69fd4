#!/usr/bin/env python3
"""Sweep benchmark: wall time of a 16-point sweep (train + estimate + iCE40 build) on 1 and on 2
local Dask workers, the speedup, and whether both runs give the same table.

Writes bench/results/sweep.json and bench/results/sweep.md. The points: the scheme MLP
64-8-10 on the digits, weight bits {2, 3} x {2, 4} per layer, activation bits {2, 3}, pruning
{0, 0.5}, seed 0, each trained (40 float + 20 QAT epochs, one float pre-training shared by all),
estimated and built for the iCEBreaker (measurement top). Each run starts from an empty store;
the YoWASP tools are compiled before the first run, so neither run pays that once-per-machine
cost. The machine's load average is sampled during each run (other jobs skew the speedup).

    python bench/sweep.py [--workers 1,2] [--work work/bench-sweep]
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_dirs, bench_parser  # noqa: E402
from run import machine  # noqa: E402

from ddnhw.sweep import load_config, sweep  # noqa: E402
from ddnhw.sweep.stages import warm_yowasp  # noqa: E402

CONFIG = """
name = "bench: 16 points, train + estimate + iCE40 build"
model = "scheme-mlp"
seeds = [0]
stages = ["estimate", "build"]

[settings]
hidden = 8
epochs = 20
float_epochs = 40
board = "icebreaker"

[axes]
w_bits = {0 = [2, 3], 1 = [2, 4]}
a_bits = [2, 3]
prune = [0.0, 0.5]
"""


class LoadSampler:
    """The 1-minute load average every ``period`` seconds while it runs."""

    def __init__(self, period=5.0):
        self.period, self.samples = period, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.period)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    def summary(self):
        s = self.samples or [os.getloadavg()[0]]
        return {"mean": round(sum(s) / len(s), 2), "min": round(min(s), 2),
                "max": round(max(s), 2)}


def main(argv=None):
    p = bench_parser(__doc__, "work/bench-sweep")
    p.add_argument("--workers", default="1,2", help="worker counts to time")
    a = p.parse_args(argv)
    work, out = bench_dirs(a)
    counts = [int(n) for n in a.workers.split(",")]
    warm_yowasp("ice40")
    runs = []
    tables = {}
    for n in counts:
        d = work / f"w{n}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        (d / "sweep.toml").write_text(CONFIG)
        cfg = load_config(d / "sweep.toml")
        t0 = time.perf_counter()
        with LoadSampler() as load:
            res = sweep(cfg, workers=n, quiet=False)
        wall = time.perf_counter() - t0
        rows = res.rows()
        stage_s = {}
        for r in res.results.values():
            stage_s[r["stage"]] = stage_s.get(r["stage"], 0.0) + r["meta"]["seconds"]
        tables[n] = (cfg.out / "results.csv").read_text()
        runs.append({"workers": n, "wall_seconds": round(wall, 1),
                     "stage_seconds": {k: round(v, 1) for k, v in stage_s.items()},
                     "points": len(rows), "failed": sum(r["status"] != "ok" for r in rows),
                     "load_average": load.summary()})
        print(f"{n} worker(s): {wall:.1f} s, load {load.summary()}", flush=True)
        lines = write_report(out, runs, tables, res)     # after every run: partial results kept
    print("\n".join(lines))


def write_report(out, runs, tables, res):
    """Write sweep.json and sweep.md for the runs so far; returns the markdown lines."""
    base = runs[0]["wall_seconds"]
    for r in runs:
        r["speedup"] = round(base / r["wall_seconds"], 2)
    rows = res.rows()
    built = [r["luts"] for r in rows if r.get("luts")]
    res_doc = {"date": datetime.date.today().isoformat(), "machine": machine(),
               "config": CONFIG, "runs": runs,
               "same_table": len(set(tables.values())) == 1,
               "accuracy": [min(r["accuracy"] for r in rows), max(r["accuracy"] for r in rows)],
               "load_at_write": os.getloadavg(),
               "luts": [min(built, default=None), max(built, default=None)],
               "command": "python bench/sweep.py"}
    (out / "sweep.json").write_text(json.dumps(res_doc, indent=1) + "\n")
    m = res_doc["machine"]
    lines = ["# Sweep benchmark", "",
             f"Measured {res_doc['date']} on {m['cpu']} ({m['cores']} cores), Python "
             f"{m['python']}; `python bench/sweep.py`. 16 points (scheme MLP 64-8-10, "
             f"w_bits {{2,3}}x{{2,4}}, a_bits {{2,3}}, prune {{0, 0.5}}), each trained, "
             f"estimated and built for the iCEBreaker; empty store per run, warm YoWASP.", "",
             "| workers | wall time | speedup | failed points | stage time summed (train / "
             "estimate / build) | load average during the run (mean, min-max) |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        s = r["stage_seconds"]
        lines.append(f"| {r['workers']} | {r['wall_seconds']:.1f} s | {r['speedup']:.2f}x | "
                     f"{r['failed']} | "
                     f"{s.get('pretrain', 0) + s.get('train', 0):.1f} / "
                     f"{s.get('estimate', 0):.1f} / {s.get('build', 0):.1f} s | "
                     f"{r['load_average']['mean']} ({r['load_average']['min']}-"
                     f"{r['load_average']['max']}) |")
    lines += ["", f"Same results table on every worker count: {res_doc['same_table']}. "
              f"Accuracy {res_doc['accuracy'][0]:.4f}-{res_doc['accuracy'][1]:.4f}, "
              f"{res_doc['luts'][0]}-{res_doc['luts'][1]} iCE40 LCs.", ""]
    (out / "sweep.md").write_text("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
