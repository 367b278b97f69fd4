#!/usr/bin/env python3
"""Energy per inference (ddnhw.energy) of models on a board: unrolled vs folded, and timing.

For each model file and each folding (``unrolled``, the automatic decision ``auto``, and the
planner's folding for each ``--ii`` given), estimate the energy per inference on the model's
test split (or random vectors for models without an example) with
:func:`ddnhw.energy.estimate_energy`, time it, and write bench/results/energy.{json,md}
(machine and date included). ``--calibrate`` refits the iCE40UP5K coefficients to the
published measurements and prints the fit (see ddnhw/energy/calibration.py).

    python bench/energy.py --models examples/digits_mlp.npz --ii 32,64
    python bench/energy.py --calibrate
"""
from __future__ import annotations

import datetime
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_dirs, bench_parser  # noqa: E402


def machine():
    import os
    return {"machine": platform.machine(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average": os.getloadavg()[0]}


def inputs_for(graph, spec):
    from ddnhw import examples
    try:
        return examples.input_vectors(graph, spec), spec
    except Exception:      # a model without an example: random vectors
        return examples.input_vectors(graph, "random:256"), "random:256"


def run_model(path, board, foldings, work, spec, log=print):
    import resource
    from ddnhw.energy import estimate_energy
    from ddnhw.energy.objective import candidate_foldings
    from ddnhw.ir import load_graph
    g = load_graph(path)
    x, used = inputs_for(g, spec)
    cands = []
    for f in foldings:
        if f == "unrolled":
            cands.append(("unrolled", "none"))
        elif f == "auto":
            cands.append(("auto", "auto"))
        else:
            ii = int(f)
            for label, fold in candidate_foldings(g, board, None):
                if label == f"II {ii}":
                    cands.append((label, fold))
    rows = []
    for label, fold in cands:
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        r = estimate_energy(g, board, work / Path(path).stem / label.replace(" ", ""),
                            inputs=x, folding=fold)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
               + s1.ru_utime + s1.ru_stime - s0.ru_utime - s0.ru_stime)
        row = {"model": str(path), "board": board, "folding": label, "inputs": used,
               "vectors": r["vectors"], "energy_nj_per_inference": r["energy_nj_per_inference"],
               "dynamic_power_mw_board_clock": r["dynamic_power_mw_board_clock"],
               "static_power_mw": r["static_power_mw"],
               "cycles_per_inference": r["activity"]["cycles_per_inference"],
               "inferences_per_s_board_clock": r["inferences_per_s_board_clock"],
               "breakdown": r["breakdown"], "cells": r["cells"],
               "gate_level_mismatches": r["gate_level_mismatches"],
               "seconds_wall": round(time.monotonic() - t0, 1), "seconds_cpu": round(cpu, 1),
               "seconds": r["seconds"], "error_band": r["error_band"]["relative"]}
        rows.append(row)
        log(f"{path} {label}: {row['energy_nj_per_inference']:.3f} nJ, "
            f"{row['seconds_wall']} s wall, {row['seconds_cpu']} s CPU")
    return rows


def markdown(rows, info):
    out = [f"# Energy per inference (ddnhw.energy), {info['date']}", "",
           f"Machine: {info['cpus']} cores {info['processor']}, Python {info['python']}, load "
           f"average at start {info['load_average']:.1f} (shared machine: wall times are "
           "inflated; CPU time = this process + its tools).", "",
           "| model | board | folding | inputs | nJ/inference (dynamic) | mW at board clock "
           "(dyn + static) | cycles/inference | cells (LUT4 / carry / FF) | gate == golden | "
           "time wall / CPU |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["cells"]
        lut = sum(v for k, v in c.items() if "LUT" in k)
        car = sum(v for k, v in c.items() if "CARRY" in k or "CCU2" in k)
        ff = sum(v for k, v in c.items() if "DFF" in k or "TRELLIS_FF" in k)
        static = "n/a" if r["static_power_mw"] is None else f"{r['static_power_mw']:.2f}"
        out.append(f"| {Path(r['model']).stem} | {r['board']} | {r['folding']} | {r['inputs']} "
                   f"({r['vectors']}) | {r['energy_nj_per_inference']:.3f} ± "
                   f"{r['error_band']:.0%} | {r['dynamic_power_mw_board_clock']:.2f} + "
                   f"{static} | {r['cycles_per_inference']:.2f} | {lut} / {car} / {ff} | "
                   f"{'yes' if r['gate_level_mismatches'] == 0 else 'NO'} | "
                   f"{r['seconds_wall']:.0f} s / {r['seconds_cpu']:.0f} s |")
    return "\n".join(out) + "\n"


def main():
    p = bench_parser(__doc__, "out/bench_energy")
    p.add_argument("--models", default="examples/digits_mlp.npz")
    p.add_argument("--board", default="icebreaker")
    p.add_argument("--foldings", default="unrolled", help="unrolled, auto and/or IIs")
    p.add_argument("--inputs", default="test")
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--name", default="energy", help="results file stem")
    a = p.parse_args()
    work, out = bench_dirs(a)
    info = machine()
    if a.calibrate:
        from ddnhw.energy.calibration import calibrate
        c = calibrate(work / "calibration")
        c["predicted_ua"] = {k: list(v) for k, v in c["predicted_ua"].items()}
        (out / "energy_calibration.json").write_text(json.dumps({**info, **c}, indent=1) + "\n")
        for k, v in c["relative_error"].items():
            print(f"{k}: measured {c['predicted_ua'][k][0]} µA, model "
                  f"{c['predicted_ua'][k][1]:.1f} µA ({v:+.1%})")
        print("coefficients (pJ):", c["coefficients_pj"])
        return 0
    rows = []
    for m in a.models.split(","):
        rows += run_model(ROOT / m if not Path(m).is_absolute() else Path(m), a.board,
                          a.foldings.split(","), work, a.inputs)
    (out / f"{a.name}.json").write_text(json.dumps({**info, "rows": rows}, indent=1) + "\n")
    (out / f"{a.name}.md").write_text(markdown(rows, info))
    print(markdown(rows, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
