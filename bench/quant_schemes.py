#!/usr/bin/env python3
"""Quantization schemes on the digits MLP: accuracy against hardware cost.

Rows: float, uniform 8/6/4/3/2-bit with learned (LSQ) scales, 4-bit with power-of-two scales,
power-of-two (log2) weights, a 4-level codebook, ternary, binary (with bipolar activations),
4-bit with 50% pruning, 2-bit with a wider hidden layer (64-32-10), the mixed-precision pick,
and the digits CNN (uniform, power-of-two scales, at 8/4/3/2 bits).
Each row: accuracy (golden model on the held-out split), estimated LUTs/FFs/DSPs (iCE40 and
ECP5 calibrations), latency, II and throughput at the board clock; ``--build`` rows also get real nextpnr numbers (LUTs, DSPs,
Fmax) for the core alone (measurement top). Writes bench/results/quant_schemes.{json,md,png}.

    python bench/quant_schemes.py [--epochs 80] [--build pow2,ternary,u2] [--boards ulx3s-85f]
    python bench/quant_schemes.py --only "u2 64-32-10;cnn u4"   # recompute rows, keep the rest

The binary row is also built with ``binary_style="dense"`` (the adder tree instead of the
XNOR/popcount datapath) for the LUT comparison (``build_adder_tree``).
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
        # 2-bit with a wider hidden layer (its own float model, same width)
        ("u2 64-32-10", U(bits=2), ActSpec(bits=2), {"qat_lr": 1e-2, "sizes": (64, 32, 10)}),
        ("u2 64-32-10 last-w8", [U(bits=2), U(bits=8)], ActSpec(bits=2),
         {"qat_lr": 1e-2, "sizes": (64, 32, 10)}),
    ]


CNN_BITS = (8, 4, 3, 2)   # digits CNN rows: in/weight/activation bits (uniform, pow2 scales)


def _bits(spec):
    return [w.bits for w in spec] if isinstance(spec, (list, tuple)) else spec.bits


def _kind(spec):
    return spec[0].kind if isinstance(spec, (list, tuple)) else spec.kind


def hw_row(graph):
    out = {}
    for fam in ("ice40", "ecp5"):
        est = estimate_luts(graph, fam)
        out["latency_cycles"], out["ii_cycles"] = est.pop("latency_cycles"), est.pop("ii_cycles")
        out[f"est_{fam}"] = est
        out[f"inferences_per_s_{fam}"] = CLOCK_MHZ[fam] * 1e6 / out["ii_cycles"]
    return out


def build_rows(graph, boards, outdir, **lower):
    """Real nextpnr numbers of the core (measurement top) per board; errors are recorded."""
    from ddnhw.board import build as board_build
    from ddnhw.lower import build_network
    out = {}
    for board in boards:
        t = time.perf_counter()
        try:
            if lower:
                core = build_network(graph, family=BOARD_FAMILY[board], **lower)
                rep = board_build(core, board, outdir / board)
            else:
                rep = flow.build(graph, board, outdir / board, allow_timing_failure=True,
                                 top="measure")
            res = {k: rep.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz",
                                           "timing_met", "inferences_per_s")}
        except Exception as e:   # report, keep going (e.g. does not fit the device)
            res = {"error": str(e)[:300]}
        res["seconds"] = round(time.perf_counter() - t, 1)
        out[board] = res
        print(f"build {outdir.name} on {board}: {res}", flush=True)
    return out


def _dirname(name):
    return (name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
            .replace("/", "_"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=80, help="QAT epochs per row")
    ap.add_argument("--float-epochs", type=int, default=120)
    ap.add_argument("--distill", type=float, default=0.5)
    ap.add_argument("--build", default="pow2 (log2) w4,ternary w, a4,u2,binary w, bipolar a",
                    help="comma-separated row names to synthesize ('' for none)")
    ap.add_argument("--boards", default="ulx3s-85f")
    ap.add_argument("--only", default="",
                    help="semicolon-separated row names to recompute ('float', 'mixed', 'cnn', or "
                         "a row name); the other rows are kept from the existing JSON")
    ap.add_argument("--cnn-epochs", type=int, default=40)
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
    only = [s.strip() for s in a.only.split(";") if s.strip()] if a.only else None
    old = {}
    if (out / "quant_schemes.json").exists():
        old = {r["name"]: r for r in json.loads((out / "quant_schemes.json").read_text())["rows"]}

    def wanted_row(name):
        return only is None or name in only or (name.startswith("cnn") and "cnn" in only) \
            or (name.startswith("mixed") and "mixed" in only)

    t0 = time.perf_counter()
    floats = {}

    def float_model(sz):
        if sz not in floats:
            floats[sz] = pretrain_float(xtr, ytr, sz, epochs=a.float_epochs)
        return floats[sz]

    fm = float_model(sizes)
    float_acc = accuracy(fm, torch.as_tensor(xte), torch.as_tensor(yte))
    rows = [{"name": "float", "accuracy": float_acc, "scheme": "float32"}]
    print(f"float: {float_acc:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    graphs = {}
    for name, w, act, over in rows_spec():
        if not wanted_row(name):
            if name in old:
                rows.append(old[name])
            continue
        t = time.perf_counter()
        over = dict(over)
        rsizes = tuple(over.pop("sizes", sizes))
        cfg = SchemeConfig(weights=w, acts=act, qat_epochs=a.epochs, distill=a.distill)
        for k, v in over.items():
            setattr(cfg, k, v)
        model, met = train_scheme(float_model(rsizes), xtr, ytr, xte, yte, cfg)
        g = export_scheme_mlp(model, meta={"dataset": "sklearn-digits", "row": name})
        acc = float(np.mean(golden.predict(g, golden.quantize_input(g, xte)) == yte))
        assert abs(acc - met["quant_accuracy"]) < 1e-6, (acc, met)   # fake-quant == golden
        row = {"name": name, "accuracy": acc, "ptq_accuracy": met["ptq_accuracy"],
               "train_seconds": round(met["train_seconds"], 1),
               "weights": _kind(w), "w_bits": _bits(w), "a_bits": act.bits,
               "realize": act.realize, "distill": cfg.distill, "prune": cfg.prune}
        if rsizes != sizes:
            row["sizes"] = list(rsizes)
            row["float_accuracy"] = met["float_accuracy"]
        row.update(hw_row(g))
        rows.append(row)
        graphs[name] = g
        print(f"{name}: {acc:.4f} (PTQ {met['ptq_accuracy']:.4f}), ~{row['est_ice40']['luts']} "
              f"iCE40 LCs ({time.perf_counter() - t:.0f} s)", flush=True)

    # mixed precision: per-layer weight bits, the cheapest Pareto point within 1 point of best
    if not wanted_row("mixed"):
        rows.extend(r for n, r in old.items() if n.startswith("mixed"))
        return finish(a, rows, graphs, out, sizes, t0, old)
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
    return finish(a, rows, graphs, out, sizes, t0, old)


def cnn_rows(a, old, wanted_row):
    from ddnhw.cnn_demo import digits_images, train_digits_cnn
    rows, graphs = [], {}
    for bits in CNN_BITS:
        name = f"cnn u{bits}"
        if not wanted_row(name):
            if name in old:
                rows.append(old[name])
            continue
        t = time.perf_counter()
        g, met = train_digits_cnn(bits=bits, float_epochs=a.cnn_epochs, qat_epochs=a.cnn_epochs)
        x, y = digits_images(g)
        acc = float(np.mean(golden.predict(g, x) == y))
        row = {"name": name, "accuracy": acc, "float_accuracy": met["float_accuracy"],
               "train_seconds": round(met["train_seconds"], 1), "weights": "uniform-pow2",
               "w_bits": bits, "a_bits": bits, "realize": "pow2", "model": "cnn",
               "sizes": "conv3x3x8-maxpool2-dense10"}
        row.update(hw_row(g))
        rows.append(row)
        graphs[name] = g
        print(f"{name}: {acc:.4f} (float {met['float_accuracy']:.4f}) "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
    return rows, graphs


def xnor_layer(boards, out, n_in=64, n_out=32, seed=0):
    """Synthesis of one binary layer on +-1 inputs: XnorDense vs the adder-tree Dense."""
    from ddnhw.board import build as board_build
    from ddnhw.hw import Dense, XnorDense
    from ddnhw.ir import IntType
    rng = np.random.default_rng(seed)
    w = rng.choice([-2, 2], size=(n_out, n_in))
    b = 2 * rng.integers(-8, 8, size=n_out) + 1
    xt, yt = IntType(True, 2), IntType.for_range(int(b.min()) - 2 * n_in, int(b.max()) + 2 * n_in)
    res = {"layer": f"{n_in}x{n_out}, weights +-2, +-1 inputs"}
    for kind, make in (("xnor", lambda: XnorDense(w, b, xt, yt)),
                       ("adder_tree", lambda: Dense(w, b, xt, yt))):
        for board in boards:
            t = time.perf_counter()
            try:
                rep = board_build(make(), board,
                                  out / "quant_builds" / f"xnor_layer_{kind}" / board)
                r = {k: rep.get(k) for k in ("luts", "ffs", "dsps", "fmax_mhz")}
            except Exception as e:
                r = {"error": str(e)[:300]}
            r["seconds"] = round(time.perf_counter() - t, 1)
            res.setdefault(kind, {})[board] = r
            print(f"xnor layer {kind} {board}: {r}", flush=True)
    return res


def finish(a, rows, graphs, out, sizes, t0, old):
    only = [s.strip() for s in a.only.split(";") if s.strip()] if a.only else None

    def wanted_row(name):
        return only is None or name in only or (name.startswith("cnn") and "cnn" in only)
    crows, cgraphs = cnn_rows(a, old, wanted_row)
    rows.extend(crows)
    graphs.update(cgraphs)
    boards = a.boards.split(",")
    # names contain commas: match against the known row names
    for name in [r["name"] for r in rows if a.build and r["name"] in a.build]:
        if name not in graphs:
            continue   # kept from the JSON with its builds
        row = next(r for r in rows if r["name"] == name)
        row["build"] = build_rows(graphs[name], boards, out / "quant_builds" / _dirname(name))
        if name.startswith("binary"):   # the same network with the adder tree
            row["build_adder_tree"] = build_rows(
                graphs[name], boards, out / "quant_builds" / (_dirname(name) + "_adder_tree"),
                binary_style="dense")

    # same seeds, same model: a recomputed row that was not rebuilt keeps its earlier builds
    for r in rows:
        if r["name"] in graphs and "build" not in r and old.get(r["name"], {}).get("build"):
            r["build"] = old[r["name"]]["build"]
            r["build_from_previous_run"] = True
    if only is None or "xnor layer" in only:
        xl = xnor_layer(boards, out)
    else:
        prev = out / "quant_schemes.json"
        xl = json.loads(prev.read_text()).get("xnor_layer") if prev.exists() else None
    res = {"date": datetime.date.today().isoformat(), "sizes": list(sizes),
           "qat_epochs": a.epochs, "float_epochs": a.float_epochs, "rows": rows,
           "seconds": round(time.perf_counter() - t0, 1), "recomputed": a.only or "all",
           "xnor_layer": xl}
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
        b = _builds(r.get("build", {}))
        if r.get("build_from_previous_run"):
            b += " (earlier run of the same seeded model)"
        if r.get("build_adder_tree"):
            b += "; adder tree instead of XNOR: " + _builds(r["build_adder_tree"])
        ptq = f"{r['ptq_accuracy']:.4f}" if "ptq_accuracy" in r else ""
        # rows with their own architecture are compared with their own float model
        ref = r.get("float_accuracy", fl)
        name = r["name"] + (f" (float {ref:.4f})" if "float_accuracy" in r else "")
        lines.append(f"| {name} | {r['w_bits']} | {r['a_bits']} | {r['accuracy']:.4f} | "
                     f"{(r['accuracy'] - ref) * 100:+.1f} | {ptq} | {r['est_ice40']['luts']} | "
                     f"{r['est_ecp5']['luts']} | {r['est_ecp5'].get('dsps', 0)} | "
                     f"{r['latency_cycles']} | {r['inferences_per_s_ecp5']:.2e} | {b} |")
    lines += ["", "Δ float: against the row's own float model where the architecture differs "
              "(64-32-10 MLP, CNN; shown in the name), else the 64-16-10 float model.", ""]
    lines += notes(res["rows"], fl)
    xl = res.get("xnor_layer")
    if xl:
        lines += ["", f"### One binary layer ({xl['layer']}): XNOR/popcount vs adder tree", "",
                  "| board | XnorDense | adder-tree Dense |", "|---|---|---|"]
        for board in xl.get("xnor", {}):
            cell = [_builds({board: xl[k][board]}).split(": ", 1)[1]
                    for k in ("xnor", "adder_tree")]
            lines.append(f"| {board} | {cell[0]} | {cell[1]} |")
    return "\n".join(lines) + "\n"


def _builds(d):
    return "; ".join(f"{k}: {v['luts']} LUTs, {v['dsps']} DSPs, {v['fmax_mhz']:.1f} MHz"
                     if "error" not in v else f"{k}: FAILED {v['error'][:110]}"
                     for k, v in d.items())


def notes(rows, fl):
    """Findings that need words: the 2-bit target, XNOR vs adder tree, DSPs, the CNN."""
    by = {r["name"]: r for r in rows}
    out = ["## Notes", ""]
    u2, w2 = by.get("u2"), by.get("u2 64-32-10")
    if u2 and w2:
        out.append(
            f"- **2-bit target (within 4 points of float).** The 64-16-10 MLP at 2 bits misses "
            f"it: {u2['accuracy'] * 100:.1f}% vs {fl * 100:.1f}% "
            f"({(u2['accuracy'] - fl) * 100:+.1f})."
            f" Sixteen hidden units with 3 non-zero weight levels and 3 activation levels do "
            f"not carry enough information (PTQ {u2['ptq_accuracy'] * 100:.1f}%). Widening "
            f"the hidden layer to 32 at 2 bits meets it: "
            f"{w2['accuracy'] * 100:.1f}% vs its own float {w2['float_accuracy'] * 100:.1f}% "
            f"({(w2['accuracy'] - w2['float_accuracy']) * 100:+.1f}), and "
            f"{(w2['accuracy'] - fl) * 100:+.1f} vs the 64-16-10 float, for "
            f"~{w2['est_ice40']['luts']} estimated iCE40 LCs (u4 64-16-10: "
            f"~{by['u4']['est_ice40']['luts']}). Keeping the first and last layers at 8 bits is "
            f"the usual fix but in a 2-layer MLP that is every layer; keeping only the last "
            f"layer at 8 bits (`last-w8`) gains a little accuracy for ~40% more logic.")
    b = by.get("binary w, bipolar a")
    if b and b.get("build_adder_tree"):
        cmp = []
        for board, v in b.get("build", {}).items():
            t = b["build_adder_tree"].get(board, {})
            if "luts" in v and "luts" in t:
                cmp.append(f"{board} {v['luts']} vs {t['luts']} LUTs "
                           f"({(v['luts'] / t['luts'] - 1) * 100:+.0f}%), FFs {v['ffs']} vs "
                           f"{t['ffs']}, Fmax {v['fmax_mhz']:.0f} vs {t['fmax_mhz']:.0f} MHz")
        out.append(
            "- **XNOR/popcount.** In the binary row the hidden-to-output layer (binary weights on "
            "bipolar activations) is lowered to `XnorDense` (XNOR + popcount, "
            "`2*popcount - n` folded into one constant add); the first layer sees 4-bit pixels "
            "and stays an adder tree. Whole network, XNOR vs the adder tree "
            "(`binary_style=\"dense\"`): " + "; ".join(cmp) + ". Only one 16x10 layer "
            "changes, so the saving is bounded by that layer's size; the layer alone is "
            "compared below.")
    t = by.get("ternary w, a4")
    if t:
        out.append(
            "- **Ternary build.** The earlier ECP5 failure (yosys exit 1 in ABC9) was "
            "deterministic, not the first-run WASM compile: Yosys 0.70's ABC9 reintegration "
            "mistook Amaranth's array-lane wire `o__payload[0]` for bit 0 of `o__payload` "
            "(minimal case: a one-channel `Requantizer`). `ddnhw.board.build` now hides those "
            "debug names before synthesis (regression test in tests/board/test_build.py). "
            "On the iCE40UP5K the ternary row does not fit: yosys puts the 8-bit requantizer "
            "multipliers into 9 SB_MAC16 (8 available).")
    out.append(
        "- **DSPs.** The estimate counts 0 DSPs everywhere, but yosys infers the non-power-of-two "
        "8-bit requantizer multipliers (`realize=\"mult\"`) as DSP multipliers "
        "(ternary: 9 on ECP5 and iCE40). Power-of-two rows (`pow2` weights with pow2 scales) and "
        "the binary row use none, as the builds show.")
    cnn = [r for r in rows if r.get("model") == "cnn"]
    if cnn:
        out.append(
            "- **CNN rows.** `ddnhw.quant.cnn.QuantCNN` (conv 3x3x8, maxpool 2, dense 10) "
            "supports uniform weights with power-of-two per-channel scales and one bit width "
            "for inputs, weights and activations; it has no `WeightSpec` schemes (learned "
            "scales, pow2/log2 levels, codebook, ternary, binary), so those CNN rows are not "
            "in the table. At 2 bits the 4-level input pixels themselves lose the digits "
            f"({by.get('cnn u2', {}).get('accuracy', 0) * 100:.1f}%).")
    return out


Y_FLOOR = 80.0   # accuracy axis floor of the plot (%)


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
            label = r["name"]
            if y < Y_FLOOR:   # off the scale: drawn on the floor, true value in the label
                label, y = f"{label} ({y:.0f}%, off scale)", Y_FLOOR
            ax.scatter(x, y, marker="s" if r.get("model") == "cnn" else "o")
            ax.annotate(label, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_ylim(Y_FLOOR - 1, 100.5)
        ax.axhline(fl * 100, ls="--", c="gray", label=f"float {fl * 100:.1f}%")
        ax.set_xscale("log")
        ax.set_xlabel(title)
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    fig.suptitle("digits MLP (circles) and CNN (squares): accuracy vs LUTs per scheme")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
