"""The seed CNN at its real size: 28x28x1 -> Conv2D 32 3x3 ReLU -> MaxPool 2x2 -> Flatten ->
Dense 10 (5,408 x 10), 4-bit weights and activations, on the iCE40UP5K and the ECP5-85F.

    .venv/bin/python bench/seed_cnn.py [--boards icebreaker,ulx3s-85f] [--epochs N]
                                       [--ecp5-max-luts N] [--no-build]

Data: scikit-learn's 8x8 digits upscaled to 28x28 (bilinear, the one stratified split of the
digits examples: 1,437 train / 360 test images); trained with QAT (``ddnhw.quant.cnn``).
Per board: the planner's folding for the board's budget (on the UP5K the dense layer's
216 Kbit of weights do not fit the 30 EBRs: the planner puts them in SPRAM, loaded after
reset through the network's ``w`` stream), Verilog, a Verilator cosimulation of the whole
test split plus random and extreme images under 30 % idle / 30 % backpressure (0 mismatches
required before building), then YoWASP yosys + nextpnr. Writes
``bench/results/seed_cnn.json`` and ``.md``.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_dirs, bench_parser  # noqa: E402
from ddnhw import golden  # noqa: E402
from ddnhw.board import build, get_board  # noqa: E402
from ddnhw.host.cosim import cosim  # noqa: E402
from ddnhw.ir import load_graph  # noqa: E402
from ddnhw.lower import build_network, generate  # noqa: E402
from ddnhw.passes.fold import select  # noqa: E402

LAYERS = [{"op": "conv", "out": 32, "kernel": 3, "padding": 0},
          {"op": "maxpool", "kernel": 2}, {"op": "flatten"}, {"op": "linear", "out": 10}]


def digits28():
    """The digits split, every image upscaled from 8x8 to 28x28 (bilinear), in [0, 1]."""
    import torch
    from ddnhw.datasets import load_digits_split
    xtr, ytr, xte, yte = load_digits_split()

    def up(x):
        t = torch.from_numpy(x.reshape(-1, 1, 8, 8))
        return torch.nn.functional.interpolate(t, size=(28, 28), mode="bilinear",
                                               align_corners=True).numpy()
    return up(xtr), ytr, up(xte), yte


def model(work, epochs):
    path = work / "seed_cnn.npz"
    data = digits28()
    if path.exists():
        return load_graph(path), json.loads(path.with_suffix(".json").read_text()), data
    from ddnhw.ir import save_graph
    from ddnhw.quant.cnn import CNNConfig, export_cnn, train_cnn
    cfg = CNNConfig(layers=LAYERS, in_shape=(1, 28, 28), in_bits=4, w_bits=4, a_bits=4,
                    float_epochs=epochs, qat_epochs=epochs, seed=0)
    r = train_cnn(*data, cfg)
    graph = export_cnn(r.model, meta={"name": "seed_cnn"})
    save_graph(graph, path)
    xq = golden.quantize_input(graph, data[2].reshape(-1, 28, 28, 1))
    acc = float(np.mean(np.argmax(golden.run(graph, xq), axis=1) == data[3]))
    metrics = {"float_accuracy": r.float_accuracy, "quant_accuracy": r.quant_accuracy,
               "golden_accuracy": acc, "epochs": epochs, "train_seconds": round(r.seconds, 1)}
    path.with_suffix(".json").write_text(json.dumps(metrics, indent=1))
    return graph, metrics, data


def run_board(graph, board, x, work, max_luts=None, do_build=True):
    profile = get_board(board)
    t0 = time.monotonic()
    ga, plan = select(graph, profile.budget_for(), max_luts=max_luts)
    plan_s = time.monotonic() - t0
    out = work / board
    man = generate(ga, out, name="seed_cnn", family=profile.family)
    row = {"board": board, "device": profile.device, "family": profile.family,
           "mode": plan["mode"], "max_luts": max_luts, "plan_seconds": round(plan_s, 1),
           "folding": {k: (list(v) if v else "unrolled") for k, v in
                       (plan["folding"] or {}).items()},
           "memory": plan.get("hw", {}), "ii_cycles": man["ii_cycles"],
           "latency_cycles": man["latency_cycles"], "estimate": man["estimate"],
           "load_words": man.get("load", {}).get("words", 0),
           "layers": [{k: l.get(k) for k in ("name", "block", "ii", "pe", "simd", "mem",
                                             "fused_into")} for l in man["layers"]]}
    print(board, json.dumps({k: row[k] for k in ("mode", "folding", "memory", "ii_cycles",
                                                 "estimate")}), flush=True)
    t0 = time.monotonic()
    res = cosim(out / "seed_cnn.v", out / "manifest.json", x, expected=golden.run(graph, x),
                seed=7, idle_prob=0.3, stall_prob=0.3, watchdog=2_000_000)
    row.update(cosim_images=int(len(x)), cosim_mismatches=int(res.mismatches),
               cosim_seconds=round(time.monotonic() - t0, 1), cosim_cycles=int(res.cycles))
    print(board, "cosim mismatches", res.mismatches, "of", len(x), flush=True)
    if res.mismatches or not do_build:
        return row
    rep = build(build_network(ga, family=profile.family), board, out / "build",
                name="seed_cnn")
    row["report"] = {k: rep.get(k) for k in ("luts", "ffs", "dsps", "brams", "spram", "lut4",
                                             "carry", "fmax_mhz", "clock_mhz", "timing_met",
                                             "seconds")}
    row["images_per_s"] = int(rep["fmax_mhz"] * 1e6 / man["ii_cycles"]) \
        if rep["fmax_mhz"] else None
    row["images_per_s_at_clock"] = int(rep["clock_mhz"] * 1e6 / man["ii_cycles"])
    print(board, json.dumps(row["report"]), row["images_per_s"], flush=True)
    return row


def markdown(res):
    m = res["model"]
    lines = ["# The seed CNN at its real size", "",
             f"Measured {res['date']} on {res['machine']}. Model: 28x28x1 -> conv 3x3 x32 + "
             f"ReLU -> maxpool 2 -> flatten (13x13x32 = 5,408) -> dense 10; 4-bit inputs, "
             f"weights and activations; trained ({m['epochs']} float + {m['epochs']} QAT "
             f"epochs) on scikit-learn's digits upscaled to 28x28. Accuracy on the 360 test "
             f"images: float {m['float_accuracy']:.2%}, 4-bit (golden) "
             f"{m['golden_accuracy']:.2%} (one training run, seed 0). Every design was "
             f"cosimulated in Verilator on whole images (test images, 2 extreme and random "
             f"ones; the count is in the table) under 30 % idle / 30 % backpressure before it "
             f"was built.", "",
             "| board | plan | conv (PE, SIMD) | dense (PE, SIMD), weights in | II (cycles/image) "
             "| latency | LUTs | FFs | EBR / DP16KD | SPRAM | DSPs | Fmax / clock MHz | "
             "images/s at Fmax | mismatches |", "|" + "---|" * 14]
    for r in res["rows"]:
        rep = r.get("report", {})
        (conv, cf), (dense, df) = (list(r["folding"].items())
                                   or [("conv", "unrolled"), ("dense", "(10, 32)")])
        mem = r["memory"].get(dense, {}).get("mem", "bram")
        cap = f" (max {r['max_luts']:,} LUTs)" if r["max_luts"] else ""
        lines.append(
            f"| {r['board']} | {r['mode']}{cap} | {conv} {cf} | {dense} {df}, {mem} | "
            f"{r['ii_cycles']:,} | {r['latency_cycles']:,} | {rep.get('luts', '-')} | "
            f"{rep.get('ffs', '-')} | {rep.get('brams', '-')} | {rep.get('spram', '-')} | "
            f"{rep.get('dsps', '-')} | {rep.get('fmax_mhz', '-')} / {rep.get('clock_mhz', '-')} "
            f"| {(r.get('images_per_s') or 0):,} | {r['cosim_mismatches']} of "
            f"{r['cosim_images']} |")
    lines += ["", "Estimates (the planner's resource model) per board: " + "; ".join(
        f"{r['board']}: {r['estimate']}" for r in res["rows"]) + ".", "",
        "On the UP5K the dense weights (54,080 x 4 bits) live in SPRAM, which the bitstream "
        "cannot initialise: the design takes them after reset on its `w` stream (" +
        ", ".join(f"{r['load_words']:,} words" for r in res["rows"] if r["load_words"]) +
        "; the cosimulation's harness sends them); the UART board link has no loader for it "
        "yet.", "", "Reproduce: `python bench/seed_cnn.py` (YoWASP yosys + nextpnr, seed 1).",
        ""]
    return "\n".join(lines)


def main(argv=None):
    p = bench_parser(__doc__, str(ROOT / "build" / "bench_seed_cnn"))
    p.add_argument("--boards", default="icebreaker,ulx3s-85f")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--ecp5-max-luts", type=int, default=None)
    p.add_argument("--random", type=int, default=8, help="random images besides the test split")
    p.add_argument("--test-images", type=int, default=None,
                   help="cosimulate only the first N test images (default: all 360)")
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args(argv)
    work, out = bench_dirs(a)
    graph, metrics, data = model(work, a.epochs)
    print("model", metrics, flush=True)
    x = golden.quantize_input(graph, data[2].reshape(-1, 28, 28, 1))[:a.test_images]
    t = graph.input.dtype
    rng = np.random.default_rng(0)
    x = np.concatenate([x, np.full((1, 28, 28, 1), t.min), np.full((1, 28, 28, 1), t.max),
                        rng.integers(t.min, t.max + 1, size=(a.random, 28, 28, 1))])
    path = out / "seed_cnn.json"
    res = json.loads(path.read_text()) if path.exists() else {"rows": []}
    import subprocess
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    res.update(commit=commit, model=metrics, date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
               machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                       f"Python {platform.python_version()}")
    for board in [b for b in a.boards.split(",") if b]:
        cap = a.ecp5_max_luts if get_board(board).family == "ecp5" else None
        row = run_board(graph, board, x, work, cap, not a.no_build)
        row["commit"] = commit
        res["rows"] = [r for r in res["rows"] if r["board"] != board] + [row]
        path.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
        (out / "seed_cnn.md").write_text(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
