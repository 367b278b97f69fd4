"""Cosimulation throughput: vectors/s per simulator and mode on a generated MLP.

    python bench/cosim.py [--sizes 64,16,10] [--out bench_sim.json]

Reports, per (simulator, mode): build seconds (0 when cached), wall seconds of the run (simulator
process start to results, what a user waits for), vectors/s over that wall time, and vectors/s of
the simulation loop alone (reset release to ``done``).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_N = {("verilator", "bulk"): 200_000, ("verilator", "bfm"): 5_000,
             ("icarus", "bulk"): 2_000, ("icarus", "bfm"): 1_000}


def main(argv=None) -> int:
    from ddnhw.golden import run as golden
    from ddnhw.host.cosim import cosim
    from ddnhw.host.payload import StreamLayout
    from ddnhw.ir.testing import random_mlp
    from ddnhw.lower import generate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,16,10")
    ap.add_argument("--model", default=None,
                    help="a model file (e.g. examples/digits_mlp.npz) instead of a random MLP")
    ap.add_argument("--cold", action="store_true",
                    help="start from an empty build folder, so the rate includes the build")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the vector counts")
    ap.add_argument("--sims", default="verilator,icarus")
    ap.add_argument("--modes", default="bulk,bfm")
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "ddnhw-sim-bench"))
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    a = ap.parse_args(argv)

    sizes = tuple(int(s) for s in a.sizes.split(","))
    if a.model:
        from ddnhw.ir.graph import load_graph as load_model
        graph = load_model(a.model)
    else:
        graph = random_mlp(a.seed, sizes=sizes)
    work = Path(a.workdir)
    if a.cold and work.exists():
        import shutil
        shutil.rmtree(work)
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
            row = {"simulator": sim, "mode": mode, "model": a.model or f"random_mlp{sizes}",
                   "vectors": n,
                   "cycles": r.cycles, "seconds_build": round(r.seconds_build, 2),
                   "seconds_run": round(r.seconds_run, 3), "seconds_sim": round(r.seconds_sim, 3),
                   "vectors_per_s": round(n / r.seconds_run),
                   "vectors_per_s_incl_build": round(n / (r.seconds_run + r.seconds_build)),
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
