"""Trust at scale (issue 18): generated cases end to end, resets in the RTL, a fuzzed link.

Parts (``--part``, default all):

- ``volume``: random layers and small networks of every op and quantizer
  (``bench/trust_cases.py``), each lowered to Verilog and run through Verilator in bulk mode
  (many vectors per compiled design) under random idle/backpressure; every vector is checked
  with exact equality: integer-mode PyTorch == golden == RTL (PyTorch where the family has an
  integer-mode function). Counts per op, per input width and per weight width.
- ``resets``: the demo MLP, a folded CNN and the GRU in the Verilator bulk harness with the
  DUT's reset asserted at random cycles mid-stream (``cosim(resets=...)``).
- ``link``: the host runtime against a model of the device protocol over a corrupting wire
  (``ddnhw.host.fuzz``), and a slice through the RTL UART board top.

Writes ``trust.json`` and ``trust.md`` to ``--out`` (default bench/results), one section per
part run (the others are kept from the previous file).
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bench_dirs, bench_parser  # noqa: E402
from trust_cases import FAMILIES, make_case, vectors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- volume -------------------------------------------------------------------------------------

def run_case(case, n, work, seed, simulator="verilator"):
    """Run ``n`` vectors of ``case`` through PyTorch, golden and the RTL; returns a dict."""
    import ddnhw.lower as lower
    from ddnhw import golden
    from ddnhw.host.cosim import cosim
    x = vectors(case.graph, n, seed)
    y = golden.run(case.graph, x)
    torch_ok = None
    if case.torch_fn is not None:
        t = np.asarray(case.torch_fn(x)).reshape(y.shape)
        torch_ok = int(np.sum(np.any(t != y, axis=1)))
    d = work / "designs" / f"{case.family}-{case.seed}"
    man = lower.generate(case.graph, d, "trust_top", **case.options)
    blocks = sorted({layer.get("block", "") for layer in man["layers"]})
    res = cosim(d / man["verilog"], man, x, expected=y, simulator=simulator, seed=seed,
                idle_prob=0.2, stall_prob=0.2, build_dir=work / "sim")
    return {"family": case.family, "seed": case.seed, "vectors": n, "tags": case.tags,
            "blocks": blocks, "torch_mismatches": torch_ok, "rtl_mismatches": res.mismatches,
            "message": res.message, "seconds_build": res.seconds_build,
            "seconds_run": res.seconds_run, "cycles": res.cycles}


def part_volume(a, work):
    total, rows = 0, []
    per = {"op": Counter(), "in_width": Counter(), "weight_width": Counter(),
           "family": Counter(), "torch_checked": Counter()}
    bad = []
    t0 = time.time()
    families = a.families.split(",") if a.families else list(FAMILIES)
    # --designs fam:seed,...: those designs only, each run --repeats times with fresh vectors
    # (the compiled model is reused: the cost is in vectors, not builds)
    chosen = [(d.split(":")[0], int(d.split(":")[1])) for d in a.designs.split(",") if d]
    k = 0
    while total < a.cases and time.time() - t0 < a.volume_seconds:
        if chosen:
            if k >= len(chosen) * a.repeats:
                break
            fam, seed = chosen[k % len(chosen)]
            vseed = seed + 1000 * (k // len(chosen) + 1)
        else:
            fam = families[k % len(families)]
            seed = vseed = k // len(families) + a.seed_offset
        k += 1
        case = make_case(fam, seed)
        beats = int(np.prod(case.graph.input.shape[:-1])) if len(case.graph.input.shape) > 1 \
            else 1
        n = max(1000, min(a.per_design, a.per_design // max(1, beats // 4)))
        try:
            r = run_case(case, n, work, vseed)
        except Exception as e:    # a crash is a finding too: record it and go on
            bad.append({"family": fam, "seed": seed, "error": f"{type(e).__name__}: {e}"})
            log(f"{fam} seed {seed}: ERROR {type(e).__name__}: {str(e)[:300]}")
            continue
        rows.append(r)
        total += n
        if r["rtl_mismatches"] or r["torch_mismatches"]:
            bad.append(r)
        for op in case.tags["ops"]:
            per["op"][op] += n
        per["in_width"][case.tags["in_width"]] += n
        for w in case.tags["weight_widths"]:
            per["weight_width"][w] += n
        per["family"][fam] += n
        if r["torch_mismatches"] is not None:
            per["torch_checked"][fam] += n
        log(f"{fam} seed {seed}: {n} vectors, in {case.tags['in_width']}, weights "
            f"{case.tags['weight_widths']}, torch {r['torch_mismatches']}, rtl "
            f"{r['rtl_mismatches']} mismatches (build {r['seconds_build']:.0f} s, run "
            f"{r['seconds_run']:.0f} s); total {total}")
    return {"cases": total, "designs": len({(r["family"], r["seed"]) for r in rows}),
            "runs": len(rows), "failures": bad,
            "torch_checked": sum(per["torch_checked"].values()),
            "per_op": dict(per["op"]), "per_in_width": dict(per["in_width"]),
            "per_weight_width": dict(per["weight_width"]), "per_family": dict(per["family"]),
            "seconds": round(time.time() - t0, 1)}


# -- resets -------------------------------------------------------------------------------------

def reset_schedule(rng, n_vectors, ii, count):
    span = int(n_vectors * max(ii, 1) * 1.3) + 100
    return np.sort(rng.choice(np.arange(20, span), size=min(count, span - 20), replace=False))


def part_resets(a, work):
    import ddnhw.lower as lower
    from ddnhw import flow, golden
    from ddnhw.host.cosim import cosim
    from ddnhw.ir import load_graph
    keep = a.reset_designs.split(",")
    designs = [("demo MLP 64-16-10 (unrolled, rtl/digits_mlp)", ROOT / "examples" /
                "digits_mlp.npz", "", a.reset_vectors[0], a.resets[0])] if "mlp" in keep else []
    for name, path, fold, n, r in (("digits CNN (UP5K plan or --cnn-target-ii)", a.cnn_model,
                                    "cnn", a.reset_vectors[1], a.resets[1]),
                                   ("digits GRU 16 (UP5K plan)", a.gru_model, "gru",
                                    a.reset_vectors[2], a.resets[2])):
        if path and fold in keep:
            designs.append((name, Path(path), fold, n, r))
    out = []
    rng = np.random.default_rng(18 + a.reset_seed)
    for name, path, fold, n, count in designs:
        g = load_graph(path)
        d = work / "resets" / path.stem
        if fold == "cnn" and a.cnn_target_ii:
            g, _ = flow.decide(g, target_ii=a.cnn_target_ii)     # folded to this II
        elif fold:
            g, _ = flow.decide(g, "icebreaker")     # the UP5K plan, as the demos: folded
        man = lower.generate(g, d, "rst_top")
        x = flow.random_vectors(g, n, seed=7 + a.reset_seed)
        y = golden.run(g, x)
        resets = reset_schedule(rng, n, man["ii_cycles"], count)
        t = time.time()
        res = cosim(d / man["verilog"], man, x, expected=y, seed=11 + a.reset_seed,
                    idle_prob=0.3, stall_prob=0.3, build_dir=work / "sim", resets=resets)
        ex = res.extra
        row = {"design": name, "ii_cycles": man["ii_cycles"], "vectors": n,
               "resets_scheduled": len(resets), "resets": ex["resets"],
               "vectors_checked": ex["vectors_checked"], "vectors_lost": ex["vectors_lost"],
               "mismatches": res.mismatches, "message": res.message, "cycles": res.cycles,
               "seconds": round(time.time() - t, 1),
               "folding": [[layer["name"], layer.get("pe"), layer.get("simd")]
                           for layer in man["layers"] if "pe" in layer]}
        log(f"resets {name}: {row}")
        out.append(row)
    return {"designs": out, "vectors": sum(r["vectors"] for r in out),
            "resets": sum(r["resets"] for r in out),
            "mismatches": sum(r["mismatches"] for r in out)}


# -- link ---------------------------------------------------------------------------------------

def part_link(a, work):
    from ddnhw.host.fuzz import fuzz_link
    from ddnhw.ir import load_graph
    g = load_graph(ROOT / "examples" / "digits_mlp.npz")
    t = time.time()
    model = {"crc8_only": fuzz_link(g, a.link_plain_frames, seed=17, error_rate=a.error_rate,
                                    retries=8),
             "confirm": fuzz_link(g, a.frames, seed=18, error_rate=a.error_rate, retries=8,
                                  confirm=True)}
    model["seconds"] = round(time.time() - t, 1)
    log(f"link (protocol model): {model}")
    rtl = None
    if a.rtl_frames:
        from ddnhw.host.cosim_link import cosim_link
        from ddnhw.ir.testing import random_mlp
        gs = random_mlp(3, sizes=(6, 5, 3))
        from ddnhw import flow
        x = flow.random_vectors(gs, a.rtl_frames, seed=3)
        t = time.time()
        rtl = cosim_link(gs, x, build_dir=work / "link", fuzz_rate=a.error_rate, seed=18,
                         phase_rows=8, retries=8, fuzz_rows=a.rtl_frames)
        rtl = {k: v for k, v in rtl.items() if k not in ("phases",)} | {
            "phases": {k: {kk: vv for kk, vv in v.items() if kk != "outputs"}
                       for k, v in rtl.get("phases", {}).items()},
            "seconds": round(time.time() - t, 1)}
        log(f"link (RTL): {rtl}")
    return {"model": model, "rtl": rtl}


# -- report -------------------------------------------------------------------------------------

def table(counter, key_name):
    rows = sorted(counter.items(), key=lambda kv: (kv[0][0], int(kv[0][1:]) if kv[0][1:].isdigit()
                                                   else 0, kv[0]))
    return [f"| {key_name} | cases |", "|---|---|"] + [f"| {k} | {v:,} |" for k, v in rows]


def markdown(res):
    lines = ["# Trust at scale (bench/trust.py)", "",
             f"Machine: {res['machine']}; {res['date']}.", ""]
    v = res.get("volume")
    if v:
        lines += ["## Volume: integer-mode PyTorch == golden == RTL (Verilator bulk)", "",
                  f"{v['cases']:,} cases (input vectors) in {v.get('runs', v['designs'])} runs of "
                  f"{v['designs']} generated designs (each compiled once), "
                  f"{v['torch_checked']:,} of them also through integer-mode PyTorch; "
                  f"failures: {len(v['failures'])}; {v['seconds']:.0f} s.", ""]
        lines += table(v["per_op"], "op") + [""] + table(v["per_in_width"], "input width") + \
            [""] + table(v["per_weight_width"], "weight width") + [""] + \
            table(v["per_family"], "family") + [""]
        for f in v["failures"][:20]:
            lines.append(f"- FAILURE {json.dumps(f)[:400]}")
    r = res.get("resets")
    if r:
        lines += ["## Resets in the RTL", "", "| design | II | vectors | resets | checked | "
                  "lost in flight | mismatches |", "|---|---|---|---|---|---|---|"]
        for d in r["designs"]:
            lines.append(f"| {d['design']} | {d['ii_cycles']} | {d['vectors']:,} | {d['resets']:,}"
                         f" | {d['vectors_checked']:,} | {d['vectors_lost']:,} | "
                         f"{d['mismatches']} |")
        lines.append("")
    lk = res.get("link")
    if lk:
        m = lk["model"]
        lines += ["## Fuzzed link", "", "```", json.dumps(m, indent=1), "```", ""]
        if lk.get("rtl"):
            lines += ["RTL slice:", "", "```", json.dumps(lk["rtl"], indent=1)[:3000], "```", ""]
    return "\n".join(lines) + "\n"


def main():
    p = bench_parser(__doc__, "/tmp/ddnhw-bench-trust")
    p.add_argument("--part", default="volume,resets,link")
    p.add_argument("--cases", type=int, default=1_000_000)
    p.add_argument("--per-design", type=int, default=40_000)
    p.add_argument("--volume-seconds", type=float, default=3 * 3600)
    p.add_argument("--families", default="")
    p.add_argument("--designs", default="", help="fam:seed,... (with --repeats)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed-offset", type=int, default=0,
                   help="first seed of every family (to split a run over processes)")
    p.add_argument("--reset-vectors", default="85000,10000,5000")
    p.add_argument("--resets", default="800,300,300")
    p.add_argument("--reset-designs", default="mlp,cnn,gru")
    p.add_argument("--reset-seed", type=int, default=0, help="another schedule and vectors")
    p.add_argument("--cnn-target-ii", type=int, default=0,
                   help="fold the CNN to this II (default: the UP5K plan, II 1536)")
    p.add_argument("--cnn-model", default="", help="trained digits CNN (ddnhw train --model cnn)")
    p.add_argument("--gru-model", default="", help="trained digits GRU (ddnhw train --model gru)")
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--link-plain-frames", type=int, default=20_000,
                   help="frames without --confirm (to count what CRC-8 alone lets through)")
    p.add_argument("--rtl-frames", type=int, default=1_000)
    p.add_argument("--error-rate", type=float, default=0.2)
    a = p.parse_args()
    a.reset_vectors = [int(v) for v in a.reset_vectors.split(",")]
    a.resets = [int(v) for v in a.resets.split(",")]
    work, out = bench_dirs(a)
    os.environ.setdefault("DDNHW_VERILATOR_OPT", "-O0")   # small designs: compile time rules
    path = out / "trust.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    res.update(machine=f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores",
               date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    for part in a.part.split(","):
        res[part] = {"volume": part_volume, "resets": part_resets, "link": part_link}[part](
            a, work)
        path.write_text(json.dumps(res, indent=1, default=str) + "\n")
        (out / "trust.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
