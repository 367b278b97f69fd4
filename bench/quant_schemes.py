#!/usr/bin/env python3
"""Quantization schemes on the digits MLP: accuracy against hardware cost.

Rows: float, uniform 8/6/4/3/2-bit with learned (LSQ) scales, 4-bit with power-of-two scales,
power-of-two (log2) weights, a 4-level codebook, ternary, binary (with bipolar activations),
4-bit with 50% pruning, and the mixed-precision pick. Each row: accuracy (golden model on the
held-out split), estimated LUTs/FFs/DSPs (iCE40 and ECP5 calibrations), latency, II and
throughput at the board clock; ``--build`` rows also get real nextpnr numbers (LUTs, DSPs,
Fmax) for the core alone (measurement top). Writes bench/results/quant_schemes.{json,md,png}.

    python bench/quant_schemes.py [--epochs 80] [--build pow2,ternary,u2] [--boards ulx3s-85f]
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddnhw import flow, golden  # noqa: E402
from ddnhw.quant.schemes import ActSpec, WeightSpec, export_scheme_mlp  # noqa: E402
from ddnhw.quant.search import estimate_luts  # noqa: E402

CLOCK_MHZ = {"ice40": 12.0, "ecp5": 25.0}   # iCEBreaker, ULX3S
BOARD_FAMILY = {"icebreaker": "ice40", "ulx3s-85f": "ecp5"}


def rows_spec():
    U = WeightSpec
    return [
        # name, weights, acts, cfg overrides
        ("u8", U(bits=8), ActSpec(bits=8), {}),
        ("u6", U(bits=6), ActSpec(bits=6), {}),
        ("u4", U(bits=4), ActSpec(bits=4), {}),
        ("u4 no-KD", U(bits=4), ActSpec(bits=4), {"distill": 0.0}),
        ("u4 pow2-scales", U(bits=4), ActSpec(bits=4, realize="pow2"), {}),
        ("u4 prune50", U(bits=4), ActSpec(bits=4), {"prune": 0.5}),
        ("u3", U(bits=3), ActSpec(bits=3), {}),
        ("u2", U(bits=2), ActSpec(bits=2), {"qat_lr": 1e-2}),
        ("pow2 (log2) w4", U("pow2", 4), ActSpec(bits=4, realize="pow2"), {}),
        ("codebook 4 levels", U("codebook", 2, codebook_bits=6), ActSpec(bits=4), {}),
        ("ternary w, a4", U("ternary", 2), ActSpec(bits=4), {"qat_lr": 1e-2}),
        ("binary w, bipolar a", U("binary", 1), ActSpec("bipolar", 2), {"qat_lr": 1e-2}),
    ]


def hw_row(graph):
    out = {}
    for fam in ("ice40", "ecp5"):
        est = estimate_luts(graph, fam)
        out["latency_cycles"], out["ii_cycles"] = est.pop("latency_cycles"), est.pop("ii_cycles")
        out[f"est_{fam}"] = est
        out[f"inferences_per_s_{fam}"] = CLOCK_MHZ[fam] * 1e6 / out["ii_cycles"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=80, help="QAT epochs per row")
    ap.add_argument("--float-epochs", type=int, default=120)
    ap.add_argument("--distill", type=float, default=0.5)
    ap.add_argument("--build", default="pow2 (log2) w4,ternary w, a4,u2,binary w, bipolar a",
                    help="comma-separated row names to synthesize ('' for none)")
    ap.add_argument("--boards", default="ulx3s-85f")
    ap.add_argument("--search-epochs", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args(argv)
    import torch
    from ddnhw.datasets import load_digits_split
    from ddnhw.quant.qat import SchemeConfig, pretrain_float, train_scheme
    from ddnhw.quant.search import candidates, pareto_front, search
    from ddnhw.quant.train import accuracy

    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_digits_split()
    xtr, ytr, xte, yte = data
    sizes = (64, a.hidden, 10)
    t0 = time.perf_counter()
    fm = pretrain_float(xtr, ytr, sizes, epochs=a.float_epochs)
    float_acc = accuracy(fm, torch.as_tensor(xte), torch.as_tensor(yte))
    rows = [{"name": "float", "accuracy": float_acc, "scheme": "float32"}]
    print(f"float: {float_acc:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    graphs = {}
    for name, w, act, over in rows_spec():
        t = time.perf_counter()
        cfg = SchemeConfig(weights=w, acts=act, qat_epochs=a.epochs, distill=a.distill)
        for k, v in over.items():
            setattr(cfg, k, v)
        model, met = train_scheme(fm, xtr, ytr, xte, yte, cfg)
        g = export_scheme_mlp(model, meta={"dataset": "sklearn-digits", "row": name})
        acc = float(np.mean(golden.predict(g, golden.quantize_input(g, xte)) == yte))
        assert abs(acc - met["quant_accuracy"]) < 1e-6, (acc, met)   # fake-quant == golden
        row = {"name": name, "accuracy": acc, "ptq_accuracy": met["ptq_accuracy"],
               "train_seconds": round(met["train_seconds"], 1),
               "weights": w.kind, "w_bits": w.bits, "a_bits": act.bits,
               "realize": act.realize, "distill": cfg.distill, "prune": cfg.prune}
        row.update(hw_row(g))
        rows.append(row)
        graphs[name] = g
        print(f"{name}: {acc:.4f} (PTQ {met['ptq_accuracy']:.4f}), ~{row['est_ice40']['luts']} "
              f"iCE40 LCs ({time.perf_counter() - t:.0f} s)", flush=True)

    # mixed precision: per-layer weight bits, the cheapest Pareto point within 1 point of best
    t = time.perf_counter()
    cands = candidates(2, (2, 3, 4), (3, 4))
    srows, sgraphs = search(fm, data, cands, dict(qat_epochs=a.search_epochs,
                                                  distill=a.distill))
    front = pareto_front(srows)
    best = max(r["accuracy"] for r in srows)
    pick = min((r for r in front if r["accuracy"] >= best - 0.01), key=lambda r: r["luts"])
    g = sgraphs[pick["index"]]
    row = {"name": f"mixed pick ({pick['label']})", "accuracy": pick["accuracy"],
           "weights": "uniform", "w_bits": pick["w_bits"], "a_bits": pick["a_bits"],
           "realize": "mult", "distill": a.distill, "prune": 0.0,
           "search": {"candidates": len(srows), "front": [r["label"] for r in front],
                      "seconds": round(time.perf_counter() - t, 1)}}
    row.update(hw_row(g))
    rows.append(row)
    graphs[row["name"]] = g
    print(f"{row['name']}: {row['accuracy']:.4f}", flush=True)

    builds = [s for s in a.build.split(",") if s] if a.build else []
    # names contain commas: match greedily against the known row names
    wanted = [r["name"] for r in rows if r["name"] in a.build] if builds else []
    for name in wanted:
        for board in a.boards.split(","):
            t = time.perf_counter()
            try:
                rep = flow.build(graphs[name], board, out / "quant_builds" / f"{name}_{board}"
                                 .replace(" ", "_").replace(",", "").replace("(", "")
                                 .replace(")", ""), allow_timing_failure=True, top="measure")
                res = {k: rep.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz",
                                               "timing_met", "inferences_per_s")}
            except Exception as e:   # report, keep going (e.g. does not fit the device)
                res = {"error": str(e)[:300]}
            res["seconds"] = round(time.perf_counter() - t, 1)
            next(r for r in rows if r["name"] == name).setdefault("build", {})[board] = res
            print(f"build {name} on {board}: {res}", flush=True)

    res = {"date": datetime.date.today().isoformat(), "sizes": list(sizes),
           "qat_epochs": a.epochs, "float_epochs": a.float_epochs, "rows": rows,
           "seconds": round(time.perf_counter() - t0, 1)}
    flow.write_json_atomic(out / "quant_schemes.json", res)
    (out / "quant_schemes.md").write_text(markdown(res))
    plot(rows, out / "quant_schemes.png")
    print(f"wrote {out / 'quant_schemes.md'}")
    return 0


def markdown(res):
    fl = res["rows"][0]["accuracy"]
    lines = [f"# Quantization schemes, digits MLP {'-'.join(map(str, res['sizes']))} "
             f"({res['date']})", "",
             f"Accuracy: golden model on the 360-image held-out split (equal to the integer-mode "
             f"PyTorch model). LUTs/FFs/DSPs: lowering estimate (iCE40 logic cells / ECP5 LUTs), "
             f"fully unrolled; throughput at the board clock (12 / 25 MHz). `build`: real "
             f"nextpnr numbers of the core (measurement top). QAT {res['qat_epochs']} epochs "
             f"from one float model ({res['float_epochs']} epochs).", "",
             "| scheme | w bits | a bits | accuracy | Δ float | PTQ | iCE40 LCs (est) | "
             "ECP5 LUTs (est) | DSPs | latency | inf/s (25 MHz) | build (LUTs, DSPs, Fmax) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        if r["name"] == "float":
            lines.append(f"| float | 32f | 32f | {fl:.4f} | 0 | | | | | | | |")
            continue
        b = "; ".join(f"{k}: {v['luts']} LUTs, {v['dsps']} DSPs, {v['fmax_mhz']:.1f} MHz"
                      if "error" not in v else f"{k}: {v['error'][:60]}"
                      for k, v in r.get("build", {}).items())
        ptq = f"{r['ptq_accuracy']:.4f}" if "ptq_accuracy" in r else ""
        lines.append(f"| {r['name']} | {r['w_bits']} | {r['a_bits']} | {r['accuracy']:.4f} | "
                     f"{(r['accuracy'] - fl) * 100:+.1f} | {ptq} | {r['est_ice40']['luts']} | "
                     f"{r['est_ecp5']['luts']} | {r['est_ecp5'].get('dsps', 0)} | "
                     f"{r['latency_cycles']} | {r['inferences_per_s_ecp5']:.2e} | {b} |")
    return "\n".join(lines) + "\n"


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    fl = rows[0]["accuracy"]
    for ax, fam, title in ((axes[0], "ice40", "iCE40 logic cells (estimate)"),
                           (axes[1], "ecp5", "ECP5 LUTs (estimate)")):
        for r in rows[1:]:
            x, y = r[f"est_{fam}"]["luts"], r["accuracy"] * 100
            ax.scatter(x, y)
            ax.annotate(r["name"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(fl * 100, ls="--", c="gray", label=f"float {fl * 100:.1f}%")
        ax.set_xscale("log")
        ax.set_xlabel(title)
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    fig.suptitle("digits MLP: accuracy vs LUTs per quantization scheme")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
