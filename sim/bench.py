"""Cosimulation throughput: vectors/s per simulator and mode on a generated MLP.

    python -m sim.bench [--sizes 64,16,10] [--out bench_sim.json]

Reports, per (simulator, mode): build seconds (0 when cached), wall seconds of the run (simulator
process start to results, what a user waits for), vectors/s over that wall time, and vectors/s of
the simulation loop alone (reset release to ``done``).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

DEFAULT_N = {("verilator", "bulk"): 200_000, ("verilator", "bfm"): 5_000,
             ("icarus", "bulk"): 2_000, ("icarus", "bfm"): 1_000}


def main(argv=None) -> int:
    from ddnhw.golden import run as golden
    from ddnhw.ir.testing import random_mlp
    from ddnhw.lower import generate
    from sim.payload import StreamLayout
    from sim.runner import cosim

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,16,10")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the vector counts")
    ap.add_argument("--sims", default="verilator,icarus")
    ap.add_argument("--modes", default="bulk,bfm")
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "ddnhw-sim-bench"))
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    a = ap.parse_args(argv)

    sizes = tuple(int(s) for s in a.sizes.split(","))
    graph = random_mlp(a.seed, sizes=sizes)
    work = Path(a.workdir)
    manifest = generate(graph, work / "rtl", "bench_top")
    verilog = work / "rtl" / manifest["verilog"]
    lay = StreamLayout.from_manifest(manifest)
    rng = np.random.default_rng(a.seed)
    rows = []
    for sim in a.sims.split(","):
        for mode in a.modes.split(","):
            n = max(10, int(DEFAULT_N[(sim, mode)] * a.scale))
            x = rng.integers(lay.i.lo, lay.i.hi + 1, size=(n, lay.i.lanes))
            exp = golden(graph, x)
            r = cosim(verilog, manifest, x, simulator=sim, mode=mode, expected=exp,
                      build_dir=work / "build", idle_prob=0.3, stall_prob=0.3)
            row = {"simulator": sim, "mode": mode, "sizes": list(sizes), "vectors": n,
                   "cycles": r.cycles, "seconds_build": round(r.seconds_build, 2),
                   "seconds_run": round(r.seconds_run, 3), "seconds_sim": round(r.seconds_sim, 3),
                   "vectors_per_s": round(n / r.seconds_run),
                   "vectors_per_s_sim_loop": round(n / max(r.seconds_sim, 1e-9)),
                   "cycles_per_s_sim_loop": round(r.cycles / max(r.seconds_sim, 1e-9)),
                   "mismatches": r.mismatches}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
