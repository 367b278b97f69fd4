#!/usr/bin/env python3
"""Quantization schemes on the digits MLP: accuracy against hardware cost.

Rows: float, uniform 8/6/4/3/2-bit with learned (LSQ) scales, 4-bit with power-of-two scales,
power-of-two (log2) weights, a 4-level codebook, ternary, binary (with bipolar activations),
4-bit with 50% pruning, 2-bit with a wider hidden layer (64-32-10), the mixed-precision pick;
the digits CNN (conv 3x3x8, maxpool 2, dense 10) uniform with power-of-two scales at 8/4/3/2
bits (``QuantCNN``) and with the same schemes (``SchemeCNN``: 2-bit, pow2, codebook, ternary,
binary, mixed pick).
Each row: accuracy (golden model on the held-out split), estimated LUTs/FFs/DSPs (iCE40 and
ECP5 calibrations), latency, II and throughput at the board clock; ``--build`` rows also get
real nextpnr numbers (LUTs, DSPs, Fmax, throughput at Fmax) of the core alone (measurement
top; folded automatically where the unrolled core does not fit the board). Writes
bench/results/quant_schemes.{json,md,png}; the graphs go to out/quant_schemes_graphs/ so that
``--build-only`` can synthesize them later without retraining.

    python bench/quant_schemes.py --build ''              # train and estimate every row
    python bench/quant_schemes.py --build-only            # then synthesize the --build rows
    python bench/quant_schemes.py --only "u2 64-32-10;cnn u4"   # recompute rows, keep the rest
    python bench/quant_schemes.py --energy-schemes     # energy vs accuracy over 5 seeds

``--energy-schemes`` is one self-contained run (bench/results/quant_schemes_energy.{json,md,png}):
the MLP 64-``--hidden``-10 at 8-bit, 4-bit, 2-bit, power-of-two (log2) weights and binary
weights with bipolar activations, each trained (``--epochs`` QAT epochs for every scheme, from
a float model of ``--float-epochs``) for ``--seeds`` seeds (the data split and the training
seed both vary with the seed, as in bench/accuracy.py); accuracy as mean ± std over the seeds;
energy per inference on the iCE40UP5K (ddnhw.energy: the circuit ``ddnhw build`` makes, gate-
level netlist on that seed's test split) of the models of the first ``--energy-seeds`` seeds.
The PNG: the Pareto front of accuracy against energy next to accuracy against LUTs.

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
        # 2-bit: all four two's complement codes {-2,-1,0,1}, min/max-calibrated, long QAT
        ("u2", U(bits=2, full_range=True, calib="minmax"), ActSpec(bits=2),
         {"qat_lr": 1e-2, "qat_epochs": 300}),
        ("u2 symmetric", U(bits=2), ActSpec(bits=2), {"qat_lr": 1e-2}),
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


def cnn_schemes():
    """Digits CNN rows with the schemes (SchemeCNN, 4-bit pixels): name, weights, acts, cfg."""
    U = WeightSpec
    return [
        ("cnn u2 (4-bit pixels)", U(bits=2, full_range=True, calib="minmax"), ActSpec(bits=2),
         {"qat_lr": 1e-2}),
        ("cnn pow2 (log2) w4", U("pow2", 4), ActSpec(bits=4, realize="pow2"), {}),
        ("cnn codebook 4 levels", U("codebook", 2, codebook_bits=6), ActSpec(bits=4), {}),
        ("cnn ternary w, a4", U("ternary", 2), ActSpec(bits=4), {"qat_lr": 1e-2}),
        ("cnn binary w, bipolar a", U("binary", 1), ActSpec("bipolar", 2), {"qat_lr": 1e-2}),
    ]


DEFAULT_BUILD = ("u4;u2;pow2 (log2) w4;codebook 4 levels;ternary w, a4;binary w, bipolar a;mixed;"
                 "cnn u4;cnn u2 (4-bit pixels);cnn pow2 (log2) w4;cnn codebook 4 levels;"
                 "cnn ternary w, a4;cnn binary w, bipolar a;cnn mixed")


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
                                           "timing_met", "inferences_per_s",
                                           "inferences_per_s_at_clock", "ii_cycles")}
            if rep.get("folding"):
                res["folding"] = rep["folding"]["mode"]
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
    ap.add_argument("--build", default=DEFAULT_BUILD,
                    help="semicolon-separated row names to synthesize ('' for none; 'mixed' and "
                         "'cnn mixed' for the picks)")
    ap.add_argument("--build-only", action="store_true",
                    help="no training: synthesize the --build rows from the saved graphs")
    ap.add_argument("--boards", default="icebreaker,ulx3s-85f")
    ap.add_argument("--energy-only", action="store_true",
                    help="no training: energy per inference (ddnhw.energy, gate-level netlist on "
                         "the test split, iCE40UP5K, the circuit `ddnhw build` makes) of the "
                         "--energy rows from the saved graphs")
    ap.add_argument("--energy", default="",
                    help="semicolon-separated row names for --energy-only ('all': every row "
                         "with a saved graph)")
    ap.add_argument("--energy-schemes", action="store_true",
                    help="one run: 8/4/2-bit, pow2 and binary MLPs over --seeds seeds, UP5K "
                         "energy of the first --energy-seeds seeds' models, accuracy vs energy "
                         "and vs LUTs (bench/results/quant_schemes_energy.*)")
    ap.add_argument("--seeds", type=int, default=5, help="--energy-schemes: training seeds")
    ap.add_argument("--energy-seeds", type=int, default=1,
                    help="--energy-schemes: estimate the energy of these first seeds' models")
    ap.add_argument("--no-adder-tree", action="store_true",
                    help="do not rebuild the binary row with the adder tree (keep the JSON's)")
    ap.add_argument("--only", default="",
                    help="semicolon-separated row names to recompute ('float', 'mixed', 'cnn', or "
                         "a row name); the other rows are kept from the existing JSON")
    ap.add_argument("--cnn-epochs", type=int, default=40)
    ap.add_argument("--search-epochs", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--graphs", default=str(ROOT / "out" / "quant_schemes_graphs"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.build_only:
        return build_only(a, out)
    if a.energy_only:
        return energy_only(a, out)
    if a.energy_schemes:
        return energy_schemes(a, out)
    import torch
    from ddnhw.datasets import load_digits_split
    from ddnhw.quant.qat import pretrain_float, train_scheme
    from ddnhw.quant.search import candidates, channel_candidates, pareto_front, search
    from ddnhw.quant.train import accuracy

    torch.set_num_threads(1)
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
        if kept_old(name, wanted_row, old, rows):
            continue
        t = time.perf_counter()
        over = dict(over)
        rsizes = tuple(over.pop("sizes", sizes))
        row, g, met = train_row(
            name, w, act, over, a, a.epochs, xte, yte, export_scheme_mlp,
            lambda cfg: train_scheme(float_model(rsizes), xtr, ytr, xte, yte, cfg))
        if rsizes != sizes:
            row["sizes"] = list(rsizes)
            row["float_accuracy"] = met["float_accuracy"]
        rows.append(row)
        graphs[name] = g
        print(f"{name}: {row['accuracy']:.4f} (PTQ {met['ptq_accuracy']:.4f}), "
              f"~{row['est_ice40']['luts']} "
              f"iCE40 LCs ({time.perf_counter() - t:.0f} s)", flush=True)

    # mixed precision: per-layer weight bits, the cheapest Pareto point within 1 point of best
    if not wanted_row("mixed"):
        rows.extend(r for n, r in old.items() if n.startswith("mixed"))
    else:
        t = time.perf_counter()
        # per-layer widths, and per-channel widths in the hidden layer (the least important
        # 25/50/75% of its channels at 2 bits, the rest at 4)
        cands = candidates(2, (2, 3, 4), (3, 4)) + channel_candidates(fm, 4, 2)
        srows, sgraphs = search(fm, data, cands, dict(qat_epochs=a.search_epochs,
                                                      distill=a.distill))
        row, g = mixed_row(srows, sgraphs, pareto_front, "mixed pick", a)
        row["search"]["seconds"] = round(time.perf_counter() - t, 1)
        rows.append(row)
        graphs[row["name"]] = g
        print(f"{row['name']}: {row['accuracy']:.4f}", flush=True)
    crows, cgraphs = cnn_rows(a, old, wanted_row, data)
    rows.extend(crows)
    graphs.update(cgraphs)
    return finish(a, rows, graphs, out, sizes, t0)


def train_row(name, w, act, over, a, epochs, x_test, y_test, export, fit):
    """One scheme row: the SchemeConfig of the row's specs and overrides, QAT (``fit(cfg)`` ->
    ``(model, metrics)``), export, golden accuracy on ``x_test`` (asserted equal to the
    fake-quantized model's), estimates. Returns ``(row, graph, metrics)``."""
    from ddnhw.quant.qat import SchemeConfig
    cfg = SchemeConfig(weights=w, acts=act, qat_epochs=epochs, distill=a.distill)
    for k, v in over.items():
        setattr(cfg, k, v)
    model, met = fit(cfg)
    g = export(model, meta={"dataset": "sklearn-digits", "row": name})
    acc = float(np.mean(golden.classify(g, golden.quantize_input(g, x_test)) == y_test))
    assert abs(acc - met["quant_accuracy"]) < 1e-6, (acc, met)   # fake-quant == golden
    w0 = w[0] if isinstance(w, (list, tuple)) else w
    row = {"name": name, "accuracy": acc, "ptq_accuracy": met["ptq_accuracy"],
           "train_seconds": round(met["train_seconds"], 1),
           "weights": _kind(w), "w_bits": _bits(w), "a_bits": act.bits,
           "realize": act.realize, "distill": cfg.distill, "prune": cfg.prune,
           "qat_epochs": cfg.qat_epochs, "calib": w0.calib, "full_range": w0.full_range}
    row.update(hw_row(g))
    return row, g, met


def mixed_row(srows, sgraphs, pareto_front, prefix, a, extra=None):
    """The cheapest candidate on the Pareto front within 1 point of the best accuracy."""
    front = pareto_front(srows)
    best = max(r["accuracy"] for r in srows)
    pick = min((r for r in front if r["accuracy"] >= best - 0.01), key=lambda r: r["luts"])
    g = sgraphs[pick["index"]]
    row = {"name": f"{prefix} ({pick['label']})", "accuracy": pick["accuracy"],
           "ptq_accuracy": pick["ptq_accuracy"], "weights": "uniform", "w_bits": pick["w_bits"],
           "a_bits": pick["a_bits"], "channel_bits": pick.get("channel_bits"),
           "realize": "mult", "distill": a.distill, "prune": 0.0,
           "search": {"candidates": len(srows), "front": [r["label"] for r in front],
                      "all": [[r["label"], r["accuracy"], r["luts"], r["dsps"]] for r in srows],
                      "front_accuracy": [r["accuracy"] for r in front],
                      "front_luts_ice40": [r["luts"] for r in front]}}
    row.update(extra or {})
    row.update(hw_row(g))
    return row, g


def kept_old(name, wanted_row, old, rows):
    """True when row ``name`` is not rerun now; its previous result, if any, goes to ``rows``."""
    if wanted_row(name):
        return False
    if name in old:
        rows.append(old[name])
    return True


def cnn_rows(a, old, wanted_row, data):
    """Digits CNN rows: uniform QuantCNN at CNN_BITS, then the SchemeCNN schemes from one float
    CNN (BatchNorm folded) and the mixed-precision pick."""
    from ddnhw import examples
    from ddnhw.examples.records import DIGITS_CNN_LAYERS
    from ddnhw.quant.cnn import CNNConfig, train_cnn
    from ddnhw.quant.qat import train_scheme
    from ddnhw.quant.scheme_cnn import SchemeCNN, export_scheme_cnn
    from ddnhw.quant.search import candidates, pareto_front, search
    rows, graphs = [], {}
    arch = "conv3x3x8-maxpool2-dense10"
    for bits in CNN_BITS:
        name = f"cnn u{bits}"
        if kept_old(name, wanted_row, old, rows):
            continue
        t = time.perf_counter()
        t = examples.train("cnn", bits=bits, epochs=a.cnn_epochs)
        g, met = t.graph, {"float_accuracy": t.float_accuracy, "train_seconds": t.seconds}
        x, y = examples.test_inputs("cnn", g)
        acc = float(np.mean(golden.classify(g, x) == y))
        row = {"name": name, "accuracy": acc, "float_accuracy": met["float_accuracy"],
               "train_seconds": round(met["train_seconds"], 1), "weights": "uniform-pow2",
               "w_bits": bits, "a_bits": bits, "in_bits": bits, "realize": "pow2",
               "model": "cnn", "sizes": arch}
        row.update(hw_row(g))
        rows.append(row)
        graphs[name] = g
        print(f"{name}: {acc:.4f} (float {met['float_accuracy']:.4f}) "
              f"({time.perf_counter() - t:.0f} s)", flush=True)

    names = [n for n, *_ in cnn_schemes()] + ["cnn mixed"]
    if not any(wanted_row(n) for n in names):
        rows.extend(r for n, r in old.items() if n.startswith("cnn ")
                    and n not in [f"cnn u{b}" for b in CNN_BITS])
        return rows, graphs
    xtr, ytr, xte, yte = data
    X = (lambda v: np.asarray(v).reshape(-1, 1, 8, 8))
    cdata = (X(xtr), ytr, X(xte), yte)
    r = train_cnn(xtr, ytr, xte, yte, CNNConfig(layers=[dict(s) for s in DIGITS_CNN_LAYERS],
                                                float_epochs=a.cnn_epochs, qat_epochs=0))
    fcnn = r.model            # BatchNorm folded
    fcnn.set_quantize(False)

    def make(ws, acts):
        return SchemeCNN.from_float(fcnn, weights=ws, acts=acts)
    for name, w, act, over in cnn_schemes():
        if kept_old(name, wanted_row, old, rows):
            continue
        t = time.perf_counter()
        row, g, met = train_row(name, w, act, over, a, a.cnn_epochs, xte.reshape(-1, 8, 8, 1),
                                yte, export_scheme_cnn,
                                lambda cfg: train_scheme(fcnn, *cdata, cfg, model=make(w, act)))
        acc = row["accuracy"]
        row.update({"float_accuracy": r.float_accuracy, "in_bits": 4, "model": "cnn",
                    "sizes": arch})
        rows.append(row)
        graphs[name] = g
        print(f"{name}: {acc:.4f} (PTQ {met['ptq_accuracy']:.4f}, float {r.float_accuracy:.4f})"
              f" ({time.perf_counter() - t:.0f} s)", flush=True)
    if not wanted_row("cnn mixed"):
        rows.extend(v for n, v in old.items() if n.startswith("cnn mixed"))
        return rows, graphs
    t = time.perf_counter()
    srows, sgraphs = search(fcnn, cdata, candidates(2, (2, 3, 4), (3, 4)),
                            dict(qat_epochs=a.search_epochs, distill=a.distill), make=make,
                            export=export_scheme_cnn)
    row, g = mixed_row(srows, sgraphs, pareto_front, "cnn mixed pick", a,
                       {"model": "cnn", "sizes": arch, "in_bits": 4,
                        "float_accuracy": r.float_accuracy})
    row["search"]["seconds"] = round(time.perf_counter() - t, 1)
    rows.append(row)
    graphs[row["name"]] = g
    print(f"{row['name']}: {row['accuracy']:.4f}", flush=True)
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


def _build_names(a, rows):
    """Row names of ``--build`` (``mixed``/``cnn mixed``: the picks)."""
    want = [s.strip() for s in a.build.split(";") if s.strip()]
    out = []
    for r in rows:
        n = r["name"]
        if n in want or (n.startswith("mixed pick") and "mixed" in want) or \
                (n.startswith("cnn mixed pick") and "cnn mixed" in want):
            out.append(n)
    return out


def run_builds(a, rows, graphs, out, after_row=None):
    """Synthesize the ``--build`` rows, in the order ``--build`` names them; ``after_row()`` runs
    after each row (e.g. to save the results so far)."""
    boards = [b for b in a.boards.split(",") if b]
    want = [s.strip() for s in a.build.split(";") if s.strip()]

    def order(name):
        key = "mixed" if name.startswith("mixed pick") else \
            "cnn mixed" if name.startswith("cnn mixed pick") else name
        return want.index(key) if key in want else len(want)
    for name in sorted(_build_names(a, rows), key=order):
        if name not in graphs:
            continue   # kept from the JSON with its builds
        row = next(r for r in rows if r["name"] == name)
        row["build"] = build_rows(graphs[name], boards, out / "quant_builds" / _dirname(name))
        row.pop("build_from_previous_run", None)
        if name.startswith("binary") and not a.no_adder_tree:   # the same, with the adder tree
            row["build_adder_tree"] = build_rows(
                graphs[name], boards, out / "quant_builds" / (_dirname(name) + "_adder_tree"),
                binary_style="dense")
        if after_row:
            after_row()


def build_only(a, out):
    """Synthesize the ``--build`` rows from the graphs the last training run saved; every row
    with a saved graph gets its estimates recomputed (the current resource model)."""
    from ddnhw.ir.graph import load_graph
    res = json.loads((out / "quant_schemes.json").read_text())
    graphs = {}
    for row in res["rows"][1:]:
        f = Path(a.graphs) / f"{_dirname(row['name'])}.json"
        if f.exists():
            graphs[row["name"]] = load_graph(f)
            row.update(hw_row(graphs[row["name"]]))
        else:
            print(f"no saved graph for {row['name']!r} ({f})", flush=True)
    run_builds(a, res["rows"], graphs, out, after_row=lambda: write_results(res, out))
    write_results(res, out)
    return 0


def energy_only(a, out):
    """Energy per inference of the ``--energy`` rows on the iCE40UP5K from their saved graphs
    (``row["energy_ice40"]``), then the tables and the plots again."""
    from ddnhw import examples
    from ddnhw.energy import estimate_energy
    from ddnhw.ir.graph import load_graph
    res = json.loads((out / "quant_schemes.json").read_text())
    want = [s.strip() for s in a.energy.split(";") if s.strip()]
    for row in res["rows"][1:]:
        if want != ["all"] and row["name"] not in want:
            continue
        f = Path(a.graphs) / f"{_dirname(row['name'])}.json"
        if not f.exists():
            print(f"no saved graph for {row['name']!r} ({f})", flush=True)
            continue
        g = load_graph(f)
        x = examples.input_vectors(g, "test", example="cnn" if row.get("model") == "cnn"
                                   else "mlp")
        t = time.perf_counter()
        try:
            e = estimate_energy(g, "icebreaker", ROOT / "out" / "quant_schemes_energy" /
                                _dirname(row["name"]), inputs=x)
            row["energy_ice40"] = {k: e[k] for k in (
                "energy_nj_per_inference", "dynamic_power_mw_board_clock", "static_power_mw",
                "inferences_per_s_board_clock", "gate_level_mismatches", "breakdown")}
            row["energy_ice40"]["folding"] = e["folding"]["mode"]
        except Exception as ex:   # report, keep going
            row["energy_ice40"] = {"error": str(ex)[:300]}
        row["energy_ice40"]["seconds"] = round(time.perf_counter() - t, 1)
        print(f"energy {row['name']}: {row['energy_ice40']}", flush=True)
        write_results(res, out)
    write_results(res, out)
    return 0


def finish(a, rows, graphs, out, sizes, t0):
    from ddnhw.ir.graph import save_graph
    gdir = Path(a.graphs)
    gdir.mkdir(parents=True, exist_ok=True)
    for name, g in graphs.items():
        save_graph(g, gdir / f"{_dirname(name)}.json")
    only = [s.strip() for s in a.only.split(";") if s.strip()] if a.only else []
    if a.build:
        run_builds(a, rows, graphs, out)
    prev = out / "quant_schemes.json"
    old = {r["name"]: r for r in json.loads(prev.read_text())["rows"]} if prev.exists() else {}
    # same seeds, same model: a recomputed row that was not rebuilt keeps its earlier builds
    for r in rows:
        if r["name"] in graphs and "build" not in r and old.get(r["name"], {}).get("build"):
            r["build"] = old[r["name"]]["build"]
            r["build_from_previous_run"] = True
    boards = [b for b in a.boards.split(",") if b]
    if "xnor layer" in only:
        xl = xnor_layer(boards, out)
    else:
        xl = json.loads(prev.read_text()).get("xnor_layer") if prev.exists() else None
    res = {"date": datetime.date.today().isoformat(), "sizes": list(sizes),
           "qat_epochs": a.epochs, "float_epochs": a.float_epochs,
           "cnn_epochs": a.cnn_epochs, "search_epochs": a.search_epochs, "rows": rows,
           "seconds": round(time.perf_counter() - t0, 1), "recomputed": a.only or "all",
           "xnor_layer": xl}
    write_results(res, out)
    return 0


def write_results(res, out):
    flow.write_json_atomic(out / "quant_schemes.json", res)
    (out / "quant_schemes.md").write_text(markdown(res))
    plot(res["rows"], out / "quant_schemes.png")
    print(f"wrote {out / 'quant_schemes.md'}")


BOARD_TITLES = (("icebreaker", "iCE40UP5K build"), ("ulx3s-85f", "ECP5-85F build"))


def markdown(res):
    fl = res["rows"][0]["accuracy"]
    lines = [f"# Quantization schemes, digits MLP {'-'.join(map(str, res['sizes']))} and digits "
             f"CNN ({res['date']})", "",
             "Accuracy: golden model on the 360-image held-out split (equal to the integer-mode "
             "PyTorch model, asserted per row). est: the lowering's resource estimate of the "
             "fully unrolled core (iCE40 logic cells / ECP5 LUTs, and DSPs: the requantizers' "
             "non-power-of-two multipliers as yosys maps them); throughput at the board clock "
             "(iCE40UP5K 12 MHz / ECP5 25 MHz) = clock / II. Builds: real nextpnr numbers of the "
             "core (measurement top), folded automatically where the unrolled core does not fit "
             "the board, with the throughput at Fmax. "
             f"QAT {res['qat_epochs']} epochs (unless the row says otherwise) from one float "
             f"model ({res['float_epochs']} epochs); CNN rows {res.get('cnn_epochs', 40)} float "
             f"+ {res.get('cnn_epochs', 40)} QAT epochs.", "",
             "| scheme | w bits | a bits | accuracy | Δ float | PTQ | est iCE40 LCs, DSPs | "
             "est ECP5 LUTs, DSPs | latency, II | inf/s (12 / 25 MHz) | iCE40UP5K build | "
             "ECP5-85F build | UP5K nJ/inference |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        if r["name"] == "float":
            lines.append(f"| float MLP | 32f | 32f | {fl:.4f} | 0 | | | | | | | | |")
            continue
        ptq = f"{r['ptq_accuracy']:.4f}" if "ptq_accuracy" in r else ""
        # rows with their own architecture are compared with their own float model
        ref = r.get("float_accuracy", fl)
        name = r["name"] + (f" (float {ref:.4f})" if "float_accuracy" in r else "")
        if r.get("qat_epochs") and r["qat_epochs"] != res["qat_epochs"] and \
                r.get("model") != "cnn":
            name += f", {r['qat_epochs']} epochs"
        ei, ee = r["est_ice40"], r["est_ecp5"]
        cells = []
        for board, _ in BOARD_TITLES:
            v = r.get("build", {}).get(board)
            c = _build_cell(v) if v else ""
            if v and r.get("build_from_previous_run"):
                c += " (earlier run)"
            t = r.get("build_adder_tree", {}).get(board)
            if t:
                c += "; adder tree: " + _build_cell(t)
            cells.append(c)
        lines.append(f"| {name} | {r['w_bits']} | {r['a_bits']} | {r['accuracy']:.4f} | "
                     f"{(r['accuracy'] - ref) * 100:+.1f} | {ptq} | {ei['luts']}, "
                     f"{ei.get('dsps', 0)} | {ee['luts']}, {ee.get('dsps', 0)} | "
                     f"{r['latency_cycles']}, {r['ii_cycles']} | "
                     f"{r['inferences_per_s_ice40']:.2e} / {r['inferences_per_s_ecp5']:.2e} | "
                     f"{cells[0]} | {cells[1]} | {_energy_cell(r.get('energy_ice40'))} |")
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


def _energy_cell(e):
    """UP5K energy per inference (ddnhw.energy, dynamic, test split) of a row, or ''."""
    if not e:
        return ""
    if "error" in e:
        return "FAILED: " + e["error"][:80].replace("|", "/").replace("\n", " ")
    return (f"{e['energy_nj_per_inference']:.2f} ({e['folding']}, "
            f"{e['dynamic_power_mw_board_clock']:.1f} mW)")


def _build_cell(v):
    if "error" in v:
        return "FAILED: " + v["error"][:110].replace("|", "/").replace("\n", " ")
    c = f"{v['luts']} LUTs, {v['dsps']} DSPs, {v['fmax_mhz']:.1f} MHz"
    if v.get("inferences_per_s"):
        c += f", {v['inferences_per_s']:.2e}/s"
    if v.get("folding") and v["folding"] != "unrolled":
        c += f" (folded, II {v.get('ii_cycles')})"
    return c


def _builds(d):
    return "; ".join(f"{k}: {v['luts']} LUTs, {v['dsps']} DSPs, {v['fmax_mhz']:.1f} MHz"
                     if "error" not in v else f"{k}: FAILED {v['error'][:110]}"
                     for k, v in d.items())


def notes(rows, fl):
    """Findings that need words: the 2-bit target, XNOR vs adder tree, DSPs, the CNN."""
    by = {r["name"]: r for r in rows}
    out = ["## Notes", ""]
    u2, us, w2 = by.get("u2"), by.get("u2 symmetric"), by.get("u2 64-32-10")
    if u2 and us:
        d = (u2["accuracy"] - fl) * 100
        out.append(
            f"- **2-bit target (within 4 points of float).** The 64-16-10 MLP at 2 bits "
            f"(weights and activations; the input pixels stay 4-bit, as in every MLP row): "
            f"{u2['accuracy'] * 100:.1f}% vs float {fl * 100:.1f}% ({d:+.1f}: "
            f"{'met' if d >= -4 else 'missed'}). What won it back, measured one at a time on "
            f"this seed: all four two's complement weight codes {{-2, -1, 0, 1}} "
            f"(`WeightSpec(full_range=True)`) instead of the symmetric {{-1, 0, 1}} "
            f"(`u2 symmetric`: {us['accuracy'] * 100:.1f}%, PTQ {us['ptq_accuracy'] * 100:.1f}%), "
            f"min/max weight calibration as the QAT start, and 300 QAT epochs with "
            f"distillation from the float model. Ablation (`python bench/quant_2bit_ablation.py`,"
            f" one setting at a time, one seed): full range with MSE calibration 91.4% (80 "
            f"epochs) and 91.7% (300), with min/max 93.6% (300); symmetric codes: 300 epochs "
            f"91.4%, 500 epochs 90.6%, distillation weight 0.9-1.0 with a lower learning rate "
            f"91.1%, MSE-calibrated activations 83.1%. One seed only: the spread over seeds was "
            f"not measured. Every layer is 2-bit: no first/last layer at "
            f"higher precision. The hardware of the full-range code costs "
            f"~{u2['est_ice40']['luts']} estimated iCE40 LCs vs ~{us['est_ice40']['luts']} "
            f"for the symmetric one (the weight -2 is a shifted add).")
    if w2:
        out.append(
            f"- **Wider 2-bit MLP.** 64-32-10 at 2 bits (symmetric weights): "
            f"{w2['accuracy'] * 100:.1f}% vs its own float {w2['float_accuracy'] * 100:.1f}%, "
            f"~{w2['est_ice40']['luts']} estimated iCE40 LCs; keeping only the last layer at 8 "
            f"bits (`last-w8`) gains a little accuracy for ~40% more logic.")
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
    dsp_rows = [r for r in rows[1:] if r.get("est_ecp5", {}).get("dsps")]
    checks = []
    for r in rows[1:]:
        for board, fam in (("icebreaker", "ice40"), ("ulx3s-85f", "ecp5")):
            v = r.get("build", {}).get(board, {})
            if "dsps" in v and v.get("folding") in (None, "unrolled"):
                checks.append((r["name"], board, r[f"est_{fam}"].get("dsps", 0), v["dsps"]))
    same = sum(e == b for _, _, e, b in checks)
    out.append(
        "- **DSPs.** Learned scales realized as 8-bit integer multipliers (`realize=\"mult\"`) "
        "put one constant multiplier per channel in the requantizers; yosys maps each "
        "non-power-of-two one to a DSP (ECP5: MULT18X18D always; iCE40UP5K: SB_MAC16 when the "
        "product has >= 11 bits after the constant's trailing zeros become a shift). The "
        "estimate now counts them (`ddnhw.lower.estimate.const_mul_dsps`, checked against "
        "yosys in tests/lower/test_estimate_dsps.py), so `ddnhw search` and this table show "
        f"them: {len(dsp_rows)} rows use DSPs. Estimate vs build on the unrolled builds: "
        f"{same} of {len(checks)} equal (folded builds: one DSP per PE lane, yosys shares "
        "a lane's per-channel multipliers; channels no layer reads need none)"
        + ("" if same == len(checks) else " (" + "; ".join(
            f"{n} {b}: est {e}, build {d}" for n, b, e, d in checks if e != d) + ")")
        + ". Power-of-two scales (`realize=\"pow2\"`, the pow2 rows) and bipolar activations "
        "need no multiplier.")
    pw = by.get("pow2 (log2) w4")
    if pw and pw.get("build"):
        out.append(
            "- **Power-of-two weights.** " + "; ".join(
                f"{b}: {v['dsps']} DSPs" for b, v in pw["build"].items() if "dsps" in v)
            + " in the pow2 MLP build; tests/quant/test_scheme_synth.py (synth marker) checks "
            "per layer, on both families, that a pow2 layer with its shift-only requantizer "
            "has no DSP and no `$mul` while the learned-scale layer next to it has as many "
            "DSPs as estimated.")
    mixed = [r for r in rows if r["name"].startswith("mixed pick")]
    if mixed and mixed[0].get("search", {}).get("all"):
        m = mixed[0]
        allc = m["search"]["all"]
        best = max(allc, key=lambda v: v[1])
        chan = [c for c in allc if "(" in c[0]]
        front = m["search"]["front"]
        out.append(
            f"- **Mixed precision.** `ddnhw.quant.search` trained {len(allc)} candidates "
            f"({m['search'].get('seconds', 0):.0f} s): per-layer weight widths 2/3/4 with 3- or "
            f"4-bit activations, and {len(chan)} with per-channel widths in the hidden layer "
            "(`WeightSpec(channel_bits=...)`: the 25/50/75% least important channels, by "
            "`max|w_row| * max|w_next_col|`, at 2 bits, the rest at 4). Pareto front "
            f"(accuracy vs estimated iCE40 LCs): {', '.join(front)}; per-channel points on it: "
            f"{', '.join(f for f in front if '(' in f) or 'none'}. Most accurate candidate: "
            f"{best[0]} ({best[1] * 100:.1f}%, ~{best[2]} LCs). The pick is the cheapest "
            f"front point within 1 point of the best: {m['name']}.")
    t = by.get("ternary w, a4")
    if t:
        out.append(
            "- **Ternary build.** An earlier ECP5 failure (yosys exit 1 in ABC9) was Yosys "
            "0.70's ABC9 reintegration mistaking Amaranth's array-lane wire `o__payload[0]` "
            "for bit 0 of `o__payload`; `ddnhw.board.build` hides those debug names before "
            "synthesis (regression test in tests/board/test_build.py).")
    cnn = [r for r in rows if r.get("model") == "cnn"]
    if cnn:
        out.append(
            "- **CNN rows.** `cnn u8..u2`: `QuantCNN` (uniform weights with power-of-two "
            "per-channel scales, one bit width for pixels, weights and activations; at 2 bits "
            "the 4-level pixels lose the digits: "
            f"{by.get('cnn u2', {}).get('accuracy', 0) * 100:.1f}%)."
            " The other CNN rows are `ddnhw.quant.scheme_cnn.SchemeCNN` with the MLP's "
            "`WeightSpec`/`ActSpec` schemes per layer, trained from one float CNN (BatchNorm "
            "folded) with 4-bit pixels; the mixed pick comes from the same search over the "
            "conv and dense layers' weight bits." + _cnn_2bit(by))
    out.append(
        "- **Codebook in hardware.** Unrolled layers: the codebook's integer levels are the "
        "layer's constant weights, so each product is a shift-add of the level's signed digits "
        "and the adder graph shares equal terms across outputs (constant multipliers; no table "
        "is needed when nothing is stored). Folded layers (`FoldedDense`) store the decoded "
        "integer levels in the weight memory and use generic multipliers; storing "
        "log2(levels)-bit indices with a per-MAC decode table is not implemented (it would "
        "only pay where the weight memory is the binding resource).")
    return out


def _cnn_2bit(by):
    r = by.get("cnn u2 (4-bit pixels)")
    if not r:
        return ""
    return (f" 2-bit weights and activations with 4-bit pixels: {r['accuracy'] * 100:.1f}% vs "
            f"float {r['float_accuracy'] * 100:.1f}% "
            f"({(r['accuracy'] - r['float_accuracy']) * 100:+.1f}).")


Y_FLOOR = 80.0   # accuracy axis floor of the plot (%)


def plot(rows, path):
    """Accuracy against LUTs, one panel per family (iCE40UP5K, ECP5-85F); circles MLP, squares
    CNN; filled: real build of the core (folded where the board needed it), hollow: the
    estimate of the fully unrolled core (rows not built on that board)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.5), sharey=True)
    fl = rows[0]["accuracy"]
    cnn_fl = next((r["float_accuracy"] for r in rows if r.get("model") == "cnn"
                   and "float_accuracy" in r), None)
    for ax, (fam, board, title) in zip(axes, (
            ("ice40", "icebreaker", "iCE40UP5K logic cells"),
            ("ecp5", "ulx3s-85f", "ECP5-85F LUTs"))):
        for r in rows[1:]:
            b = r.get("build", {}).get(board, {})
            built = "luts" in b and b.get("luts")
            x = b["luts"] if built else r[f"est_{fam}"]["luts"]
            y = r["accuracy"] * 100
            label = r["name"]
            if y < Y_FLOOR:   # off the scale: drawn on the floor, true value in the label
                label, y = f"{label} ({y:.0f}%, off scale)", Y_FLOOR
            if built and b.get("folding") not in (None, "unrolled"):
                label += " (folded)"
            cnn = r.get("model") == "cnn"
            color = "tab:orange" if cnn else "tab:blue"
            ax.scatter(x, y, marker="s" if cnn else "o", s=36, edgecolors=color,
                       facecolors=color if built else "none")
            ax.annotate(label, (x, y), fontsize=6.5, xytext=(3, 3), textcoords="offset points")
        ax.set_ylim(Y_FLOOR - 1, 100.5)
        ax.axhline(fl * 100, ls="--", c="tab:blue", lw=0.8, label=f"float MLP {fl * 100:.1f}%")
        if cnn_fl:
            ax.axhline(cnn_fl * 100, ls=":", c="tab:orange", lw=0.8,
                       label=f"float CNN {cnn_fl * 100:.1f}%")
        ax.set_xscale("log")
        ax.set_xlabel(f"{title} (filled: nextpnr build; hollow: estimate, not built)")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    fig.suptitle("digits MLP (circles) and CNN (squares): accuracy vs LUTs per scheme")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    plot_energy(rows, Path(path).with_name("quant_schemes_rows_energy.png"))


def plot_energy(rows, path):
    """Accuracy against energy per inference on the iCE40UP5K (ddnhw.energy) for the rows
    that have it, with their Pareto front."""
    pts = [(r["energy_ice40"]["energy_nj_per_inference"], r["accuracy"] * 100, r)
           for r in rows[1:] if "energy_nj_per_inference" in r.get("energy_ice40", {})]
    if not pts:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 6))
    front, best = [], -1.0
    for x, y, r in sorted(pts, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
        cnn = r.get("model") == "cnn"
        ax.scatter(x, y, marker="s" if cnn else "o",
                   color="tab:orange" if cnn else "tab:blue")
        ax.annotate(r["name"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.plot(*zip(*front), "k--", lw=0.8, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("dynamic energy per inference on the iCE40UP5K (nJ, gate-level estimate)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title("accuracy vs energy per inference per quantization scheme")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- --energy-schemes: energy per inference across schemes, accuracy over seeds ----------------

ENERGY_SCHEMES = ("u8", "u4", "u2", "pow2 (log2) w4", "binary w, bipolar a")
ENERGY_BOARD = "icebreaker"


def _cpu():
    import resource
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = resource.getrusage(resource.RUSAGE_SELF)
    return c.ru_utime + c.ru_stime + s.ru_utime + s.ru_stime


def _mean_std(v):
    v = [x for x in v if x is not None]
    if not v:
        return None, None
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if len(v) > 1 else None)


def energy_schemes(a, out):
    """``--energy-schemes`` (see the module doc): writes quant_schemes_energy.{json,md,png}
    after every trained or estimated model (a rerun with the same settings reuses them)."""
    import os
    import platform
    import torch
    from ddnhw.datasets import load_digits_split
    from ddnhw.energy import estimate_energy
    from ddnhw.quant.qat import pretrain_float, train_scheme
    from ddnhw.quant.train import accuracy
    torch.set_num_threads(1)
    spec = {n: (w, act, over) for n, w, act, over in rows_spec()}
    sizes = (64, a.hidden, 10)
    settings = {"sizes": list(sizes), "qat_epochs": a.epochs, "float_epochs": a.float_epochs,
                "distill": a.distill, "seeds": a.seeds, "energy_seeds": a.energy_seeds,
                "board": ENERGY_BOARD, "schemes": list(ENERGY_SCHEMES)}
    path = out / "quant_schemes_energy.json"
    res = {}
    if path.exists():
        res = json.loads(path.read_text())
        if res.get("settings") != settings:
            res = {}
    runs = res.get("runs", {})       # "seed/scheme" -> row
    res = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or
                       platform.machine(), "python": platform.python_version(),
                       "load_average_start": os.getloadavg()[0]},
           "settings": settings, "runs": runs, "floats": res.get("floats", {}),
           "cpu_seconds": res.get("cpu_seconds", {"train": 0.0, "energy": 0.0})}
    work = ROOT / "out" / "quant_schemes_energy"

    def save():
        res["summary"] = energy_summary(res)
        flow.write_json_atomic(path, res)
        (out / "quant_schemes_energy.md").write_text(energy_markdown(res))
        plot_energy_schemes(res, out / "quant_schemes_energy.png")

    for seed in range(a.seeds):
        keys = [f"{seed}/{n}" for n in ENERGY_SCHEMES]
        want_energy = seed < a.energy_seeds
        if all(k in runs and (not want_energy or "energy" in runs[k]) for k in keys):
            continue
        xtr, ytr, xte, yte = load_digits_split(seed=seed)
        c0 = _cpu()
        fm = pretrain_float(xtr, ytr, sizes, epochs=a.float_epochs, seed=seed)
        res["floats"][str(seed)] = accuracy(fm, torch.as_tensor(xte), torch.as_tensor(yte))
        res["cpu_seconds"]["train"] += _cpu() - c0
        for name, key in zip(ENERGY_SCHEMES, keys):
            w, act, over = spec[name]
            over = {**over, "qat_epochs": a.epochs, "seed": seed}
            c0 = _cpu()
            row, g, met = train_row(name, w, act, over, a, a.epochs, xte, yte,
                                    export_scheme_mlp,
                                    lambda cfg: train_scheme(fm, xtr, ytr, xte, yte, cfg))
            res["cpu_seconds"]["train"] += _cpu() - c0
            row["seed"] = seed
            if key in runs and runs[key]["accuracy"] != row["accuracy"]:
                print(f"note: {key} retrained to {row['accuracy']:.4f} "
                      f"(was {runs[key]['accuracy']:.4f})", flush=True)
            print(f"seed {seed} {name}: {row['accuracy']:.4f}, ~{row['est_ice40']['luts']} "
                  f"iCE40 LCs", flush=True)
            if want_energy:
                c0, t0 = _cpu(), time.perf_counter()
                try:
                    e = estimate_energy(g, ENERGY_BOARD, work / f"seed{seed}" / _dirname(name),
                                        inputs=golden.quantize_input(g, xte))
                    row["energy"] = {k: e[k] for k in (
                        "energy_nj_per_inference", "total_energy_nj_per_inference",
                        "dynamic_power_mw_board_clock", "static_power_mw",
                        "inferences_per_s_board_clock", "gate_level_mismatches", "breakdown",
                        "cells", "vectors")}
                    row["energy"]["cycles_per_inference"] = e["activity"]["cycles_per_inference"]
                    row["energy"]["folding"] = e["folding"]
                    row["energy"]["lut4"] = sum(v for k, v in e["cells"].items() if "LUT4" in k)
                except Exception as ex:   # recorded; the other schemes go on
                    row["energy"] = {"error": f"{type(ex).__name__}: {ex}"[:400]}
                row["energy"]["seconds_wall"] = round(time.perf_counter() - t0, 1)
                row["energy"]["seconds_cpu"] = round(_cpu() - c0, 1)
                res["cpu_seconds"]["energy"] += _cpu() - c0
                e = row["energy"]
                print(f"  energy: {e.get('energy_nj_per_inference', e.get('error'))} "
                      f"({e['seconds_cpu']} s CPU)", flush=True)
            runs[key] = row
            save()
    save()
    print((out / "quant_schemes_energy.md").read_text())
    return 0


def energy_summary(res):
    """Per scheme: accuracy mean ± std over the seeds, energy (mean ± std over the estimated
    seeds), estimated LCs and synthesized LUT4s."""
    out = []
    for name in res["settings"]["schemes"]:
        rows = [r for k, r in sorted(res["runs"].items()) if k.split("/", 1)[1] == name]
        if not rows:
            continue
        en = [r["energy"] for r in rows if "energy_nj_per_inference" in r.get("energy", {})]
        acc = _mean_std([r["accuracy"] for r in rows])
        e = _mean_std([x["energy_nj_per_inference"] for x in en])
        out.append({
            "scheme": name, "w_bits": rows[0]["w_bits"], "a_bits": rows[0]["a_bits"],
            "seeds": [r["seed"] for r in rows], "accuracy_mean": acc[0], "accuracy_std": acc[1],
            "accuracy_per_seed": [r["accuracy"] for r in rows],
            "est_ice40_luts_mean": _mean_std([r["est_ice40"]["luts"] for r in rows])[0],
            "energy_seeds": [r["seed"] for r in rows if r.get("energy", {}).get(
                "energy_nj_per_inference") is not None],
            "energy_nj_mean": e[0], "energy_nj_std": e[1],
            "lut4_mean": _mean_std([x["lut4"] for x in en])[0],
            "power_mw_mean": _mean_std([x["dynamic_power_mw_board_clock"] for x in en])[0],
            "cycles_per_inference": _mean_std([x["cycles_per_inference"] for x in en])[0],
            "folding": sorted({json.dumps(x["folding"]["mode"]) for x in en}),
            "gate_level_mismatches": sum(x["gate_level_mismatches"] for x in en),
            "energy_errors": [r["energy"]["error"] for r in rows if "error" in r.get("energy", {})],
        })
    return out


def _pm(m, sd, fmt="{:.2f}", scale=1.0):
    if m is None:
        return "—"
    return fmt.format(m * scale) + ("" if sd is None else " ± " + fmt.format(sd * scale))


def energy_markdown(res):
    st = res["settings"]
    fl = _mean_std(list(res["floats"].values()))
    n_e = min(st["energy_seeds"], st["seeds"])
    lines = [f"# Energy per inference across quantization schemes, digits MLP "
             f"{'-'.join(map(str, st['sizes']))}, iCE40UP5K ({res['date']})", "",
             f"Accuracy: golden model on each seed's 360-image test split, mean ± std (n - 1) "
             f"over seeds {', '.join(map(str, range(st['seeds'])))} (the seed sets the data "
             f"split and the training). Every scheme: {st['qat_epochs']} QAT epochs with "
             f"distillation {st['distill']} from that seed's float model "
             f"({st['float_epochs']} epochs; float accuracy {_pm(fl[0], fl[1], '{:.1f}', 100)} "
             f"%). Energy: ddnhw.energy, dynamic nJ per inference on the iCE40UP5K at 12 MHz "
             f"(the circuit `ddnhw build` makes for the board: unrolled when it fits, else "
             f"folded), gate-level netlist on the test split, of the models of "
             + ("seed 0 only" if n_e == 1 else f"seeds 0-{n_e - 1} (mean ± std)")
             + "; model band ±30 %. LUTs: the resource estimate of the unrolled core (iCE40 "
             "logic cells, mean over the seeds) and the SB_LUT4 cells yosys mapped for the "
             "energy run. Reproduce: `python bench/quant_schemes.py --energy-schemes "
             f"--seeds {st['seeds']} --energy-seeds {st['energy_seeds']} --epochs "
             f"{st['qat_epochs']} --float-epochs {st['float_epochs']}`.", "",
             "| scheme | w bits | a bits | accuracy (%) | UP5K nJ/inference | mW at 12 MHz "
             "(dynamic) | cycles/inference | circuit | est. LCs | SB_LUT4 | gate-level "
             "mismatches |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res.get("summary", []):
        lines.append(
            f"| {r['scheme']} | {r['w_bits']} | {r['a_bits']} | "
            f"{_pm(r['accuracy_mean'], r['accuracy_std'], '{:.1f}', 100)} | "
            f"{_pm(r['energy_nj_mean'], r['energy_nj_std'])} | "
            f"{_pm(r['power_mw_mean'], None)} | {_pm(r['cycles_per_inference'], None)} | "
            f"{', '.join(json.loads(f) for f in r['folding']) or '—'} | "
            f"{r['est_ice40_luts_mean']:.0f} | {_pm(r['lut4_mean'], None, '{:.0f}')} | "
            f"{r['gate_level_mismatches'] if r['energy_seeds'] else '—'} |"
            + ("" if not r["energy_errors"] else f" energy failed: {r['energy_errors'][0][:120]}"))
    cpu = res.get("cpu_seconds", {})
    lines += ["", f"CPU time: training {cpu.get('train', 0) / 60:.1f} min, energy estimates "
              f"{cpu.get('energy', 0) / 60:.1f} min (this process and its tools; machine "
              f"{res['machine']['cpus']} cores {res['machine']['processor']}, shared, load "
              f"average {res['machine']['load_average_start']:.1f} at the start). Per seed: "
              "`quant_schemes_energy.json` (runs)."]
    return "\n".join(lines) + "\n"


def _front(points):
    """Pareto front of ``(cost, accuracy)`` points (lower cost, higher accuracy)."""
    front, best = [], -np.inf
    for c, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((c, acc))
            best = acc
    return front


def plot_energy_schemes(res, path):
    """Two panels: accuracy (mean ± std) against UP5K energy per inference and against
    estimated LUTs, each with its Pareto front."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (the log axes' tick labels)
    rows = res.get("summary", [])
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), sharey=True)
    n_e = min(res["settings"]["energy_seeds"], res["settings"]["seeds"])
    panels = (("energy_nj_mean", "energy_nj_std",
               "dynamic energy per inference on the iCE40UP5K (nJ, gate-level; "
               + ("seed 0 model)" if n_e == 1 else f"mean of seeds 0-{n_e - 1})")),
              ("est_ice40_luts_mean", None, "iCE40 logic cells (resource estimate, unrolled)"))
    for ax, (col, sd, label) in zip(axes, panels):
        pts = [(r[col], 100 * r["accuracy_mean"], r) for r in rows if r.get(col) is not None]
        for x, y, r in pts:
            ax.errorbar(x, y, yerr=100 * (r["accuracy_std"] or 0),
                        xerr=(r[sd] or 0) if sd else None, fmt="o", color="tab:blue", capsize=3)
            ax.annotate(r["scheme"], (x, y), fontsize=8, xytext=(4, 4),
                        textcoords="offset points")
        if pts:
            f = _front([(x, y) for x, y, _ in pts])
            ax.step(*zip(*f), where="post", color="tab:red", lw=1, label="Pareto front")
            ax.plot(*zip(*f), "o", color="tab:red", ms=4)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel(f"test accuracy (%), mean ± std over {res['settings']['seeds']} seeds")
    fig.suptitle(f"digits MLP {'-'.join(map(str, res['settings']['sizes']))}: accuracy vs "
                 "energy per inference and vs LUTs, per quantization scheme")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
