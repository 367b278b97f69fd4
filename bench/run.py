#!/usr/bin/env python3
"""Benchmarks of the demo flow: writes bench/results/bench.json and bench/results/bench.md.

Measures: time to generate RTL, golden-model inferences/s, cosimulation vectors/s on each
simulator (bulk HDL harness and cocotb Python BFMs), synthesis time, and the hardware table
(LUTs, FFs, DSPs, BRAMs, Fmax, latency, II, inferences/s) for iCEBreaker and ULX3S-85F.

    python bench/run.py [--model examples/digits_mlp.npz] [--boards icebreaker,ulx3s-85f]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddnhw import examples, flow, golden  # noqa: E402
from ddnhw.ir import load_graph  # noqa: E402


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "examples" / "digits_mlp.npz"))
    ap.add_argument("--boards", default="icebreaker,ulx3s-85f")
    ap.add_argument("--bulk-vectors", type=int, default=100_000,
                    help="vectors for Verilator bulk mode (Icarus gets a tenth: it is slow)")
    ap.add_argument("--bfm-vectors", type=int, default=1_000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ddnhw-bench-", dir=out))
    graph = load_graph(a.model)
    res = {"date": datetime.date.today().isoformat(), "machine": machine(),
           "model": os.path.relpath(a.model, ROOT), "meta": graph.meta}

    # RTL generation
    times = []
    for k in range(3):
        t = time.perf_counter()
        man = flow.generate(graph, work / "rtl")
        times.append(time.perf_counter() - t)
    res["generate_seconds"] = min(times)
    res["latency_cycles"], res["ii_cycles"] = man["latency_cycles"], man["ii_cycles"]
    print(f"generate: {min(times):.2f} s", flush=True)

    # golden model
    xg = flow.random_vectors(graph, 200_000, seed=1)
    t = time.perf_counter()
    golden.run(graph, xg)
    res["golden_inferences_per_s"] = len(xg) / (time.perf_counter() - t)
    x_test, y_test = examples.test_inputs("mlp", graph)
    res["quant_accuracy"] = float(np.mean(golden.classify(graph, x_test) == y_test))
    res["float_accuracy"] = graph.meta.get("float_accuracy")
    print(f"golden: {res['golden_inferences_per_s']:,.0f} inferences/s", flush=True)

    # cosimulation
    res["cosim"] = []
    sims = ["verilator"] + (["icarus"] if shutil.which("iverilog") else [])
    for sim in sims:
        bulk = a.bulk_vectors if sim == "verilator" else max(1, a.bulk_vectors // 10)
        for mode, n in (("bulk", bulk), ("bfm", a.bfm_vectors)):
            x = flow.random_vectors(graph, n, seed=2)
            r, _ = flow.cosim(graph, work / "rtl", x, simulator=sim, mode=mode, seed=3,
                              build_dir=work / f"sim_{sim}")
            row = {"simulator": sim, "mode": mode, "vectors": n, "mismatches": int(r.mismatches),
                   "cycles": int(r.cycles), "build_seconds": r.seconds_build,
                   "run_seconds": r.seconds_run, "vectors_per_s": n / r.seconds_run,
                   "sim_seconds": r.seconds_sim,
                   "vectors_per_s_sim_loop": n / r.seconds_sim if r.seconds_sim else None}
            res["cosim"].append(row)
            print(f"cosim {sim}/{mode}: {row['vectors_per_s']:,.0f} vectors/s, "
                  f"{row['mismatches']} mismatches", flush=True)

    # synthesis
    res["boards"] = {}
    for b in [b for b in a.boards.split(",") if b]:
        rep = flow.build(graph, b, work / "build" / b, allow_timing_failure=True)
        res["boards"][b] = {k: rep.get(k) for k in (
            "device", "luts", "ffs", "dsps", "brams", "fmax_mhz", "clock_mhz", "timing_met",
            "seconds", "latency_cycles", "ii_cycles", "inferences_per_s",
            "inferences_per_s_at_clock")}
        res["boards"][b]["budget_luts"] = rep.get("budget", {}).get("luts")
        print(f"build {b}: {rep['luts']} LUTs, Fmax {rep['fmax_mhz']:.1f} MHz, "
              f"{rep['seconds']:.0f} s", flush=True)

    (out / "bench.json").write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    (out / "bench.md").write_text(markdown(res))
    shutil.rmtree(work, ignore_errors=True)
    print(markdown(res))
    return 0


def markdown(r):
    m = r["machine"]
    lines = [f"Measured {r['date']} on {m['cpu']} ({m['cores']} cores), Python {m['python']}; "
             f"model `{r['model']}` ({'-'.join(map(str, r['meta'].get('sizes', [])))}, "
             f"{r['meta'].get('w_bits')}-bit). Reproduce: `make bench`.", "",
             "| metric | value |", "|---|---|",
             f"| float accuracy (test split) | {100 * (r['float_accuracy'] or 0):.2f} % |",
             f"| quantized accuracy (golden) | {100 * r['quant_accuracy']:.2f} % |",
             f"| RTL generation | {r['generate_seconds']:.2f} s |",
             f"| golden model | {r['golden_inferences_per_s']:,.0f} inferences/s |"]
    for c in r["cosim"]:
        loop = c.get("vectors_per_s_sim_loop")
        loop = f", {loop:,.0f} in the simulation loop" if loop else ""
        lines.append(f"| cosim {c['simulator']} ({c['mode']}, {c['vectors']:,} vectors) | "
                     f"{c['vectors_per_s']:,.0f} vectors/s wall{loop} (build "
                     f"{c['build_seconds']:.1f} s, {c['mismatches']} mismatches) |")
    lines += ["", "| board | LUTs | FFs | DSPs | BRAMs | Fmax (MHz) | clock (MHz) | latency "
              "(cycles) | II | inferences/s at Fmax | synthesis time |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for b, x in r["boards"].items():
        lines.append(f"| {b} ({x['device']}) | {x['luts']} / {x['budget_luts']} | {x['ffs']} | "
                     f"{x['dsps']} | {x['brams']} | {x['fmax_mhz']:.1f} | {x['clock_mhz']:.0f} "
                     f"| {x['latency_cycles']} | {x['ii_cycles']} | "
                     f"{x['inferences_per_s']:,.0f} | {x['seconds']:.0f} s |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
