"""Logic-domain (lookup-table neuron) networks: accuracy over seeds, cosimulated builds, and
accuracy against LUTs next to every other scheme ddnhw has.

Per example (``lut``: digits, ``lut-signal``: the generated signals, ``lut-jets``: the
jet-tagging-sized topology on synthetic data): the test accuracy of ``--seeds`` seeds (the
trained network's bits are its inference: training, integer-mode PyTorch and golden agree,
checked per seed), then seed 0 through the one example pipeline (golden, Amaranth simulation,
Verilator cosimulation under idle/backpressure, Yosys + nextpnr for each board). The digits MLP
and CNN rows beside them come from the results of ``bench/run.py`` and ``bench/cnn.py``; the
plot adds every scheme of ``bench/quant_schemes.py``. Energy per inference is added when
``ddnhw.energy`` exists (it is another issue's package).

Writes ``lut.json``, ``lut.md`` and ``lut.png`` to ``--out`` (default bench/results).
"""
from __future__ import annotations

import importlib.util
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bench_dirs, bench_parser  # noqa: E402

BOARDS = {"lut": ("icebreaker", "ulx3s-85f"), "lut-signal": ("icebreaker", "ulx3s-85f"),
          "lut-jets": ("ulx3s-85f",)}


def seed_accuracies(name, seeds, log, settings=None):
    from ddnhw import examples, golden
    accs = []
    for s in range(seeds):
        t = examples.train(name, seed=s, **(settings or {}))
        x, y = examples.test_inputs(name, t.graph, seed=s)
        acc = float(np.mean(golden.classify(t.graph, x) == y))
        same = bool(np.array_equal(t.int_forward(x), golden.run(t.graph, x)))
        if not same or abs(acc - t.float_accuracy) > 1e-12:
            raise SystemExit(f"{name} seed {s}: integer mode or training accuracy differs from "
                             f"golden")
        accs.append(acc)
        log(f"{name} seed {s}: {acc:.4f} ({t.seconds:.0f} s)")
    return accs


def energy_rows(graph, boards, work):
    if importlib.util.find_spec("ddnhw.energy") is None:
        return None
    from ddnhw.energy import estimate_energy
    return {b: estimate_energy(graph, b, work / f"energy_{b}") for b in boards}


def build_example(name, work, random, log, settings=None, boards=None, label=None,
                  reuse=False):
    """Seed 0 through the example pipeline into ``work/label``; with ``reuse``, the summary a
    finished earlier run of it left there (``summary.json``)."""
    from ddnhw import examples
    from ddnhw.ir import load_graph
    out = work / (label or name)
    boards = boards or BOARDS[name]
    if reuse and (out / "summary.json").exists():
        s = json.loads((out / "summary.json").read_text())
        log(f"{name}: reusing {out / 'summary.json'}")
    else:
        s = examples.run(name, out, settings=settings, seed=0, boards=boards,
                         simulator="verilator", random=random, sim_vectors=20)
    rows = {}
    for b, r in (s["boards"] or {}).items():
        rows[b] = {k: r.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz",
                                          "clock_mhz", "timing_met", "inferences_per_s")}
    model = next(out.glob("*.npz"), None)
    energy = energy_rows(load_graph(model), boards, work) if model else None
    log(f"{name}: {json.dumps(rows)}")
    return {"quant_accuracy": s["quant_accuracy"], "rtl_accuracy": s["rtl_accuracy"],
            "int_mode_mismatches": s["int_mode_mismatches"],
            "vectors_checked": s["vectors_checked"], "cosim_mismatches": s["cosim_mismatches"],
            "latency_cycles": s["latency_cycles"], "ii_cycles": s["ii_cycles"],
            "estimate": s["estimate"], "boards": rows, "energy": energy,
            "model": s["model"]}


def others(results):
    """The digits MLP and CNN rows (bench/run.py, bench/cnn.py) and the scheme rows
    (bench/quant_schemes.py) from their results files."""
    rows = []
    bench = json.loads((results / "bench.json").read_text())
    for b, r in bench["boards"].items():
        rows.append({"model": "MLP 64-16-10 4-bit (demo model)", "data": "digits", "board": b,
                     "accuracy": bench["quant_accuracy"], "luts": r["luts"], "ffs": r["ffs"],
                     "fmax_mhz": r["fmax_mhz"], "ii": r["ii_cycles"],
                     "latency": r["latency_cycles"], "source": "bench/results/bench.json"})
    cnn = json.loads((results / "cnn.json").read_text())
    names = {"digits_cnn": ("CNN conv3x3x8-pool-dense 4-bit", "digits"),
             "signal_cnn1d": ("1-D CNN 4-bit", "signals")}
    for r in cnn["rows"]:
        title, data = names[r["model"]]
        rows.append({"model": title, "data": data, "board": r["board"],
                     "accuracy": cnn["models"][r["model"]]["golden_accuracy"],
                     "luts": r["luts"], "ffs": r["ffs"], "fmax_mhz": r["fmax_mhz"],
                     "ii": r["ii_cycles"], "latency": r["latency_cycles"],
                     "source": "bench/results/cnn.json"})
    schemes = json.loads((results / "quant_schemes.json").read_text())["rows"]
    return rows, schemes


def plot(path, lut, other_rows, schemes):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.2))
    est = [(r["est_ice40"]["luts"], r["accuracy"], r["name"]) for r in schemes
           if "est_ice40" in r]
    ax.scatter([e[0] for e in est], [100 * e[1] for e in est], marker="x", color="0.55",
               label="quantization schemes, unrolled (estimate, bench/quant_schemes)")
    built = [(r["build"]["icebreaker"]["luts"], r["accuracy"], r["name"]) for r in schemes
             if isinstance(r.get("build"), dict) and isinstance(r["build"].get("icebreaker"),
                                                                dict)
             and r["build"]["icebreaker"].get("luts")]
    ax.scatter([b[0] for b in built], [100 * b[1] for b in built], marker="s",
               facecolors="none", edgecolors="tab:blue",
               label="quantization schemes, UP5K builds (folded to fit)")
    dig = [r for r in other_rows if r["data"] == "digits" and r["board"] == "icebreaker"]
    ax.scatter([r["luts"] for r in dig], [100 * r["accuracy"] for r in dig], marker="D",
               color="tab:green", label="MLP (unrolled) and CNN (folded): UP5K builds")
    for r in dig:
        ax.annotate(r["model"].split(" ")[0], (r["luts"], 100 * r["accuracy"]),
                    textcoords="offset points", xytext=(5, -10), fontsize=8)
    first = True
    for name, res in lut.items():
        if res.get("example", name) != "lut" or \
                "icebreaker" not in (res.get("build") or {}).get("boards", {}):
            continue
        luts = res["build"]["boards"]["icebreaker"]["luts"]
        ax.errorbar([luts], [100 * res["mean"]], yerr=[100 * res["std"]], fmt="o",
                    color="tab:red", capsize=4,
                    label=f"LUT networks (unrolled, II 1): UP5K builds, mean ± std of "
                          f"{len(res['accuracies'])} seeds" if first else None)
        ax.annotate(f"{res['layers'][0][0]}x{res['layers'][0][1]}-input",
                    (luts, 100 * res["mean"]), textcoords="offset points", xytext=(6, 4),
                    fontsize=8, color="tab:red")
        first = False
    ax.axvline(1500, color="tab:red", ls=":", lw=1, label="issue 15 goal: 1,500 LCs")
    ax.set_xscale("log")
    ax.set_xlim(1200, None)
    ax.set_xlabel("iCE40 logic cells (UP5K has 5,280)")
    ax.set_ylabel("digits test accuracy (%)")
    ax.set_title("Digits: accuracy against logic, every scheme of ddnhw")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    lo = min([100 * e[1] for e in est if e[1] > 0.8] + [90])
    ax.set_ylim(lo - 1, 100)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(res, other_rows, meta):
    L = [f"# Logic-domain (lookup-table) networks ({meta['date']})", "",
         f"Machine: {meta['machine']}. Reproduce: `{meta['command']}`.", "",
         "Training: DWN-style (thermometer encoder, table neurons with extended finite-"
         "difference gradients, popcount per class; `ddnhw/quant/lut.py`). Accuracy on the "
         "test split; the trained network's bits are its inference (training, integer-mode "
         "PyTorch and golden agree exactly, checked per seed). Every built design was "
         "cosimulated in Verilator bit-exact (test split + random/extreme inputs, 30 % idle / "
         "30 % backpressure) first.", "",
         "| example | topology | accuracy, seed 0 | mean ± std (seeds) | board | LUTs / FFs | "
         "Fmax / clock (MHz) | latency / II | inferences/s at Fmax | cosim mismatches |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        b = r.get("build")
        top = f"levels {r['levels']}, layers {r['layers']}"
        acc = f"{100 * r['accuracies'][0]:.2f} %"
        ms = f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f} % ({len(r['accuracies'])})"
        if not b:
            L.append(f"| {name} | {top} | {acc} | {ms} | (not built) | | | | | |")
            continue
        for board, h in b["boards"].items():
            L.append(f"| {name} | {top} | {acc} | {ms} | {board} | {h['luts']:,} / "
                     f"{h['ffs']:,} | {h['fmax_mhz']} / {h['clock_mhz']} | "
                     f"{b['latency_cycles']} / {b['ii_cycles']} | "
                     f"{h['inferences_per_s']:,.0f} | {b['cosim_mismatches']} of "
                     f"{b['vectors_checked']} |")
    L += ["", "## Beside the multiply-accumulate networks (same data, earlier builds)", "",
          "| model | data | board | accuracy | LUTs / FFs | Fmax (MHz) | latency / II | source |",
          "|---|---|---|---|---|---|---|---|"]
    for r in other_rows:
        L.append(f"| {r['model']} | {r['data']} | {r['board']} | {100 * r['accuracy']:.2f} % | "
                 f"{r['luts']:,} / {r['ffs']:,} | {r['fmax_mhz']} | {r['latency']} / {r['ii']} "
                 f"| {r['source']} |")
    energy = [(n, r["build"]["energy"]) for n, r in res.items()
              if r.get("build") and r["build"].get("energy")]
    L += ["", "## Energy per inference", ""]
    if energy:
        for n, e in energy:
            L.append(f"- {n}: `{json.dumps(e, default=str)}`")
    else:
        L.append("Not measured: `ddnhw.energy` is not in this tree.")
    L += ["", "![accuracy against LUTs](lut.png)", ""]
    return "\n".join(L)


def main():
    p = bench_parser(__doc__, "work/lut")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--examples", default="lut,lut-signal,lut-jets")
    p.add_argument("--no-build", action="store_true", help="accuracy only")
    p.add_argument("--random", type=int, default=1000, help="random vectors cosimulated")
    p.add_argument("--reuse", action="store_true", help="reuse the summary.json of a finished "
                   "earlier build in --work")
    p.add_argument("--stem", default=None, help="output file stem (default lut, or "
                   "lut_variants with --variants)")
    p.add_argument("--variants", default="", help="digits variants of the lut example, built "
                   "for the UP5K only: 'LABEL=JSON settings;...' (written to lut_variants.*)")
    a = p.parse_args()
    work, out = bench_dirs(a)
    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    from ddnhw import examples
    res = {}
    if a.variants:
        for item in a.variants.split(";"):
            label, js = item.split("=", 1)
            settings = json.loads(js)
            if "layers" in settings:
                settings["layers"] = tuple(tuple(x) for x in settings["layers"])
            ex = examples.get("lut")
            accs = seed_accuracies("lut", a.seeds, log, settings)
            res[label] = {"example": "lut", "title": ex.title, "dataset": ex.dataset,
                          "settings": json.loads(js),
                          "layers": [list(x) for x in settings.get("layers",
                                                                   ex.settings["layers"])],
                          "levels": settings.get("levels", ex.settings["levels"]),
                          "accuracies": accs, "mean": float(np.mean(accs)),
                          "std": float(np.std(accs))}
            if not a.no_build:
                res[label]["build"] = build_example("lut", work, a.random, log, settings,
                                                    ("icebreaker",), label)
        stem = a.stem or "lut_variants"
    else:
        stem = a.stem or "lut"
    for name in (a.examples.split(",") if not a.variants else []):
        ex = examples.get(name)
        accs = seed_accuracies(name, a.seeds, log)
        res[name] = {"title": ex.title, "dataset": ex.dataset,
                     "layers": [list(x) for x in ex.settings["layers"]],
                     "levels": ex.settings["levels"], "accuracies": accs,
                     "mean": float(np.mean(accs)), "std": float(np.std(accs))}
        if not a.no_build:
            res[name]["build"] = build_example(name, work, a.random, log, reuse=a.reuse)
    other_rows, schemes = others(Path(__file__).resolve().parent / "results")
    meta = {"date": date.today().isoformat(),
            "machine": f"{platform.processor() or platform.machine()}, "
                       f"Python {platform.python_version()}",
            "command": "python bench/lut.py " + " ".join(sys.argv[1:]),
            "seconds": round(time.perf_counter() - t0, 1)}
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": res,
                                                 "others": other_rows}, indent=1, default=str))
    (out / f"{stem}.md").write_text(markdown(res, other_rows, meta))
    # the plot: every LUT result written so far (lut*.json)
    every = {}
    for f in sorted(out.glob("lut*.json")):
        every.update(json.loads(f.read_text())["results"])
    plot(out / "lut.png", every, other_rows, schemes)
    log(f"wrote {out / (stem + '.md')}")


if __name__ == "__main__":
    main()
