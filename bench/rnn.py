"""Benchmark: a GRU sequence classifier (8 steps x 8 inputs, hidden 16, 4-bit weights, 8-bit
state, dense to 10 logits) on the iCE40UP5K and the ECP5-85F: resources, Fmax, latency, II,
sequences/s. The graph is a seeded random one (``random_recurrent_classifier`` of
:mod:`ddnhw.ir.testing`: hardware cost does not depend on training); every built
configuration is first cosimulated in Verilator bit-exact against the golden model (random
sequences incl. all-min/all-max, idle 0.3, backpressure 0.3).

    .venv/bin/python bench/rnn.py [--out bench/results] [--work /work/scratch/bench-rnn]
        [--configs up5k_folded,ecp5_parallel,...] [--no-cosim] [--force]

Writes ``<out>/rnn.json`` and ``<out>/rnn.md``; rows already in ``rnn.json`` are kept unless
``--force``.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ddnhw import flow, golden  # noqa: E402
from ddnhw.ir.testing import random_recurrent_classifier  # noqa: E402
from ddnhw.lower import build_network, generate  # noqa: E402
from bench.common import bench_dirs, bench_parser  # noqa: E402

MODEL = dict(op="gru", steps=8, n_in=8, hidden=16, in_bits=8, in_signed=True, w_bits=4,
             state_bits=8, lut_bits=8, gate_frac=7, n_out=10, a_bits=8)
DESCRIPTION = ("GRU classifier: x (8 steps x 8 signed 8-bit inputs) -> GRU hidden 16 (4-bit "
               "weights, 8-bit state, 256-entry sigmoid/tanh tables, gate_frac 7) -> dense 10 "
               "-> requant to 8-bit logits; output h_T only")
# name: (board, options)
CONFIGS = {
    # the UP5K: MAC engine 2 x 4 MACs, one hidden unit per cycle in the gates, the classifier
    # one MAC (its requantizer fused)
    "up5k_folded": ("icebreaker", {"folding": {"gru": (2, 4), "classifier": (1, 1)},
                                   "gate_lanes": {"gru": 1}, "fifos": "none"}),
    # the ECP5-85F: everything unrolled (constant-weight adder trees, 16 gate lanes)
    "ecp5_parallel": ("ulx3s-85f", {}),
    # the ECP5-85F with the UP5K's folding, for comparison
    "ecp5_folded": ("ulx3s-85f", {"folding": {"gru": (2, 4), "classifier": (1, 1)},
                                  "gate_lanes": {"gru": 1}, "fifos": "none"}),
}


def model(seed=0):
    return random_recurrent_classifier(seed, **MODEL)


def sequences(graph, n, seed):
    t = graph.input.dtype
    x = np.random.default_rng(seed).integers(t.min, t.max + 1, size=(n,) + graph.input.shape)
    x[0], x[1] = t.min, t.max
    return x


def measured_timing(graph, options):
    """Cycles from a sequence's first and last input beats to its output, one sequence alone,
    and between outputs of back-to-back sequences (Amaranth simulator, full rate)."""
    from ddnhw.hw.sim import run_beats
    net = build_network(graph, **options)
    x = sequences(graph, 3, 5)
    steps, lanes = graph.input.shape
    _, log = run_beats(net, x.reshape(-1, lanes), 3, max_cycles=500_000)
    return {"first_beat_to_output": int(log["out"][0] - log["in"][0]),
            "last_beat_to_output": int(log["out"][0] - log["in"][steps - 1]),
            "cycles_per_sequence": int(log["out"][2] - log["out"][1])}


def run_config(name, graph, board, options, work, cosim=True, n_cosim=2000, log=print):
    from ddnhw.board import build as board_build
    from ddnhw.board import get_board
    from ddnhw.host.cosim import cosim as run_cosim

    profile = get_board(board)
    opts = {"family": profile.family, **options}
    d = Path(work) / name
    row = {"config": name, "board": board, "device": profile.device,
           "options": json.loads(json.dumps(options))}
    if cosim:
        man = generate(graph, d / "rtl", **options)
        x = sequences(graph, n_cosim, 1)
        t = time.perf_counter()
        r = run_cosim(d / "rtl" / "ddnhw_top.v", man, x, expected=golden.run(graph, x),
                      seed=1, idle_prob=0.3, stall_prob=0.3, build_dir=Path(work) / "sim_build")
        row.update(cosim_sequences=n_cosim, cosim_mismatches=r.mismatches,
                   cosim_seconds=round(time.perf_counter() - t, 1))
        log(f"{name}: Verilator cosim {n_cosim} sequences, {r.mismatches} mismatches")
    net = build_network(graph, **opts)
    row["estimate"] = {k: sum(layer["estimate"].get(k, 0) for layer in net.layers)
                       for k in ("luts", "ffs", "dsps", "brams")}
    row["layers"] = [{k: v for k, v in layer.items() if k not in ("in_lanes", "out_lanes")}
                     for layer in net.layers]
    t = time.perf_counter()
    rep = board_build(net, board, d / "build")
    row.update({k: rep.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz", "clock_mhz",
                                       "timing_met")})
    row["build_seconds"] = round(time.perf_counter() - t, 1)
    row["latency_cycles"] = int(net.latency)
    row["ii_cycles"] = int(net.ii)
    row.update(measured_timing(graph, options))
    if rep.get("fmax_mhz"):
        row["sequences_per_s"] = round(rep["fmax_mhz"] * 1e6 / row["cycles_per_sequence"])
        row["sequences_per_s_at_clock"] = round(rep["clock_mhz"] * 1e6
                                                / row["cycles_per_sequence"])
        row["latency_us_at_fmax"] = round(row["first_beat_to_output"] / rep["fmax_mhz"], 2)
    log(f"{name}: {row}")
    return row


def write_md(res, path, title="GRU benchmark", description=DESCRIPTION, script="bench/rnn.py"):
    lines = [f"# {title}", "", f"- model: {description} (seeded random weights).",
             "- every row was cosimulated in Verilator against the golden model before it was "
             "built (random sequences incl. all-min/all-max, idle 0.3, backpressure 0.3).",
             "- latency: cycles from a sequence's first input beat to its output (one step per "
             "beat, input always valid; also from its last beat); II: cycles per sequence at "
             "full rate (measured in the Amaranth simulator; equal to the manifest's); "
             "throughput at the achieved Fmax.",
             "",
             "| config | board | folding | LUTs | FFs | DSPs | BRAMs | Fmax MHz | clock | timing "
             "| latency | last beat to output | II | sequences/s | estimate LUTs "
             "| cosim mismatches |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        o = r["options"]
        folding = sorted((o.get("folding") or {}).items())
        fold = ", ".join(f"{k} {tuple(v)}" for k, v in folding) or "unrolled"
        if o.get("gate_lanes"):
            fold += "; gate lanes " + ", ".join(f"{k} {v}" for k, v in o["gate_lanes"].items())
        lines.append(f"| {r['config']} | {r['board']} | {fold} | {r['luts']} | {r['ffs']} | "
                     f"{r['dsps']} | {r['brams']} | {r['fmax_mhz']} | {r['clock_mhz']} | "
                     f"{'met' if r['timing_met'] else 'MISSED'} | {r['first_beat_to_output']} | "
                     f"{r['last_beat_to_output']} | {r['cycles_per_sequence']} | "
                     f"{r.get('sequences_per_s', 0):,} | "
                     f"{r['estimate']['luts']} | {r.get('cosim_mismatches', 'n/a')} of "
                     f"{r.get('cosim_sequences', 0)} |")
    lines += [f"\nNote: {n}" for n in res.get("notes", [])]
    measured = sorted({f"{r['machine']}, {r['date']}" for r in res["rows"] if "machine" in r})
    if measured:
        lines += ["", "Measured on " + "; ".join(measured) + "."]
    lines += ["", f"Reproduce: `.venv/bin/python {script} --force` (yowasp toolchain).", ""]
    Path(path).write_text("\n".join(lines))


def run_bench(argv, doc, stem, graph, configs, model_params, md, work):
    """The command line of a sequence-classifier bench (``doc``: its module docstring):
    cosimulate and build each of ``configs`` (``name: (board, options)``) of ``graph``, keep
    the rows in ``<out>/<stem>.json`` and ``md(res, path)`` them to ``<out>/<stem>.md``."""
    import datetime
    import os
    import platform
    p = bench_parser(doc, work)
    p.add_argument("--configs", default=",".join(configs))
    p.add_argument("--cosim-sequences", type=int, default=2000)
    p.add_argument("--no-cosim", action="store_true")
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    work, out = bench_dirs(a)
    res = {"model": model_params, "rows": []}
    if (out / f"{stem}.json").exists() and not a.force:
        res = json.loads((out / f"{stem}.json").read_text())
    for name in [c for c in a.configs.split(",") if c]:
        if name not in configs:
            raise SystemExit(f"unknown config {name!r} (have: {', '.join(configs)})")
        res["rows"] = [r for r in res["rows"] if r["config"] != name]
        board, options = configs[name]
        row = run_config(name, graph, board, options, work, cosim=not a.no_cosim,
                         n_cosim=a.cosim_sequences)
        row["machine"] = f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)"
        row["date"] = datetime.date.today().isoformat()
        res["rows"].append(row)
        flow.write_json_atomic(out / f"{stem}.json", res)
        md(res, out / f"{stem}.md")
    return 0


def main(argv=None):
    return run_bench(argv, __doc__, "rnn", model(), CONFIGS, MODEL, write_md,
                     "/work/scratch/bench-rnn")


if __name__ == "__main__":
    raise SystemExit(main())
