"""Folding benchmark: a 64-64-10 digits MLP (4-bit) auto-folded for the iCE40UP5K and the
ECP5-85F, checked bit-exact in the Amaranth simulator, then placed and routed.

    .venv/bin/python bench/folding.py [--boards icebreaker,ulx3s-85f] [--ecp5-max-luts N]

Writes ``bench/results/folding.json`` and ``bench/results/folding.md``: per board the chosen
folding, resources, Fmax, timing, inferences/s at Fmax, the estimate vs nextpnr error per
resource, and whether multipliers went to DSP blocks (SB_MAC16 / MULT18X18D).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddnhw import examples, golden  # noqa: E402
from ddnhw.board import build, get_board  # noqa: E402
from amaranth.hdl import Shape  # noqa: E402
from ddnhw.hw.sim import run_stream  # noqa: E402
from ddnhw.ir import load_graph  # noqa: E402
from ddnhw.lower import build_network, plan_network  # noqa: E402
from ddnhw.lower.fold import plan_folding  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MODEL = ROOT / "build" / "bench_folding" / "digits_64_64_10.npz"


def model():
    if MODEL.exists():
        return load_graph(MODEL), json.loads(MODEL.with_suffix(".json").read_text())
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    metrics = examples.train_model("mlp", MODEL, settings=dict(hidden=64, prune=0.0))
    graph = load_graph(MODEL)
    MODEL.with_suffix(".json").write_text(json.dumps(metrics, indent=1))
    return graph, metrics


def top_overhead(net):
    """The measurement top's registers around the core (not part of the estimate); ``net``:
    a network or its spec."""
    w_in, w_out = Shape.cast(net.in_shape).width, Shape.cast(net.out_shape).width
    return {"luts": w_out, "ffs": w_in + 2 + w_out, "dsps": 0, "brams": 0}


def dsp_cells(report):
    """Multiplier primitives in the yosys log (SB_MAC16 / MULT18X18D)."""
    try:
        text = Path(report["logs"]["yosys"]).read_text(errors="replace")
    except OSError:
        return {}
    stat = text.split("Printing statistics.")[-1]
    return {c: int(n) for n, c in re.findall(r"^\s+(\d+)\s+(?:[\d.]+\s+)?(SB_MAC16|MULT18X18D)\s*$",
                                             stat, re.M)}


def run_board(graph, board, x, max_luts=None):
    profile = get_board(board)
    t0 = time.monotonic()
    plan = plan_folding(graph, profile.budget_for(), max_luts=max_luts)
    fold_s = time.monotonic() - t0
    net = build_network(graph, folding=plan["folding"], family=profile.family)
    assert net.ii == plan["ii"], (net.ii, plan["ii"])
    # bit-exact under random backpressure, and cycles per inference at full rate == ii
    y, log = run_stream(net, x, idle=0.3, stall=0.3, seed=1,
                        max_cycles=(len(x) + 4) * (net.ii + net.latency) * 4)
    np.testing.assert_array_equal(y, golden.run(graph, x))
    assert log["protocol"] == []
    net2 = build_network(graph, folding=plan["folding"], family=profile.family)
    _, log2 = run_stream(net2, x[:8], idle=0.0, stall=0.0)
    cycles = sorted(set(np.diff(log2["in"]).tolist()))
    assert cycles == [net.ii], (cycles, net.ii)

    net3 = build_network(graph, folding=plan["folding"], family=profile.family)
    rep = build(net3, board, ROOT / "build" / "bench_folding" / board, name="folding")
    est = dict(plan["estimate"])
    over = top_overhead(net3)
    est_total = {k: est[k] + over[k] for k in est}
    err = {k: (None if rep[k] == 0 and est_total[k] == 0 else
               round(100.0 * (est_total[k] - rep[k]) / max(rep[k], 1), 1))
           for k in ("luts", "ffs", "dsps", "brams")}
    return {
        "board": board, "device": profile.device, "family": profile.family,
        "folding": {k: (list(v) if v else "unrolled") for k, v in plan["folding"].items()},
        "layers": net.layers, "ii_cycles": net.ii, "latency_cycles": net.latency,
        "max_luts": max_luts, "margin": plan["margin"], "fold_seconds": round(fold_s, 2),
        "sim_vectors": int(len(x)), "sim_bit_exact": True, "full_rate_cycles_per_inference":
            cycles[0],
        "report": {k: rep[k] for k in ("luts", "ffs", "dsps", "brams", "lut4", "carry",
                                       "fmax_mhz", "clock_mhz", "timing_met", "seconds")},
        "budget": dict(profile.budget),
        "estimate_core": est, "estimate_with_top": est_total, "estimate_error_pct": err,
        "dsp_cells": dsp_cells(rep),
        "inferences_per_s_at_fmax": rep["fmax_mhz"] * 1e6 / net.ii if rep["fmax_mhz"] else None,
        "inferences_per_s_at_clock": rep["clock_mhz"] * 1e6 / net.ii,
    }


def _err(est, meas):
    return None if not meas else round(100 * (est - meas) / meas, 1)


def unrolled_calibration():
    """Estimate vs nextpnr of the unrolled blocks (Dense, Requantizer): each calibration build
    (``bench/calibrate_estimate.py``; measurement top subtracted) and the shipped demo network
    64-16-10 as ``bench/run.py`` built it (``bench/results/bench.json``; top added to the
    estimate). Rows: family, build, resource, estimate, nextpnr, error %."""
    from ddnhw.lower.estimate import COEFFS, estimate_block
    rows = []
    for family in ("ice40", "ecp5"):
        path = RESULTS / f"calibration_{family}.json"
        if not path.exists():
            continue
        for r in json.loads(path.read_text()):
            if r["block"] not in ("Dense", "Requantizer"):
                continue
            scale = COEFFS[family]["dense" if r["block"] == "Dense" else "requant"]
            est = {"luts": int(round(scale * r["features"]["luts"])),
                   "ffs": int(r["features"]["ffs"])}
            for k in ("luts", "ffs"):
                meas = r[k] - r["top"][k]
                rows.append((family, r["name"], k, est[k], meas, _err(est[k], meas)))
    bench = RESULTS / "bench.json"
    if bench.exists():
        demo = load_graph(ROOT / "examples" / "digits_mlp.npz")
        for board, rep in json.loads(bench.read_text()).get("boards", {}).items():
            family = get_board(board).family
            net = plan_network(demo, family=family)
            top = top_overhead(net)
            for k in ("luts", "ffs"):
                est = sum(layer["estimate"][k] for layer in net.layers) + top[k]
                rows.append((family, "demo network 64-16-10 (with top)", k, est, rep[k],
                             _err(est, rep[k])))
    return rows


def unrolled_calibration_md():
    lines = ["", "## Unrolled Dense / Requantizer estimate vs nextpnr", "",
             "Calibration builds of single blocks (`bench/calibrate_estimate.py`, measurement top "
             "subtracted) and the whole shipped demo network (`bench/run.py`). The unrolled "
             "Dense LUT count is the structural estimate times `COEFFS[family]['dense']`, "
             "fitted by `bench/fit_estimate.py` (`fit_scale`) on these Dense builds.", "",
             "| family | build | resource | estimate | nextpnr | error % |",
             "|---|---|---|---|---|---|"]
    rows = unrolled_calibration()
    for fam, name, k, est, meas, err in rows:
        lines.append(f"| {fam} | {name} | {k} | {est} | {meas} | {err} |")
    worst = {}
    for fam, name, k, est, meas, err in rows:
        kind = "network" if "network" in name else "Requantizer" if "requant" in name else "Dense"
        if err is not None:
            key = (kind, fam, k)
            worst[key] = max(worst.get(key, 0), abs(err))
    lines += ["", "Largest |error| per block kind, family and resource: " + ", ".join(
        f"{kind} {fam} {k} {v}%" for (kind, fam, k), v in sorted(worst.items())) + "."]
    return lines


def markdown(res):
    lines = ["# Folding benchmark: digits MLP 64-64-10, 4-bit, auto-folded", "",
             f"Model: quantized accuracy {res['model']['quant_accuracy']:.4f} "
             f"(float {res['model']['float_accuracy']:.4f}); each design was checked bit-exact "
             f"against the golden model in the Amaranth simulator on "
             f"{res['boards'][0]['sim_vectors'] if res['boards'] else 0} test vectors under "
             f"random idle/backpressure, and its full-rate cycles per inference equal the "
             f"stated II.", "",
             "| board | folding (pe, simd) | II | LUTs | FFs | DSPs | BRAMs | Fmax MHz | "
             "clock | timing | inferences/s at Fmax |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for b in res["boards"]:
        r = b["report"]
        fold = ", ".join(f"{k} {v}" for k, v in b["folding"].items())
        lines.append(f"| {b['board']} | {fold} | {b['ii_cycles']} | {r['luts']} | {r['ffs']} | "
                     f"{r['dsps']} | {r['brams']} | {r['fmax_mhz']} | {r['clock_mhz']} | "
                     f"{'met' if r['timing_met'] else 'MISSED'} | "
                     f"{b['inferences_per_s_at_fmax']:,.0f} |")
    lines += ["", "## Estimate vs nextpnr (estimate includes the measurement top's registers)",
              "", "| board | resource | estimate | nextpnr | error % |", "|---|---|---|---|---|"]
    for b in res["boards"]:
        for k in ("luts", "ffs", "dsps", "brams"):
            lines.append(f"| {b['board']} | {k} | {b['estimate_with_top'][k]} | "
                         f"{b['report'][k]} | {b['estimate_error_pct'][k]} |")
    lines += unrolled_calibration_md()
    lines += ["", "## Multipliers", ""]
    for b in res["boards"]:
        lines.append(f"- {b['board']}: DSP primitives in the yosys netlist: "
                     f"{b['dsp_cells'] or 'none'} (4-bit weights: multipliers are built from "
                     f"LUTs by design, `FoldedDense(mul='auto')`).")
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", default="icebreaker,ulx3s-85f")
    ap.add_argument("--ecp5-max-luts", type=int, default=None,
                    help="LUT cap for the ECP5 folding (keeps nextpnr's run time short)")
    ap.add_argument("--vectors", type=int, default=30)
    ap.add_argument("--md-only", action="store_true",
                    help="rewrite folding.md from folding.json and the calibration data (no "
                         "builds)")
    a = ap.parse_args(argv)
    if a.md_only:
        res = json.loads((RESULTS / "folding.json").read_text())
        (RESULTS / "folding.md").write_text(markdown(res))
        return
    graph, metrics = model()
    x, _ = examples.test_inputs("mlp", graph)
    x = x[:a.vectors]
    res = {"model": metrics, "boards": []}
    for board in a.boards.split(","):
        cap = a.ecp5_max_luts if get_board(board).family == "ecp5" else None
        row = run_board(graph, board, x, max_luts=cap)
        print(json.dumps({k: row[k] for k in ("board", "folding", "ii_cycles", "report",
                                               "estimate_error_pct", "dsp_cells")}), flush=True)
        res["boards"].append(row)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "folding.json").write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
        (RESULTS / "folding.md").write_text(markdown(res))


if __name__ == "__main__":
    main()
