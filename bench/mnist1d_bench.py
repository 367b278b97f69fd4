"""MNIST-1D against its paper's table: per model family, the paper's float test accuracy, ours
(float and 4-bit, mean ± std over seeds) and the hardware of seed 0 (not in CI).

MNIST-1D (Greydanus & Kobak, "Scaling Down Deep Learning with MNIST-1D", ICML 2024,
arXiv:2011.14439; table in https://github.com/greydanus/mnist1d): the package's data set
(``mnist1d.data.make_dataset``, seed 42, generated locally), 4,000 train / 1,000 test
sequences of 40 samples. The families are the examples ``mnist1d-mlp``, ``mnist1d-cnn`` and
``mnist1d-gru``, and ``mnist1d-cnn-up5k`` (a CNN sized for the iCE40UP5K) (``ddnhw/examples/records.py``).

For each family: seed 0 runs the whole pipeline (``ddnhw demo --model mnist1d-FAMILY --boards
icebreaker,ulx3s-85f``: train, golden == integer-mode PyTorch, Verilator cosimulation of the
whole test split plus random inputs under 30 % idle / 30 % backpressure, then Yosys + nextpnr
for each board with the cosimulated circuit); seeds 1.. only train and score the exported
integer model with the golden model.

    python bench/mnist1d_bench.py [--families mlp,cnn,cnn-up5k,gru] [--seeds 0,1,2,3,4] [--boards icebreaker,ulx3s-85f]
        [--work /tmp/bench-mnist1d] [--out bench/results]

Each family's result is kept in ``<work>/<family>.json``, so families can run in separate
processes; every run rewrites ``<out>/mnist1d.json`` and ``<out>/mnist1d.md`` from all the
families in ``<work>``.
"""
from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.accuracy import fmt, machine, run_one, summary  # noqa: E402
from bench.common import bench_dirs, bench_parser  # noqa: E402

# test accuracy of the float models in the paper's table (the package's README)
PAPER = {"logistic regression": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91, "human": 0.96}
FAMILIES = ("mlp", "cnn", "cnn-up5k", "gru")


def paper_figure(family):
    """The paper's float figure for ``family`` (``cnn-up5k``: the CNN's)."""
    return PAPER[family.split("-")[0]]


def run_pipeline(family, boards, work, log=print):
    """Seed 0 through the whole pipeline (``ddnhw demo``'s steps: train, golden and integer-mode
    checks, RTL, Verilator cosimulation), then per board: the folding the example's policy
    picks, that circuit generated and cosimulated (when it is not the one already checked) and
    built. A board the model does not fit gets the planner's message instead of a build."""
    from ddnhw import DdnhwError, examples, flow
    from ddnhw.flow import pipeline
    import torch
    torch.set_num_threads(1)
    name = f"mnist1d-{family}"
    t0 = time.perf_counter()
    out = work / name
    s = examples.run(name, out, boards=(), simulator="verilator", random=200)
    log(f"{name} seed 0: float {s['float_accuracy']:.4f} quant {s['quant_accuracy']:.4f}, "
        f"{s['mismatches']} mismatches")
    ex = examples.get(name)
    graph = flow.load_model(out / "model.npz")
    vec = pipeline.vectors(ex, graph, seed=0, random=200)
    designs = {"rtl": {"folding": pipeline._folding_json(s["folding"]),
                       "latency_cycles": s["latency_cycles"], "ii_cycles": s["ii_cycles"],
                       "cosim": {"vectors": s["vectors_checked"],
                                 "mismatches": s["cosim_mismatches"]}, "boards": []}}
    reports, no_fit = {}, {}
    for b in boards:
        try:
            if b not in ex.boards:   # not a board of the example: does anything fit it?
                flow.choose_folding(graph, b)
            pl = pipeline.plan(ex, graph, pipeline.resolve_settings(ex), (b,))
        except DdnhwError as e:
            no_fit[b] = str(e)
            log(f"{name}: {b}: {e}")
            continue
        fold = pl["boards"][b]
        key = next((k for k, d in designs.items()
                    if d["folding"] == pipeline._folding_json(fold)), None)
        if key is None:
            key = f"rtl-{b}"
            man = pipeline.generate(graph, out / key, fold, pl["family"])
            c = pipeline.cosimulate(graph, out / key, vec, simulator="verilator",
                                    build_dir=out / "sim" / key)
            designs[key] = {"folding": pipeline._folding_json(fold),
                            "latency_cycles": man["latency_cycles"],
                            "ii_cycles": man["ii_cycles"], "boards": [],
                            "cosim": {"vectors": c["vectors"], "mismatches": c["mismatches"]}}
            log(f"{name}: {key}: {c['mismatches']} mismatches of {c['vectors']}")
            if c["mismatches"]:
                raise SystemExit(f"{name}: {key} differs from golden: {c['message']}")
        designs[key]["boards"].append(b)
        try:
            reports[b] = pipeline.build(graph, b, out / "build" / b, fold)
        except DdnhwError as e:     # e.g. nextpnr finds no legal placement: a measured no
            no_fit[b] = f"the build failed: {str(e).splitlines()[0]}"
            log(f"{name}: {b}: {no_fit[b]}")
            continue
        r = reports[b]
        log(f"{name}: {b}: {r.get('luts')} LUTs, {r.get('dsps')} DSPs, {r.get('brams')} BRAMs, "
            f"Fmax {r.get('fmax_mhz')} MHz")
    return {"seed": 0, "seconds": round(s["train_seconds"], 1),
            "float_accuracy": s["float_accuracy"], "qat_accuracy": s["qat_accuracy"],
            "quant_accuracy": s["quant_accuracy"],
            "pipeline": {**{k: s[k] for k in ("float_accuracy", "quant_accuracy", "rtl_accuracy",
                                               "vectors_checked", "cosim_mismatches",
                                               "int_mode_vectors", "int_mode_mismatches",
                                               "folding", "latency_cycles", "ii_cycles")},
                         "designs": designs, "boards": reports, "no_fit": no_fit,
                         "seconds": round(time.perf_counter() - t0, 1)}}


def seed0_from_model(name, path):
    """Seed 0's scores from the model file the pipeline wrote after training (before its
    cosimulation and builds ended): float accuracy from its meta, golden on the test split."""
    from ddnhw import examples, flow, golden
    from ddnhw.flow import pipeline
    g = flow.load_model(path)
    x, y = pipeline.test_inputs(examples.get(name), g, 0)
    return {"seed": 0, "float_accuracy": g.meta["float_accuracy"],
            "quant_accuracy": float((golden.classify(g, x) == y).mean()),
            "from_model_file": True}


def family_result(family, work):
    """The family's rows from ``<work>/<family>/seed*.json``."""
    from ddnhw import examples
    name = f"mnist1d-{family}"
    runs = [json.loads(f.read_text()) for f in sorted((work / family).glob("seed*.json"),
                                                       key=lambda f: int(f.stem[4:]))]
    model = work / name / "model.npz"
    if model.is_file() and not any(r["seed"] == 0 for r in runs):
        runs.insert(0, seed0_from_model(name, model))   # the pipeline is still at work
    if not runs:
        return None
    ex = examples.get(name)
    seed0 = next((r["pipeline"] for r in runs if "pipeline" in r), None)
    return {"family": family, "example": name, "title": ex.title,
            "settings": {k: v for k, v in ex.settings.items() if k != "layers"},
            "paper_float_accuracy": paper_figure(family),
            "runs": [{k: v for k, v in r.items() if k != "pipeline"} for r in runs],
            "summary": summary(runs), "seed0": seed0}


def markdown(res):
    m = res["machine"]
    lines = ["# MNIST-1D: the paper's table, our float and 4-bit models, and their hardware", "",
             f"- date: {res['date']}; machine: {m['cpu_model']} ({m['cpus']} CPUs, shared with "
             f"other jobs), torch {m['torch']} (one thread)",
             "- paper: Greydanus & Kobak, *Scaling Down Deep Learning with MNIST-1D* (ICML "
             "2024, arXiv:2011.14439), float test accuracy from the table of "
             "https://github.com/greydanus/mnist1d (logistic regression 32 %, MLP 68 %, CNN "
             "94 %, GRU 91 %, human 96 %)",
             "- data: the mnist1d package's data set (make_dataset, seed 42), generated "
             "locally; 4,000 train / 1,000 test; samples mapped from [-4, 4] to [0, 1]",
             f"- ours: mean ± std (n - 1) over seeds {res['seeds']}; quantized = the exported "
             "integer model (golden) on the 1,000 test sequences; seed 0 went through the whole "
             "pipeline (Verilator cosimulation of the test split + random inputs under 30 % "
             "idle / 30 % backpressure, then the builds)", "",
             "| family | model | paper (float) | ours float | ours 4-bit | 4-bit − paper | "
             "RTL vs golden (seed 0) |", "|---|---|---|---|---|---|---|"]
    for f in res["families"]:
        s, s0 = f["summary"], f["seed0"] or {}
        d = 100 * (s["quant_accuracy"]["mean"] - f["paper_float_accuracy"])
        lines.append(f"| {f['family'].upper()} | {f['title']} | "
                     f"{100 * f['paper_float_accuracy']:.0f} % | {fmt(s['float_accuracy'])} | "
                     f"{fmt(s['quant_accuracy'])} (seeds {', '.join(str(r['seed']) for r in f['runs'])})"
                     f" | {d:+.2f} points | "
                     + (f"{s0['cosim_mismatches']} of {s0['vectors_checked']} vectors |"
                        if s0.get("vectors_checked") else "not finished in this run |"))
    lines += ["", "Hardware (seed 0; every built circuit was cosimulated with 0 mismatches "
                  "first):", "",
              "| family | board | folding (PE, SIMD) | LUTs | FFs | DSPs | BRAMs | Fmax / clock "
              "| latency / II (cycles) | inferences/s at Fmax |", "|---|---|---|---|---|---|---|"
              "---|---|---|"]
    for f in res["families"]:
        s0 = f["seed0"] or {}
        for b, r in s0.get("boards", {}).items():
            d = next((v for v in s0["designs"].values() if b in v["boards"]), {})
            fold = d.get("folding") or "unrolled"
            if isinstance(fold, dict):
                fold = ", ".join(f"{k} ({v[0]},{v[1]})" if v else f"{k} unrolled"
                                 for k, v in fold.items())
            ips = r.get("inferences_per_s")
            lines.append(f"| {f['family'].upper()} | {b} | {fold} | {r.get('luts')} | "
                         f"{r.get('ffs')} | {r.get('dsps')} | {r.get('brams')} | "
                         f"{r.get('fmax_mhz') or 0:.1f} / {r.get('clock_mhz')} MHz"
                         f"{'' if r.get('timing_met') else ' (missed)'} | "
                         f"{d.get('latency_cycles')} / {d.get('ii_cycles')} | "
                         f"{f'{ips:,.0f}' if ips else 'n/a'} |")
        for b, msg in s0.get("no_fit", {}).items():
            what = msg if msg.startswith(("the build failed", "not built")) else \
                f"does not fit: {msg}"
            lines.append(f"| {f['family'].upper()} | {b} | {what} | | | | | | | |")
    lines += ["", f"Reproduce: `{res['command']}`", ""]
    return "\n".join(lines)


def main(argv=None):
    p = bench_parser(__doc__, "/tmp/bench-mnist1d")
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--seeds", default="0,1,2,3,4",
                   help="seeds to run (0: the whole pipeline with the builds)")
    p.add_argument("--boards", default="icebreaker,ulx3s-85f")
    p.add_argument("--report-only", action="store_true",
                   help="only merge the families' results in --work into --out")
    a = p.parse_args(argv)
    work, out = bench_dirs(a)
    boards = tuple(b for b in a.boards.split(",") if b)
    seeds = [int(v) for v in a.seeds.split(",") if v]
    for fam in filter(None, a.families.split(",")):
        if fam not in FAMILIES:
            raise SystemExit(f"--families: unknown family {fam!r} ({', '.join(FAMILIES)})")
        if a.report_only:
            continue
        (work / fam).mkdir(exist_ok=True)
        for seed in seeds:
            r = (run_pipeline(fam, boards, work) if seed == 0 else
                 run_one(f"mnist1d-{fam}", {}, seed)[0])
            (work / fam / f"seed{seed}.json").write_text(json.dumps(r, indent=1, default=str))
    fams = [r for r in (family_result(f, work) for f in FAMILIES) if r is not None]
    all_seeds = sorted({r["seed"] for f in fams for r in f["runs"]})
    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "machine": machine(), "seeds": all_seeds,
           "command": f"python bench/mnist1d_bench.py --seeds {','.join(map(str, all_seeds))} "
                      f"--boards {a.boards}",
           "paper": PAPER, "families": fams}
    (out / "mnist1d.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    (out / "mnist1d.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
