#!/usr/bin/env python3
"""Golden-model speed side by side with da4ml's C++ emulator, on the same models, in one run.

    python bench/golden_speed.py [--vectors 100000] [--repeats 5]

Models: the demo model (``examples/digits_mlp.npz``, 64-16-10, 4-bit) and the issue-17 peer
model (64-32-10, 8-bit unsigned inputs, 4-bit weights, 4-bit unsigned activations, floor +
saturate, seeded random weights: :func:`peer_model`). Each software model runs on
the same random vectors; the best of ``--repeats`` runs is reported (inferences/s, wall, this
process only). Every model's outputs are checked equal first: ddnhw's golden model against
the int64 reference executor (no BLAS shortcut) and da4ml's emulator against ddnhw's golden.

da4ml runs when installed (``pip install da4ml``), with 1 and 2 threads; it can only trace
floor-requantization models, so it runs on the peer model alone. hls4ml's C simulation needs
Keras/Vivado-HLS headers that are not installed here: its figure is the one recorded in issue
17 on this machine (8.3k inferences/s), marked "recorded, not rerun".

Writes bench/results/golden_speed.json and golden_speed.md.
"""
from __future__ import annotations

import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))   # common

from common import bench_dirs, bench_parser  # noqa: E402
from peers import peer_model  # noqa: E402  (the issue-17 peer model, one definition)

from ddnhw import flow, golden  # noqa: E402
from ddnhw.ir.ops import base as ops_base  # noqa: E402

HLS4ML_RECORDED = 8_300     # issue 17: hls4ml C simulation of the peer model, this machine


def da4ml_comb(graph):
    """da4ml's traced logic of a floor-requantization MLP ``graph`` (its C++ emulator runs it)."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace
    from da4ml.trace.ops import quantize
    rq = {n.inputs[0]: n for n in graph.nodes if n.op == "requant"}
    it = graph.input.dtype
    dense = [n for n in graph.nodes if n.op == "dense"]
    inp = FixedVariableArrayInput((dense[0].attrs["weight"].shape[1],))
    x = quantize(inp, int(it.signed), it.bits - int(it.signed), 0)
    for n in dense:
        w, b = n.attrs["weight"], n.attrs["bias"].copy()
        r = rq.get(n.outputs[0])
        s = int(r.attrs["shift"][0]) if r is not None else 0
        if r is not None:
            b = b + ((1 << (s - 1)) if s else 0)          # back to the floor model's bias
        x = x @ w.T.astype(np.float64) + b.astype(np.float64)
        if r is not None:
            ot = graph.tensors[r.outputs[0]].dtype
            x = quantize(x * 2.0 ** -s, 0, ot.bits, 0, "SAT", "TRN")
    return comb_trace(inp, x)


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    return f"{cpu} ({os.cpu_count()} cores), Python {platform.python_version()}"


def best_rate(fn, x, repeats) -> float:
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        best = max(best, len(x) / (time.perf_counter() - t))
    return best


def int64_reference(graph, x):
    """The golden model with every matmul forced to int64 (the pre-BLAS executor)."""
    saved = ops_base.FLOAT_EXACT
    ops_base.FLOAT_EXACT = ()
    try:
        return golden.run(graph, x)
    finally:
        ops_base.FLOAT_EXACT = saved


def measure(name, graph, x, repeats, da4ml=False):
    row = {"model": name, "vectors": len(x)}
    ref = int64_reference(graph, x)
    out = golden.run(graph, x)
    row["golden_mismatches"] = int(np.sum(np.any(out != ref, axis=1)))
    row["golden_per_s"] = best_rate(lambda v: golden.run(graph, v), x, repeats)
    # the BLAS matmuls use every core by default; pinned to one thread for the 1-thread peer
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):
        row["golden_1t_per_s"] = best_rate(lambda v: golden.run(graph, v), x, repeats)
    row["int64_per_s"] = best_rate(lambda v: int64_reference(graph, v), x, max(1, repeats // 2))
    if da4ml:
        try:
            comb = da4ml_comb(graph)
        except ImportError as e:
            row["da4ml"] = f"not run: {e}"
        else:
            xf = x.astype(np.float64)
            y = comb.predict(xf, n_threads=1)
            row["da4ml_mismatches"] = int(np.sum(np.any(y != out, axis=1)))
            for t in (1, 2):
                row[f"da4ml_{t}t_per_s"] = best_rate(lambda v, t=t: comb.predict(v, n_threads=t),
                                                     xf, repeats)
    print(json.dumps(row), flush=True)
    return row


def markdown(res) -> str:
    lines = [f"Measured {res['date']} on {res['machine']}. Reproduce: "
             f"`python bench/golden_speed.py --vectors {res['vectors']}`. Best of "
             f"{res['repeats']} runs per model, one process; every model's outputs checked "
             "equal first (mismatches column).", "",
             "| model | ddnhw golden (2 threads) | golden, 1 thread | golden, int64 matmuls | "
             "da4ml emulator 1 thread | da4ml 2 threads | hls4ml C sim | golden / da4ml, "
             "1 thread each | golden / da4ml, 2 threads each | golden / hls4ml | mismatches |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    f = (lambda v: f"{v:,.0f}/s" if isinstance(v, (int, float)) else "not run")
    for r in res["rows"]:
        d1, d2 = r.get("da4ml_1t_per_s"), r.get("da4ml_2t_per_s")
        peer = r["model"].startswith("peer")
        hls = f"{HLS4ML_RECORDED:,}/s (recorded, not rerun)" if peer else "n/a"
        g1 = r.get("golden_1t_per_s")
        vs_da4ml = f"{g1 / d1:.1f}x" if d1 and g1 else "n/a"
        vs_da4ml2 = f"{r['golden_per_s'] / d2:.1f}x" if d2 else "n/a"
        vs_hls = f"{r['golden_per_s'] / HLS4ML_RECORDED:.0f}x" if peer else "n/a"
        mism = f"golden {r['golden_mismatches']}" + (
            f", da4ml {r['da4ml_mismatches']}" if "da4ml_mismatches" in r else "")
        lines.append(f"| {r['model']} | {f(r['golden_per_s'])} | {f(g1)} | "
                     f"{f(r['int64_per_s'])} | {f(d1)} | {f(d2)} | {hls} | {vs_da4ml} | "
                     f"{vs_da4ml2} | {vs_hls} | {mism} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = bench_parser(__doc__, "/tmp/ddnhw-golden-speed")
    p.add_argument("--vectors", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    _, out = bench_dirs(a)
    res = {"date": datetime.date.today().isoformat(), "machine": machine(),
           "vectors": a.vectors, "repeats": a.repeats, "rows": []}
    demo = flow.load_model(ROOT / "examples" / "digits_mlp.npz")
    res["rows"].append(measure("digits MLP 64-16-10 (demo model)", demo,
                               flow.random_vectors(demo, a.vectors, seed=1), a.repeats))
    g = peer_model()
    res["rows"].append(measure("peer 64-32-10 (issue 17)", g,
                               flow.random_vectors(g, a.vectors, seed=1), a.repeats,
                               da4ml=True))
    (out / "golden_speed.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "golden_speed.md").write_text(markdown(res) + "\n")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
