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

import hashlib
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
from trust_cases import (FAMILIES, bundle_bytes, bundle_top, make_case,  # noqa: E402
                         single_beat, vectors)

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


def run_bundle(cases, n, work, seed, simulator="verilator"):
    """:func:`run_case` for several single-beat designs built as one Verilator model
    (:func:`trust_cases.bundle_top`): ``n`` vectors each, checked design by design."""
    from amaranth.back import verilog
    from ddnhw import golden
    from ddnhw.host.cosim import cosim
    from ddnhw.host.payload import StreamLayout
    from ddnhw.hw.lanes import Lanes, unpack_bytes
    name = "bundle-" + "-".join(f"{c.family}{c.seed}" for c in cases)
    top = f"trust_bundle_{hashlib.sha256(name.encode()).hexdigest()[:10]}"
    comp, f_in, f_out = bundle_top(cases, lfsr_seed=seed + 1)
    d = work / "designs" / top
    d.mkdir(parents=True, exist_ok=True)
    vpath = d / f"{top}.v"
    text = verilog.convert(comp, name=top, emit_src=False)
    if not vpath.exists() or vpath.read_text() != text:
        vpath.write_text(text)
    xs = [vectors(c.graph, n, seed + 7 * k) for k, c in enumerate(cases)]
    ys = [golden.run(c.graph, x).reshape(n, -1) for c, x in zip(cases, xs)]
    torch_bad = [None if c.torch_fn is None else
                 int(np.sum(np.any(np.asarray(c.torch_fn(x)).reshape(y.shape) != y, axis=1)))
                 for c, x, y in zip(cases, xs, ys)]
    xb, yb = bundle_bytes(xs, f_in), bundle_bytes(ys, f_out)
    layout = StreamLayout(top, Lanes(xb.shape[1], 8, False), Lanes(yb.shape[1], 8, False))
    res = cosim(vpath, layout, xb, expected=yb, simulator=simulator, seed=seed, idle_prob=0.2,
                stall_prob=0.2, build_dir=work / "sim")
    out = np.asarray(res.outputs, dtype=np.uint8)
    rows = []
    for k, c in enumerate(cases):
        off, lanes = f_out[k]
        got = unpack_bytes(out[:, off:off + lanes.nbytes], lanes) if len(out) == n else None
        rtl_bad = n if got is None else int(np.sum(np.any(got != ys[k], axis=1)))
        rows.append({"family": c.family, "seed": c.seed, "vectors": n, "tags": c.tags,
                     "bundle": name, "torch_mismatches": torch_bad[k],
                     "rtl_mismatches": rtl_bad, "message": res.message if rtl_bad else "",
                     "seconds_build": res.seconds_build, "seconds_run": res.seconds_run,
                     "cycles": res.cycles})
    return rows


def volume_plan(a):
    """The designs of the volume run, in order: ``[("bundle", [cases]) | ("single", case)]``.
    Round r: the single-beat designs (ir-dense seeds 31r..31r+30 sweep the 31 types, q-mlp,
    every scheme) in bundles of ``--bundle``, interleaved with one design of every multi-beat
    family (conv, residual, rnn/gru/lstm, q-cnn, q-rnn/gru/lstm)."""
    families = a.families.split(",") if a.families else list(FAMILIES)
    r = a.seed_offset
    while True:
        singles, multis = [], []
        for fam in families:
            if fam == "ir-dense":
                seeds = range(31 * r, 31 * r + 31)
            elif fam == "q-mlp":
                seeds = range(3 * r, 3 * r + 3)
            elif fam.startswith("scheme-"):
                seeds = range(2 * r, 2 * r + 2)
            else:
                seeds = [r]
            for seed in seeds:
                case = make_case(fam, seed)
                (singles if a.bundle > 1 and single_beat(case) else multis).append(case)
        bundles = [singles[k:k + a.bundle] for k in range(0, len(singles), a.bundle)]
        rng = np.random.default_rng(r)
        rng.shuffle(bundles)        # in random order: the schemes are not always last
        items = []
        for k in range(max(len(bundles), len(multis))):
            if k < len(bundles):
                items.append(("bundle", bundles[k]))
            if k < len(multis):
                items.append(("single", multis[k]))
        yield from items
        r += 1


def part_volume(a, work):
    total, rows = 0, []
    per = {"op": Counter(), "in_width": Counter(), "weight_width": Counter(),
           "family": Counter(), "torch_checked": Counter()}
    bad = []
    t0, cpu0 = time.time(), _cpu()
    # --designs fam:seed,...: those designs only, each run --repeats times with fresh vectors
    # (the compiled model is reused: the cost is in vectors, not builds)
    chosen = [(d.split(":")[0], int(d.split(":")[1])) for d in a.designs.split(",") if d]
    plan = volume_plan(a)
    builds = 0
    k = 0
    while total < a.cases and time.time() - t0 < a.volume_seconds:
        if chosen:
            if k >= len(chosen) * a.repeats:
                break
            fam, seed = chosen[k % len(chosen)]
            item = ("single", make_case(fam, seed))
            vseed = seed + 1000 * (k // len(chosen) + 1)
        else:
            item = next(plan)
            vseed = k
        k += 1
        kind, what = item
        try:
            if kind == "bundle":
                n = a.per_design
                new = run_bundle(what, n, work, vseed)
                label = f"bundle of {len(what)} ({', '.join(f'{c.family}:{c.seed}' for c in what)})"
            else:
                case = what
                shape = case.graph.input.shape
                beats = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
                n = max(1000, min(a.per_design, a.per_design // max(1, beats // 4)))
                new = [run_case(case, n, work, vseed)]
                label = f"{case.family}:{case.seed}"
        except Exception as e:    # a crash is a finding too: record it and go on
            cs = what if kind == "bundle" else [what]
            bad.append({"designs": [f"{c.family}:{c.seed}" for c in cs],
                        "error": f"{type(e).__name__}: {e}"})
            log(f"{kind} {[f'{c.family}:{c.seed}' for c in cs]}: ERROR {type(e).__name__}: "
                f"{str(e)[:300]}")
            continue
        builds += 1
        for r in new:
            rows.append(r)
            total += r["vectors"]
            if r["rtl_mismatches"] or r["torch_mismatches"]:
                bad.append(r)
            for op in r["tags"]["ops"]:
                per["op"][op] += r["vectors"]
            per["in_width"][r["tags"]["in_width"]] += r["vectors"]
            for w in r["tags"]["weight_widths"]:
                per["weight_width"][w] += r["vectors"]
            per["family"][r["family"]] += r["vectors"]
            if r["torch_mismatches"] is not None:
                per["torch_checked"][r["family"]] += r["vectors"]
        r0 = new[0]
        log(f"{label}: {n} vectors each, torch {[r['torch_mismatches'] for r in new]}, rtl "
            f"{[r['rtl_mismatches'] for r in new]} mismatches (build {r0['seconds_build']:.0f} s,"
            f" run {r0['seconds_run']:.0f} s); total {total}")
    return {"cases": total, "designs": len({(r["family"], r["seed"]) for r in rows}),
            "runs": len(rows), "verilator_models": builds, "failures": bad,
            "torch_checked": sum(per["torch_checked"].values()),
            "per_op": dict(per["op"]), "per_in_width": dict(per["in_width"]),
            "per_weight_width": dict(per["weight_width"]), "per_family": dict(per["family"]),
            "seconds": round(time.time() - t0, 1), "cpu_seconds": round(_cpu() - cpu0, 1)}


def _cpu():
    """CPU seconds of this process and its finished children (Verilator builds and runs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


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

V1_SNIPPET = r"""
import json, sys
from ddnhw.host import fuzz
from ddnhw.ir import load_graph
ports = []
init = fuzz.FuzzPort.__init__
def spy(self, *a, **k):
    init(self, *a, **k)
    ports.append(self)
fuzz.FuzzPort.__init__ = spy
n, seed, rate, confirm = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
r = fuzz.fuzz_link(load_graph(sys.argv[1]), n, seed=seed, error_rate=rate, retries=8,
                   confirm=confirm)
r["line_seconds"] = round(ports[0].t, 3)
r["vectors_per_line_second"] = round(n / ports[0].t, 1)
print(json.dumps(r))
"""


def part_link(a, work):
    import subprocess
    from ddnhw.host.fuzz import fuzz_link
    from ddnhw.ir import load_graph
    demo = ROOT / "examples" / "digits_mlp.npz"
    g = load_graph(demo)
    t, cpu = time.time(), _cpu()
    model = {"v2": fuzz_link(g, a.frames, seed=18, error_rate=a.error_rate, retries=8)}
    if a.link_confirm_vectors:
        model["v2_confirm"] = fuzz_link(g, a.link_confirm_vectors, seed=19,
                                        error_rate=a.error_rate, retries=8, confirm=True)
    model["seconds"], model["cpu_seconds"] = round(time.time() - t, 1), round(_cpu() - cpu, 1)
    log(f"link (protocol model): {json.dumps(model)[:2000]}")
    v1 = None
    if a.v1_tree:
        # protocol version 1 (CRC-8), the same model and wire, from an older checkout's ddnhw
        stamp = Path(a.v1_tree) / "COMMIT"     # a `git archive` copy: the commit written here
        commit = stamp.read_text().strip() if stamp.exists() else subprocess.run(
            ["git", "-C", a.v1_tree, "rev-parse", "HEAD"], capture_output=True,
            text=True).stdout.strip()
        v1 = {"commit": commit}
        for name, confirm in (("crc8_only", 0), ("confirm", 1)):
            env = dict(os.environ, PYTHONPATH=a.v1_tree)
            r = subprocess.run([sys.executable, "-c", V1_SNIPPET, str(demo),
                                str(a.v1_vectors), "17", str(a.error_rate), str(confirm)],
                               env=env, capture_output=True, text=True, cwd=a.v1_tree)
            if r.returncode:
                raise RuntimeError(f"v1 run failed: {r.stderr[-2000:]}")
            v1[name] = json.loads(r.stdout.strip().splitlines()[-1])
        log(f"link v1: {json.dumps(v1)[:2000]}")
    rtl = None
    if a.rtl_vectors:
        from ddnhw.host.link_sim import fuzz_link_rtl
        rg = load_graph(a.rtl_model) if a.rtl_model else g
        t, cpu = time.time(), _cpu()
        rtl = fuzz_link_rtl(rg, a.rtl_vectors, build_dir=work / "linksim", seed=18,
                            error_rate=a.error_rate, retries=8, chunk=5000,
                            progress=lambda k, c: log(f"link (RTL): {k} vectors, {c}"))
        rtl["design"] = str(a.rtl_model or demo.relative_to(ROOT))
        rtl["seconds"], rtl["cpu_seconds"] = round(time.time() - t, 1), round(_cpu() - cpu, 1)
        log(f"link (RTL): {json.dumps(rtl)[:2000]}")
    return {"model": model, "v1": v1, "rtl": rtl}


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
                  f"Measured: {v.get('measured', res['date'])}.", "",
                  f"{v['cases']:,} cases (input vectors through one design each) in "
                  f"{v.get('runs', v['designs'])} runs of {v['designs']} generated designs, "
                  f"compiled into {v.get('verilator_models', v['designs'])} Verilator models "
                  f"(single-beat designs bundled, up to 8 per model), "
                  f"{v['torch_checked']:,} of them also through integer-mode PyTorch; "
                  f"failures: {len(v['failures'])}; {v['seconds']:.0f} s wall, "
                  f"{v.get('cpu_seconds', 0):.0f} s CPU.", ""]
        lines += table(v["per_op"], "op") + [""] + table(v["per_in_width"], "input width") + \
            [""] + table(v["per_weight_width"], "weight width") + [""] + \
            table(v["per_family"], "family") + [""]
        for f in v["failures"][:20]:
            lines.append(f"- FAILURE {json.dumps(f)[:400]}")
        sup = res.get("volume_supplement")
        if sup:
            lines += [f"Supplement ({sup.get('measured', '')}; `--designs "
                      f"{sup.get('designs_arg', '')}`): {sup['cases']:,} cases in "
                      f"{sup['designs']} designs, ops {sorted(sup['per_op'])}, failures: "
                      f"{len(sup['failures'])}.", ""]
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
        lines += ["## Fuzzed link", "", f"Measured: {lk.get('measured', res['date'])}.", "",
                  "| run | protocol | vectors | frames on the wire | damaged "
                  "| delivered exact | WRONG accepted | twice | lost after retries | CRC checks "
                  "failed | vectors per second of line time |", "|---|---|---|---|---|---|---|---|---|---|---|"]

        def row(name, proto, r):
            frames = sum(r["frames_on_wire"].values())
            dmg = sum(sum(c.values()) for c in r["frames_damaged"].values())
            crc = r.get("crc_checks_failed")
            if crc is None and "crc_checks_failed_host" in r:     # RTL: host + device's ERR_CRC
                crc = r["crc_checks_failed_host"] + r["device_errors"].get("bad CRC", 0)
            crc = "" if crc is None else f"{crc:,}"
            vps = r.get("vectors_per_line_second", r.get("vectors_per_simulated_second"))
            vps = f"{vps:,.1f} at {r.get('baud', 115200):,} baud"
            lines.append(f"| {name} | {proto} | {r['vectors']:,} | {frames:,} | {dmg:,} "
                         f"({100 * dmg / max(frames, 1):.1f} %) | {r['delivered'] - r['wrong_accepted']:,}"
                         f" | {r['wrong_accepted']} | {r['delivered_twice']} | "
                         f"{r['lost_after_retries']} | {crc} | {vps} |")
        m = lk["model"]
        row("protocol model", "v2 (CRC-32)", m["v2"])
        if m.get("v2_confirm"):
            row("protocol model, --confirm", "v2 (CRC-32)", m["v2_confirm"])
        if lk.get("v1"):
            row("protocol model", f"v1 (CRC-8, {lk['v1']['commit'][:8]})", lk["v1"]["crc8_only"])
            row("protocol model, --confirm", "v1 (CRC-8)", lk["v1"]["confirm"])
        if lk.get("rtl"):
            row(f"RTL (Verilator, {lk['rtl']['design']})", "v2 (CRC-32)", lk["rtl"])
        lines += ["", "```", json.dumps(lk, indent=1)[:6000], "```", ""]
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
    p.add_argument("--bundle", type=int, default=8,
                   help="single-beat designs per Verilator model (1: one model each)")
    p.add_argument("--seed-offset", type=int, default=0,
                   help="first round of the plan (to split a run over processes)")
    p.add_argument("--reset-vectors", default="85000,10000,5000")
    p.add_argument("--resets", default="800,300,300")
    p.add_argument("--reset-designs", default="mlp,cnn,gru")
    p.add_argument("--reset-seed", type=int, default=0, help="another schedule and vectors")
    p.add_argument("--cnn-target-ii", type=int, default=0,
                   help="fold the CNN to this II (default: the UP5K plan, II 1536)")
    p.add_argument("--cnn-model", default="", help="trained digits CNN (ddnhw train --model cnn)")
    p.add_argument("--gru-model", default="", help="trained digits GRU (ddnhw train --model gru)")
    p.add_argument("--frames", type=int, default=100_000,
                   help="vectors through the protocol model (about 1.6 frames each way per "
                        "vector at 20 %% damage)")
    p.add_argument("--link-confirm-vectors", type=int, default=20_000)
    p.add_argument("--v1-tree", default="",
                   help="a copy of protocol version 1's ddnhw (`git archive e693c65 ddnhw | "
                        "tar -x -C DIR`, its commit in DIR/COMMIT) to measure it on the same "
                        "wire")
    p.add_argument("--v1-vectors", type=int, default=50_000)
    p.add_argument("--rtl-vectors", type=int, default=100_000,
                   help="vectors through the Verilator board top (ddnhw.host.link_sim)")
    p.add_argument("--rtl-model", default="", help="model of the RTL run (default: the demo)")
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
        res[part]["measured"] = (f"{platform.node()} {platform.machine()}, {os.cpu_count()} "
                                 f"cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                                 f"load average at the end {os.getloadavg()[0]:.1f}")
        path.write_text(json.dumps(res, indent=1, default=str) + "\n")
        (out / "trust.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
