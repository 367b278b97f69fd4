"""Benchmark: a small residual CNN on the digits (conv 3x3 x8, residual block of two 3x3 x8
convs added to its input, maxpool 2, dense 10; 4-bit) against the plain digits CNN (the same
without the residual block): float vs 4-bit accuracy (the golden model on the test split),
the residual model cosimulated in Verilator bit-exact (test split + random/extreme images,
idle 0.3 / backpressure 0.3), and optionally builds (``--boards``, folding chosen as ``ddnhw build`` does).

    .venv/bin/python bench/residual_cnn.py [--out bench/results] [--work DIR] [--epochs 40]
        [--seeds 0,1,2,3,4] [--boards ulx3s-85f] [--no-cosim]

Writes ``<out>/residual_cnn.json`` and ``<out>/residual_cnn.md``.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ddnhw import examples, flow, golden  # noqa: E402
from ddnhw.datasets import load_digits_split  # noqa: E402
from ddnhw.lower import generate  # noqa: E402
from bench.common import bench_dirs, bench_parser  # noqa: E402

MODELS = {
    "digits_cnn": [{"op": "conv", "out": 8, "kernel": 3, "padding": 1},
                   {"op": "maxpool", "kernel": 2}, {"op": "flatten"},
                   {"op": "linear", "out": 10}],
    "digits_res_cnn": [{"op": "conv", "out": 8, "kernel": 3, "padding": 1},
                       {"op": "res", "kernel": 3}, {"op": "maxpool", "kernel": 2},
                       {"op": "flatten"}, {"op": "linear", "out": 10}],
}


def train(name, epochs, seed, work):
    """``(graph, metrics)`` trained once per (model, epochs, seed) and cached in ``work``."""
    path, mpath = work / f"{name}_e{epochs}_s{seed}.npz", work / f"{name}_e{epochs}_s{seed}.json"
    if path.exists() and mpath.exists():
        return flow.load_model(path), json.loads(mpath.read_text())
    import torch
    from ddnhw.quant.cnn import CNNConfig, export_cnn, train_cnn

    torch.set_num_threads(1)
    xtr, ytr, xte, yte = load_digits_split()
    cfg = CNNConfig(layers=MODELS[name], float_epochs=epochs, qat_epochs=epochs, seed=seed)
    r = train_cnn(xtr, ytr, xte, yte, cfg)
    graph = export_cnn(r.model, meta={"name": name})
    x, y = examples.test_inputs("cnn", graph)
    metrics = {"float_accuracy": r.float_accuracy, "quant_accuracy": r.quant_accuracy,
               "golden_accuracy": float(np.mean(golden.classify(graph, x) == y)),
               "train_seconds": round(r.seconds, 1)}
    flow.save_graph(graph, path)
    mpath.write_text(json.dumps(metrics))
    return graph, metrics


def build(graph, board, work):
    """Folding chosen for the board as ``ddnhw build`` does (unrolled when it fits), then
    yosys + nextpnr through :func:`ddnhw.board.build` (the measurement top)."""
    from ddnhw.board import build as board_build
    from ddnhw.board import get_board
    from ddnhw.lower import build_network

    profile = get_board(board)
    plan = flow.choose_folding(graph, profile)
    options = {} if plan["folding"] is None else {"folding": plan["folding"]}
    net = build_network(graph, family=profile.family, **options)
    t = time.perf_counter()
    rep = board_build(net, board, work / "build")
    row = {"board": board, "folding": json.loads(json.dumps(options.get("folding"))),
           "build_seconds": round(time.perf_counter() - t, 1), "ii_cycles": int(net.ii),
           "latency_cycles": int(net.latency),
           "estimate": {k: sum(la["estimate"].get(k, 0) for la in net.layers)
                        for k in ("luts", "ffs", "dsps", "brams")}}
    row.update({k: rep.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz", "clock_mhz",
                                       "timing_met")})
    if rep.get("fmax_mhz"):
        row["inferences_per_s"] = round(rep["fmax_mhz"] * 1e6 / net.ii)
    return row


def main(argv=None):
    p = bench_parser(__doc__, "/tmp/ddnhw-bench-residual")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--boards", default="")
    p.add_argument("--no-cosim", action="store_true")
    a = p.parse_args(argv)
    work, out = bench_dirs(a)
    res = {"epochs": a.epochs, "models": {}, "cosim": None, "builds": []}
    if (out / "residual_cnn.json").exists():     # keep the cosim/builds not rerun now
        old = json.loads((out / "residual_cnn.json").read_text())
        res.update({k: old[k] for k in ("cosim", "builds") if old.get("epochs") == a.epochs})
    seeds = [int(s) for s in a.seeds.split(",") if s]
    for name in MODELS:
        runs = {}
        for seed in seeds:
            _, m = train(name, a.epochs, seed, work)
            runs[seed] = m
            print(name, seed, m, flush=True)
        res["models"][name] = {"layers": MODELS[name], "runs": runs}
    graph, _ = train("digits_res_cnn", a.epochs, seeds[0], work)
    x, _ = examples.test_inputs("cnn", graph)
    images = np.concatenate([x, flow.random_images(graph, 40, seed=2)])
    if not a.no_cosim:
        man = generate(graph, work / "rtl")
        t = time.perf_counter()
        r = flow.cosim_check(graph, images, work / "rtl", seed=1, idle=0.3, stall=0.3,
                                 build_dir=work / "sim_build")
        res["cosim"] = {"images": len(images), "mismatches": r["mismatches"],
                        "seconds": round(time.perf_counter() - t, 1),
                        "latency_cycles": man["latency_cycles"], "ii_cycles": man["ii_cycles"],
                        "estimate": man["estimate"],
                        "skip_fifo": next(la for la in man["layers"] if la["op"] == "fifo"
                                          and la["name"].endswith("_skip"))}
        print("cosim", res["cosim"], flush=True)
    for board in [b for b in a.boards.split(",") if b]:
        res["builds"] = [b for b in res["builds"] if b["board"] != board]
        res["builds"].append(build(graph, board, work / board))
        print(res["builds"][-1], flush=True)
    flow.write_json_atomic(out / "residual_cnn.json", res)
    write_md(res, out / "residual_cnn.md")
    return 0


def write_md(res, path):
    lines = ["# Residual CNN on the digits (4-bit inputs, weights, activations)", "",
             f"{res['epochs']} float + {res['epochs']} QAT epochs; accuracy on the held-out "
             f"360 digits (quantized = golden model, bit-exact with the RTL).", "",
             "| model | seed | float | 4-bit quantized |", "|---|---|---|---|"]
    for name, m in res["models"].items():
        for seed, r in m["runs"].items():
            lines.append(f"| {name} | {seed} | {r['float_accuracy']:.4f} | "
                         f"{r['golden_accuracy']:.4f} |")
    for name, m in res["models"].items():
        runs = list(m["runs"].values())
        lines.append(f"| {name} | mean of {len(runs)} | "
                     f"{np.mean([r['float_accuracy'] for r in runs]):.4f} | "
                     f"{np.mean([r['golden_accuracy'] for r in runs]):.4f} |")
    c = res.get("cosim")
    if c:
        lines += ["", f"Verilator cosim of digits_res_cnn (unrolled): {c['mismatches']} "
                  f"mismatches of {c['images']} images (idle 0.3, backpressure 0.3); II "
                  f"{c['ii_cycles']} cycles, latency {c['latency_cycles']} cycles; skip FIFO "
                  f"depth {c['skip_fifo']['depth']} (lead {c['skip_fifo']['lead']}); estimate "
                  f"{c['estimate']}."]
    for b in res.get("builds", []):
        lines += ["", f"{b['board']} ({b['folding'] or 'unrolled'}): {b.get('luts')} LUTs, "
                  f"{b.get('ffs')} FFs, {b.get('dsps')} DSPs, {b.get('brams')} BRAMs (estimate "
                  f"{b['estimate']}), Fmax {b.get('fmax_mhz')} MHz (clock "
                  f"{b.get('clock_mhz')} MHz, timing {'met' if b.get('timing_met') else 'MISSED'}"
                  f"), II {b['ii_cycles']} cycles, {b.get('inferences_per_s', 0):,} "
                  f"inferences/s at Fmax; build {b['build_seconds']} s."]
    lines += ["", "Reproduce: `.venv/bin/python bench/residual_cnn.py`.", ""]
    Path(path).write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
