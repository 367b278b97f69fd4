"""Benchmark: the digits CNN (conv 3x3 x8, maxpool 2, dense 10; 4-bit) and the 1-D signal CNN
(conv1d 5 x8 /2, conv1d 3 x8 /2, dense 3; 4-bit) on the iCE40UP5K and the ECP5-85F: accuracy,
resources, Fmax, latency, II, inferences/s; every built configuration is cosimulated in Verilator
bit-exact against the golden model (test split + random/extreme inputs, random
idle/backpressure).

    .venv/bin/python bench/cnn.py [--out bench/results] [--work /tmp/ddnhw-bench-cnn]
        [--models digits_cnn,signal_cnn1d] [--boards icebreaker,ulx3s-85f] [--no-cosim]
        [--force]

Writes ``<out>/cnn.json`` and ``<out>/cnn.md``; (model, board) rows already in ``cnn.json`` are
kept unless ``--force``.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ddnhw import examples, flow  # noqa: E402
from ddnhw.lower import build_network, generate  # noqa: E402
from bench.common import bench_dirs, bench_parser  # noqa: E402

# Every (model, board) row is folded automatically, as `ddnhw build --board` does
# (ddnhw.flow.choose_folding: fully unrolled when its estimate fits the board, else
# ddnhw.lower.fold.plan_folding over the dense and conv layers). The digits CNN was hand-folded
# on the UP5K before (conv0 (1, 1), linear3 (1, 1), no FIFOs: 4273 LCs, II 4608); the automatic
# plan is conv0 (1, 3), linear3 (1, 1) (II 1536). Foldings tried by hand that did not place:
# conv0 (1, 9) + linear3 (1, 2) (4802 LCs, 91 %) and conv0 (1, 9) + linear3 (1, 1) (4735, 89 %).
DESCRIPTION = {
    "digits_cnn": "digits CNN: conv 3x3 x8 (pad 1), maxpool 2, dense 10; 8x8 images, 64 beats",
    "signal_cnn1d": "1-D CNN: conv1d 5 x8 /2, conv1d 3 x8 /2, maxpool1d 2, dense 3; "
                    "32-sample signals, 32 beats (generated sine/square/sawtooth task)",
}

EXAMPLE = {"digits_cnn": "cnn", "signal_cnn1d": "cnn1d"}   # bench model: example


def load_model(name, work, epochs):
    """``(graph, metrics, test inputs)`` of a bench model, trained once and cached in work."""
    model, metrics_path = work / f"{name}.npz", work / f"{name}.json"
    if model.exists() and metrics_path.exists():
        graph, metrics = flow.load_model(model), json.loads(metrics_path.read_text())
    else:
        metrics = examples.train_model(EXAMPLE[name], model, settings=dict(bits=4, epochs=epochs))
        graph = flow.load_model(model)
        metrics_path.write_text(json.dumps(metrics))
    x, _ = examples.test_inputs(EXAMPLE[name], graph)
    return graph, metrics, x


def measured_latency(graph, options, x):
    """Cycles from an image's last input beat to its output beat, one image alone at full rate
    (Amaranth simulator); the manifest's ``latency_cycles`` is the sum of the blocks' (first
    beat in to first beat out) and understates a folded convolution."""
    from ddnhw.hw.sim import run_beats
    net = build_network(graph, **options)
    _, log = run_beats(net, x[:1].reshape(-1, x.shape[-1]), 1, max_cycles=200_000)
    return int(log["out"][-1] - log["in"][-1])


def run_config(graph, board, work, cosim=True, images=None, log=print):
    from ddnhw.board import build as board_build
    from ddnhw.board import get_board
    from ddnhw.flow import choose_folding

    profile = get_board(board)
    plan = choose_folding(graph, profile)
    options = {} if plan["folding"] is None else {"folding": plan["folding"]}
    opts = {"family": profile.family, **options}
    d = Path(work) / board
    row = {"board": board, "device": profile.device, "options": json.loads(json.dumps(options)),
           "folding_mode": plan["mode"], "margin": plan["margin"]}
    if cosim:
        man = generate(graph, d / "rtl", **{k: v for k, v in opts.items() if k != "family"})
        t = time.perf_counter()
        r = flow.cosim_check(graph, images, d / "rtl", seed=1, idle=0.3, stall=0.3,
                                 build_dir=Path(work) / "sim_build")
        row.update(cosim_images=len(images), cosim_mismatches=r["mismatches"],
                   cosim_seconds=round(time.perf_counter() - t, 1))
        log(f"{board}: Verilator cosim {len(images)} images, {r['mismatches']} mismatches")
        full = flow.cosim_check(graph, images[:50], d / "rtl", idle=0.0, stall=0.0,
                                    build_dir=Path(work) / "sim_build")
        row["cycles_50_full_rate"] = full["cycles"]
    net = build_network(graph, **opts)
    if cosim:
        assert man["ii_cycles"] == net.ii
    t = time.perf_counter()
    rep = board_build(net, board, d / "build")
    row.update({k: rep.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz", "clock_mhz",
                                       "timing_met")})
    row["build_seconds"] = round(time.perf_counter() - t, 1)
    row["latency_cycles"] = int(net.latency)     # first input beat to output (the manifest's)
    row["latency_last_beat_cycles"] = measured_latency(graph, opts, images)
    row["ii_cycles"] = int(net.ii)
    row["estimate"] = {k: sum(layer["estimate"].get(k, 0) for layer in net.layers)
                       for k in ("luts", "ffs", "dsps", "brams")}
    if rep.get("fmax_mhz"):
        row["inferences_per_s"] = round(rep["fmax_mhz"] * 1e6 / net.ii)
        row["inferences_per_s_at_clock"] = round(rep["clock_mhz"] * 1e6 / net.ii)
        row["latency_us_at_fmax"] = round(row["latency_cycles"] / rep["fmax_mhz"], 2)
    log(f"{board}: {row}")
    return row


def write_md(res, path):
    lines = ["# CNN benchmark (4-bit, one input pixel/sample per beat)", ""]
    for name, m in res["models"].items():
        lines.append(f"- **{name}** ({DESCRIPTION.get(name, '')}): float accuracy "
                     f"{m['float_accuracy']:.4f}, 4-bit quantized (golden) "
                     f"{m['golden_accuracy']:.4f} on the test split (360).")
    lines += ["- for comparison, the digits MLP 64-16-10 demo at 4 bits: 0.961.", "",
              "Every configuration below was cosimulated in Verilator bit-exact against the "
              "golden model (test split + random inputs incl. all-min/all-max/checkerboards, "
              "idle 0.3, backpressure 0.3) before it was built. Folding: chosen automatically "
              "for the board (`ddnhw build --board`: unrolled when the estimate fits, else "
              "`plan_folding` over the dense and conv layers; the estimate margin it used). "
              "Latency: cycles from an input's first beat (pixel/sample) to its output at full "
              "rate (the manifest's, equal to the simulated), and from its last beat "
              "(measured); II: cycles per input (image or signal) at full rate; throughput at "
              "the achieved Fmax.", "",
              "| model | board | folding | LUTs | FFs | DSPs | BRAMs | Fmax MHz | clock | timing | "
              "latency (first / last beat) | II | inferences/s | cosim mismatches |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        fold = r["options"].get("folding") or "unrolled"
        if isinstance(fold, dict):
            fold = ", ".join(f"{k} {tuple(v)}" for k, v in fold.items())
        if r["options"].get("fifos") == "none":
            fold += "; no FIFOs"
        if r.get("folding_mode") == "auto":
            fold += f" (auto, margin {r['margin']:.0%})"
        lines.append(f"| {r.get('model', 'digits_cnn')} | {r['board']} | {fold} | {r['luts']} | "
                     f"{r['ffs']} | {r['dsps']} | {r['brams']} | {r['fmax_mhz']} | "
                     f"{r['clock_mhz']} | {'met' if r['timing_met'] else 'MISSED'} | "
                     f"{r['latency_cycles']} / {r.get('latency_last_beat_cycles', '?')} | "
                     f"{r['ii_cycles']} | "
                     f"{r.get('inferences_per_s', 0):,} | "
                     f"{r.get('cosim_mismatches', 'n/a')} of {r.get('cosim_images', 0)} |")
    for r in res["rows"]:
        if r.get("note"):
            lines += ["", f"Note ({r['model']}, {r['board']}, {r['options'].get('folding')}): "
                      f"{r['note']}."]
    lines += ["", "Before conv layers were folded automatically, the digits CNN on the UP5K was "
              "hand-folded conv0 (1, 1), linear3 (1, 1), no FIFOs: 4273 LCs, 31.19 MHz, II 4608, "
              "6,769 images/s; the 1-D CNN without its max pool: 4-bit accuracy 0.9833, UP5K "
              "4497 LCs 43.3 MHz, ECP5 4747 LUTs 80.97 MHz, II 47."]
    lines += ["", "Reproduce: `.venv/bin/python bench/cnn.py` (yowasp toolchain; trained models "
              "cached in `--work`).", ""]
    Path(path).write_text("\n".join(lines))


def main(argv=None):
    p = bench_parser(__doc__, "/tmp/ddnhw-bench-cnn")
    p.add_argument("--models", default="digits_cnn,signal_cnn1d")
    p.add_argument("--boards", default="icebreaker,ulx3s-85f")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--no-cosim", action="store_true")
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    work, out = bench_dirs(a)
    res = {"models": {}, "rows": []}
    if (out / "cnn.json").exists() and not a.force:
        res = json.loads((out / "cnn.json").read_text())
        if "model" in res:   # first format: digits CNN only
            res = {"models": {"digits_cnn": res["model"]},
                   "rows": [dict(r, model="digits_cnn") for r in res["rows"]]}
    for name in [m for m in a.models.split(",") if m]:
        graph, metrics, x = load_model(name, work, a.epochs)
        res["models"][name] = metrics
        print(name, metrics)
        images = np.concatenate([x, flow.random_images(graph, 40, seed=2)])
        for board in [b for b in a.boards.split(",") if b]:
            if any(r.get("model") == name and r["board"] == board for r in res["rows"]):
                continue
            row = run_config(graph, board, work / name, cosim=not a.no_cosim, images=images)
            res["rows"].append({"model": name, **row})
            flow.write_json_atomic(out / "cnn.json", res)
            write_md(res, out / "cnn.md")
    flow.write_json_atomic(out / "cnn.json", res)
    write_md(res, out / "cnn.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
