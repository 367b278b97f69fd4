#!/usr/bin/env python3
"""Side by side with peers: the unrolled peer models built by ddnhw and by da4ml (when
installed) on iCE40UP5K and ECP5-85F, same YoWASP tools, same serialising I/O wrapper.

The models (issue 17), built from seeded random weights and shifts:

- ``small``: 64-32-10 MLP, 8-bit unsigned inputs, 4-bit weights, 4-bit unsigned activations,
  floor + saturate requantization, raw logits;
- ``large``: 16-64-32-32-5 (the hls4ml jet-tagging topology), 6-bit signed inputs, 6-bit
  weights and 6-bit unsigned activations, floor + saturate.

The IR rounds half up; a floor shift by ``s`` is that with ``2**(s-1)`` taken off the bias
(exact). da4ml gets the floor model itself (its emulator is checked against ddnhw's golden
model on random vectors first).

Per model and ddnhw configuration (``lean``: a pipeline register every 5 adder levels, for the
fewest flip-flops; ``fast``: every 2, for Fmax): RTL generation time (cold: plans not cached),
Verilator bulk cosimulation with random idle cycles and backpressure (0 mismatches required
before any number is reported), then a build per board (``--timeout`` seconds each; a build
stopped in placement or routing reports nextpnr's numbers so far, marked). The UP5K cannot
hold these networks unrolled: nextpnr's packing count is reported (its "does not fit").
The estimate error (ddnhw's resource model vs nextpnr) is printed per design.

    python bench/peers.py [--models small,large] [--configs lean,fast]
        [--boards icebreaker,ulx3s-85f] [--timeout 600] [--vectors 20000] [--no-build]

Writes bench/results/peers.json and peers.md.
"""
from __future__ import annotations

import datetime
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import bench_dirs, bench_parser  # noqa: E402

from ddnhw import DdnhwError, flow, golden  # noqa: E402
from ddnhw.ir import IntType, save_graph  # noqa: E402
from ddnhw.ir.builder import mlp_graph  # noqa: E402

CONFIGS = {"lean": 5, "fast": 2}          # regs_every
MODELS = {"small": ((64, 32, 10), IntType(False, 8), 4, 4),
          "large": ((16, 64, 32, 32, 5), IntType(True, 6), 6, 6)}

# the recorded peer numbers (issue 17; same machine, earlier session): not rerun here
RECORDED = {
    ("small", "da4ml 0.6 (latency cutoff 4)"): {
        "ice40_luts": 25710, "ecp5_luts": 29154, "ffs": 4761,
        "ecp5_fmax": "~46 (placed, routing cut at 600 s)", "rtl_seconds": 0.44},
    ("small", "ddnhw before issue 17"): {
        "ice40_luts": 21932, "ecp5_luts": 27080, "ffs": 12537,
        "ecp5_fmax": "~63 (placed, routing cut at 600 s)", "rtl_seconds": 6.3},
    ("small", "hls4ml 1.3"): {"note": "C simulation 8.3k inferences/s; its RTL needs Vivado/"
                                      "Vitis HLS (not available here)"},
}


def peer_model(kind="small", seed=0):
    """The peer model ``kind`` (see the module doc) with seeded random weights; shifts chosen
    so that about 1 % of a layer's accumulators saturate on random inputs."""
    sizes, in_type, w_bits, a_bits = MODELS[kind]
    rng = np.random.default_rng(seed)
    x = rng.integers(in_type.min, in_type.max + 1, size=(4096, sizes[0]))
    layers = []
    for k in range(len(sizes) - 1):
        w = rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), size=(sizes[k + 1], sizes[k]))
        b = rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), size=sizes[k + 1]) * 4
        acc = x @ w.T + b
        layer = {"weight": w, "bias": b}
        if k < len(sizes) - 2:
            hi = (1 << a_bits) - 1
            s = int(max(0, np.ceil(np.log2(max(1.0, np.percentile(acc, 99)) / hi))))
            # floor(acc >> s) == round_half_up((acc - 2**(s-1)) >> s)
            layer["bias"] = b - ((1 << (s - 1)) if s else 0)
            layer["requant"] = {"multiplier": np.ones(sizes[k + 1], np.int64),
                                "shift": np.full(sizes[k + 1], s), "lo": 0, "hi": hi,
                                "out_type": IntType(False, a_bits)}
            x = np.clip(acc >> s, 0, hi)
        layers.append(layer)
    return mlp_graph(in_type, layers, meta={"name": f"peer_{kind}", "seed": seed})


# -- ddnhw -----------------------------------------------------------------------------------

def ddnhw_generate(graph, outdir, regs_every, family):
    """``(annotated graph, manifest, seconds)``: the unrolled design's Verilog, cold."""
    import ddnhw.hw.dense as dense
    from ddnhw.hw.family import Budget
    from ddnhw.lower import generate
    from ddnhw.passes.fold import select
    dense._PLANS.clear()
    t, c = time.perf_counter(), cpu_seconds()
    g, _ = select(graph, Budget(family), "none")
    man = generate(g, outdir, regs_every=regs_every, family=family)
    seconds, cpu = time.perf_counter() - t, cpu_seconds() - c
    save_graph(g, Path(outdir) / "model.npz")
    return g, man, seconds, cpu


def cpu_seconds():
    """CPU seconds of this process and its finished children (Amaranth runs yosys as a
    child): the RTL generation's own time on a machine shared with other work."""
    import resource
    s, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + ch.ru_utime + ch.ru_stime


def cosim(graph, rtl_dir, n, seed=1):
    x = flow.random_vectors(graph, n, seed=seed)
    t = graph.input.dtype
    x = np.concatenate([np.full((1, x.shape[1]), t.min), np.full((1, x.shape[1]), t.max), x])
    r = flow.cosim_check(graph, x, rtl_dir)
    return {"vectors": len(x), "mismatches": r["mismatches"],
            "seconds_build": round(r["seconds_build"], 1),
            "seconds_run": round(r["seconds_run"], 2), "message": r["message"]}


def _fit_numbers(outdir):
    """Numbers of a build that nextpnr refused (does not fit): its packing count and the
    yosys flip-flops."""
    from ddnhw.board.build import _utilisation_from_log, _yosys_cells
    out = {}
    for f in Path(outdir).glob("*.tim"):
        util = _utilisation_from_log(f.read_text(errors="replace"))
        if "ICESTORM_LC" in util:
            out["luts"] = util["ICESTORM_LC"]["used"]
        if "TRELLIS_COMB" in util:
            out["luts"] = util["TRELLIS_COMB"]["used"]
    for f in Path(outdir).glob("*.rpt"):
        cells = _yosys_cells(f.read_text(errors="replace"))
        out["ffs"] = sum(n for c, n in cells.items() if c.startswith(("SB_DFF", "TRELLIS_FF")))
        out["carry"] = cells.get("SB_CARRY", cells.get("CCU2C", 0))
    return out


def report_from_logs(outdir):
    """The numbers of a build that was stopped from outside (its bench process ended before
    the tools did): nextpnr's packing count, its last logged Fmax (placement estimate) and the
    step it was in, from the logs in ``outdir``; None without a nextpnr log."""
    from ddnhw.board.build import _fmax_from_log, stage_of_logs as _stage
    tims = list(Path(outdir).glob("*.tim"))
    if not tims:
        return None
    text = tims[0].read_text(errors="replace")
    out = {"fits": "does not fit" not in text, **_fit_numbers(outdir)}
    ff = re.findall(r"TRELLIS_FF:\s+(\d+)/", text)
    if ff:
        out["ffs"] = int(ff[-1])
    fmax = _fmax_from_log(text)
    out["fmax_mhz"] = round(min(f for f, _ in fmax.values()), 2) if fmax else None
    out["timed_out"] = "Program finished normally" not in text
    out["stage"] = _stage(text, "") if out["timed_out"] else "done"
    out["seconds"] = None
    return out


def board_build(core, board, outdir, timeout):
    from ddnhw.board import build
    t = time.monotonic()
    try:
        rep = build(core, board, outdir, name="bench_top", timeout=timeout)
    except DdnhwError as e:
        from ddnhw.board.build import BuildTimeout
        msg = str(e).splitlines()[0]
        if isinstance(e, BuildTimeout):      # stopped at its limit: nextpnr's numbers so far
            part = report_from_logs(outdir) or {}
            return {**part, "timed_out": True, "note": msg[:300],
                    "seconds": round(time.monotonic() - t, 1)}
        if "does not fit" not in msg:
            return {"error": msg[:300], "seconds": round(time.monotonic() - t, 1)}
        return {"fits": False, "note": msg[:300], **_fit_numbers(outdir),
                "seconds": round(time.monotonic() - t, 1)}
    keep = ("luts", "ffs", "dsps", "brams", "carry", "lut4", "fmax_mhz", "seconds",
            "cpu_seconds", "timed_out", "stage", "timing_met", "clock_mhz")
    return {"fits": True, **{k: rep.get(k) for k in keep}}


def dense_features(graph, regs_every, family):
    """For refitting the estimate (bench/fit_estimate.py fit_dense): the unrolled network's
    Dense features summed (``dense``: structural LUT4s, ``dense_adder``: adders) and
    ``other_luts``: every other block's LUT estimate plus the measurement top's output
    register LUTs."""
    from ddnhw.hw.family import Budget
    from ddnhw.hw.protocol import spec_of
    from ddnhw.lower import build_network
    from ddnhw.lower.estimate import estimate_block
    from ddnhw.passes.fold import select
    g, _ = select(graph, Budget(family), "none")
    core = build_network(g, family=family, regs_every=regs_every)
    out = {"dense": 0, "dense_adder": 0, "dense_ff": 0, "other_luts": 0}
    for b in core.blocks:
        f = spec_of(b).features()["luts"]
        if "dense" in f:
            for k in ("dense", "dense_adder", "dense_ff"):
                out[k] += f[k]
        else:
            out["other_luts"] += estimate_block(b, family)["luts"]
    out["other_luts"] += int(np.prod(graph.output.shape)) * graph.output.dtype.bits
    return out


# -- da4ml -----------------------------------------------------------------------------------

def da4ml_available():
    try:
        import da4ml  # noqa: F401
        from da4ml.codegen import VerilogModel  # noqa: F401
        return True
    except ImportError:
        return False


def da4ml_design(graph, outdir, cutoff=4):
    """da4ml's RTL of ``graph`` (floor requantization): ``(comb logic, info)``; ``info``:
    ``seconds`` (trace, optimise, write RTL), ``latency`` (register stages), ``files``,
    ``module``, widths."""
    from da4ml.codegen import VerilogModel
    from da4ml.trace import FixedVariableArrayInput, comb_trace
    from da4ml.trace.ops import quantize
    rq = {n.inputs[0]: n for n in graph.nodes if n.op == "requant"}
    dense = [n for n in graph.nodes if n.op == "dense"]
    it = graph.input.dtype
    t0, c0 = time.perf_counter(), cpu_seconds()
    inp = FixedVariableArrayInput((dense[0].attrs["weight"].shape[1],))
    x = quantize(inp, int(it.signed), it.bits - int(it.signed), 0)
    for n in dense:
        w, b = n.attrs["weight"], n.attrs["bias"].copy()
        r = rq.get(n.outputs[0])
        s = 0
        if r is not None:
            s = int(r.attrs["shift"][0])
            assert np.all(r.attrs["shift"] == s) and np.all(r.attrs["multiplier"] == 1)
            b = b + ((1 << (s - 1)) if s else 0)          # back to the floor model's bias
        x = x @ w.T.astype(np.float64) + b.astype(np.float64)
        if r is not None:
            ot = graph.tensors[r.outputs[0]].dtype
            x = quantize(x * 2.0 ** -s, 0, ot.bits, 0, "SAT", "TRN")
    comb = comb_trace(inp, x)
    m = VerilogModel(comb, "peer", outdir, latency_cutoff=cutoff, print_latency=False)
    m.write()
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    src = Path(outdir) / "src"
    top = (src / "peer.v").read_text()
    ports = dict((name, int(hi) + 1) for hi, name in
                 re.findall(r"(?:input|output reg|output)\s+\[(\d+):0\]\s+(\w+)", top))
    files = sorted(p for p in src.glob("peer*.v") if p.name != "peer_wrapper.v")
    used = "".join(p.read_text() for p in files)
    files += [p for p in sorted((src / "static").glob("*.v"))     # its library modules in use
              if re.search(rf"\b{p.stem}\b", used)]
    latency = len(re.findall(r"<=", top))
    return comb, {"seconds": cpu, "wall_seconds": seconds, "latency": latency, "files": files, "module": "peer",
                  "in_bits": ports["model_inp"], "out_bits": ports["model_out"],
                  "reg_bits": json.loads((Path(outdir) / "metadata.json").read_text())
                  .get("reg_bits")}


def da4ml_core(info):
    """The da4ml module as a stream component (a valid shift register beside it; it cannot
    stall, so ``i.ready`` is ``o.ready``-independent 1) for the measurement top."""
    from amaranth.hdl import Cat, ClockSignal, Instance, Module, Signal, unsigned
    from amaranth.lib import stream, wiring
    from amaranth.lib.wiring import In, Out

    class DA4MLCore(wiring.Component):
        def __init__(self):
            super().__init__({"i": In(stream.Signature(unsigned(info["in_bits"]))),
                              "o": Out(stream.Signature(unsigned(info["out_bits"])))})

        def elaborate(self, platform):
            m = Module()
            valid = Signal(info["latency"])
            m.d.sync += valid.eq(Cat(self.i.valid, valid[:-1]))
            m.d.comb += [self.i.ready.eq(1), self.o.valid.eq(valid[-1])]
            m.submodules.da = Instance(info["module"], i_clk=ClockSignal(),
                                       i_model_inp=self.i.payload, o_model_out=self.o.payload)
            if platform is not None:
                for f in info["files"]:
                    platform.add_file(f.name, f.read_text())
            return m
    return DA4MLCore()


# -- report ----------------------------------------------------------------------------------

def top_estimate(graph):
    """LUTs and FFs of the measurement top around a core of ``graph``'s ports (its shift
    registers: ``w_in + 2 + w_out`` FFs, ``w_out`` LUTs), added to the core's estimate before
    it is compared with nextpnr."""
    w_in = int(np.prod(graph.input.shape)) * graph.input.dtype.bits
    w_out = int(np.prod(graph.output.shape)) * graph.output.dtype.bits
    return {"luts": w_out, "ffs": w_in + 2 + w_out}


def estimate_error(est, rep):
    """Per resource ``100 * (estimate - nextpnr) / nextpnr`` (None where unmeasured)."""
    out = {}
    for k in ("luts", "ffs"):
        if rep.get(k):
            out[k] = round(100.0 * (est[k] - rep[k]) / rep[k], 1)
    return out


def _fmt(rep, key):
    if not rep:
        return "not built"
    if "error" in rep:
        return "failed"
    v = rep.get(key)
    if v is None:
        return "–"
    s = f"{v:,}" if isinstance(v, int) else f"{v}"
    if key == "fmax_mhz" and rep.get("timed_out"):
        when = (f" at {rep['seconds']:.0f} s wall" if rep.get("seconds") else "")
        s = f"~{v} (placed, {rep.get('stage')} unfinished{when})"
    if key == "luts" and rep.get("fits") is False:
        s += " (does not fit)"
    return s


def markdown(res):
    m = res["machine"]
    lines = [f"# Side by side with peers ({res['date']})", "",
             f"Machine: {m['cpu']} ({m['cores']} cores, shared), Python {m['python']}. "
             f"Reproduce: `python bench/peers.py` (build timeout {res['timeout']} s).", ""]
    for kind, mres in res["models"].items():
        lines += [f"## {kind}: {mres['desc']}", "",
                  "| design | iCE40UP5K LCs | ECP5-85F LUTs | FFs (ECP5) | Fmax ECP5 (MHz) | "
                  "Fmax iCE40 (MHz) | RTL gen (CPU s) | cosim |",
                  "|---|---|---|---|---|---|---|---|"]
        for d in mres["designs"]:
            b = d.get("builds", {})
            ice, ecp = b.get("icebreaker"), b.get("ulx3s-85f")
            cos = d.get("cosim")
            cs = ("–" if cos is None else
                  f"{cos['mismatches']} mismatches / {cos['vectors']:,}")
            lines.append(f"| {d['name']} | {_fmt(ice, 'luts')} | {_fmt(ecp, 'luts')} | "
                         f"{_fmt(ecp, 'ffs')} | {_fmt(ecp, 'fmax_mhz')} | "
                         f"{_fmt(ice, 'fmax_mhz') if ice and ice.get('fits') else '–'} | "
                         f"{d['rtl_seconds']:.2f} | {cs} |")
        for (k, name), r in RECORDED.items():
            if k == kind:
                lines.append(f"| {name} (recorded in issue 17 on its own random weights, not "
                             f"rerun) | {r.get('ice40_luts', '–')} | "
                             f"{r.get('ecp5_luts', '–')} | {r.get('ffs', '–')} | "
                             f"{r.get('ecp5_fmax', '–')} | – | {r.get('rtl_seconds', '–')} | "
                             f"{r.get('note', '')} |")
        lines += ["", "A `~` Fmax is nextpnr's estimate after placement: the build was stopped in "
                  "routing (its step is named). FFs: nextpnr's TRELLIS_FF count (the iCE40 "
                  "column's own FFs are in peers.json).", ""]
        errs = [(d["name"], bd, e) for d in mres["designs"] if "estimate_error" in d
                for bd, e in d["estimate_error"].items()]
        if errs:
            lines += ["Estimate vs nextpnr (ddnhw's resource model, % error):", ""]
            lines += [f"- {n} on {bd}: " + ", ".join(f"{k} {v:+.1f} %" for k, v in e.items())
                      for n, bd, e in errs]
            lines.append("")
    if res.get("goals"):
        lines += ["## Goals (issue 17)", ""] + [f"- {g}" for g in res["goals"]] + [""]
    return "\n".join(lines)


def goals(res):
    """The issue's goal 1 checks on the small model, stated from the measurements."""
    out = []
    small = res["models"].get("small")
    if not small:
        return out
    da = next((d for d in small["designs"] if d["name"].startswith("da4ml")), None)
    ref = {"ice40": 25710, "ecp5": 29154, "ffs": 4761, "fmax": 46.0}
    src = "recorded"
    if da and da.get("builds"):
        b = da["builds"]
        src = "measured in this run"
        ref = {"ice40": (b.get("icebreaker") or {}).get("luts") or ref["ice40"],
               "ecp5": (b.get("ulx3s-85f") or {}).get("luts") or ref["ecp5"],
               "ffs": (b.get("ulx3s-85f") or {}).get("ffs") or ref["ffs"],
               "fmax": (b.get("ulx3s-85f") or {}).get("fmax_mhz") or ref["fmax"]}
    for d in small["designs"]:
        if d["name"].startswith("da4ml") or not d.get("builds"):
            continue
        b = d["builds"]
        ice, ecp = b.get("icebreaker") or {}, b.get("ulx3s-85f") or {}
        parts = []
        if ice.get("luts"):
            parts.append(f"iCE40 LCs {ice['luts'] / ref['ice40']:.2f}x da4ml's "
                         f"({'met' if ice['luts'] <= 0.8 * ref['ice40'] else 'NOT met'}: <= 0.8x)")
        if ecp.get("luts"):
            parts.append(f"ECP5 LUTs {ecp['luts'] / ref['ecp5']:.2f}x "
                         f"({'met' if ecp['luts'] <= 0.8 * ref['ecp5'] else 'NOT met'})")
        if ecp.get("ffs") and ecp.get("fmax_mhz"):
            ok = ecp["ffs"] <= ref["ffs"] and ecp["fmax_mhz"] >= ref["fmax"]
            parts.append(f"FFs {ecp['ffs']} vs {ref['ffs']} at {ecp['fmax_mhz']} vs "
                         f"{ref['fmax']} MHz ({'met' if ok else 'NOT met'})")
        if ecp:
            routed = not ecp.get("timed_out") and ecp.get("fmax_mhz") is not None
            ok = routed and ecp["fmax_mhz"] >= 100 and (ecp.get("seconds") or 1e9) < 600
            parts.append(f"ECP5 routed in < 10 min at >= 100 MHz: {'met' if ok else 'NOT met'} "
                         f"({'routed' if routed else ecp.get('stage', 'not built')}, "
                         f"{ecp.get('fmax_mhz')} MHz, {ecp.get('seconds')} s)")
        out.append(f"{d['name']} (da4ml {src}): " + "; ".join(parts))
    for kind, mres in res["models"].items():
        for d in mres["designs"]:
            if d["name"].startswith("ddnhw"):
                lim = 1.0 if kind == "small" else None
                if lim:
                    out.append(f"{d['name']}: RTL generation {d['rtl_seconds']:.2f} s "
                               f"({'met' if d['rtl_seconds'] < lim else 'NOT met'}: < 1 s)")
    return out


def main(argv=None):
    p = bench_parser(__doc__, "build/peers")
    p.add_argument("--models", default="small,large")
    p.add_argument("--designs", default="lean,fast,da4ml",
                   help="ddnhw configurations (lean, fast) and/or da4ml")
    p.add_argument("--boards", default="icebreaker,ulx3s-85f")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--vectors", type=int, default=20000)
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--tag", default="", help="write peers_TAG.json only (a part of a run)")
    p.add_argument("--merge", default="",
                   help="comma-separated tags: merge their parts into peers.json/.md")
    p.add_argument("--collect", action="append", default=[],
                   help="with --merge: KIND:DESIGN:BOARD=DIR, a build stopped from outside: "
                        "its numbers from the logs in DIR")
    a = p.parse_args(argv)
    work, out = bench_dirs(a)
    from run import machine
    res = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": machine(), "timeout": a.timeout, "models": {}}
    if a.merge:
        for tag in a.merge.split(","):
            part = json.loads((out / f"peers_{tag}.json").read_text())
            res["timeout"] = max(res["timeout"] if res["models"] else 0, part["timeout"])
            for kind, m in part["models"].items():
                res["models"].setdefault(kind, {"desc": m["desc"], "designs": []})
                for d in m["designs"]:
                    if "regs_every" in d and "dense_features" not in d:
                        d["dense_features"] = {f: dense_features(peer_model(kind),
                                                                 d["regs_every"], f)
                                               for f in ("ice40", "ecp5")}
                res["models"][kind]["designs"] += m["designs"]
        for spec in a.collect:
            key, _, d = spec.partition("=")
            kind, design, board = key.split(":")
            rep = report_from_logs(d)
            for dd in res["models"].get(kind, {}).get("designs", []):
                if dd["name"].split()[1] == design.split()[0] or dd["name"].startswith(design):
                    if rep is not None:
                        rep["note"] = "stopped from outside; numbers from the logs"
                        dd["builds"][board] = rep
        for kind, m in res["models"].items():
            for d in m["designs"]:
                f = d.get("dense_features")
                for board, rep in d.get("builds", {}).items():
                    fam = "ice40" if board == "icebreaker" else "ecp5"
                    if "regs_every" in d and rep.get("luts"):
                        from ddnhw.lower import plan_network
                        from ddnhw.hw.family import Budget
                        from ddnhw.passes.fold import select
                        g, _ = select(peer_model(kind), Budget(fam), "none")
                        net = plan_network(g, family=fam, regs_every=d["regs_every"])
                        top = top_estimate(g)
                        est = {k: sum(x["estimate"].get(k, 0) for x in net.layers) + top[k]
                               for k in ("luts", "ffs")}
                        rep["estimate"] = est
                        d.setdefault("estimate_error", {})[board] = estimate_error(est, rep)
        res["goals"] = goals(res)
        (out / "peers.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
        (out / "peers.md").write_text(markdown(res) + "\n")
        print(markdown(res))
        return
    result = out / (f"peers_{a.tag}.json" if a.tag else "peers.json")
    designs_wanted = [d for d in a.designs.split(",") if d]
    boards = [b for b in a.boards.split(",") if b]
    for kind in [k for k in a.models.split(",") if k]:
        graph = peer_model(kind)
        sizes, it, wb, ab = MODELS[kind]
        desc = (f"{'-'.join(map(str, sizes))} MLP, {it.bits}-bit "
                f"{'signed' if it.signed else 'unsigned'} inputs, {wb}-bit weights, {ab}-bit "
                f"unsigned activations, floor + saturate")
        designs = []
        res["models"][kind] = {"desc": desc, "designs": designs}
        for cfg in [c for c in designs_wanted if c in CONFIGS]:
            designs.append(run_ddnhw(graph, kind, cfg, boards, work, a))
            result.write_text(json.dumps(res, indent=1, default=str) + "\n")
        if "da4ml" in designs_wanted:
            if da4ml_available():
                designs.append(run_da4ml(graph, kind, boards, work, a, res, result))
            else:
                print("da4ml is not installed (pip install da4ml): its recorded numbers are "
                      "shown", flush=True)
        result.write_text(json.dumps(res, indent=1, default=str) + "\n")
    res["goals"] = goals(res)
    result.write_text(json.dumps(res, indent=1, default=str) + "\n")
    if not a.tag:
        (out / "peers.md").write_text(markdown(res) + "\n")
    print(markdown(res))


def run_ddnhw(graph, kind, cfg, boards, work, a):
    """One ddnhw configuration of a peer model: generate, cosimulate, build per board."""
    from ddnhw.board import get_board
    from ddnhw.lower import build_network, plan_network
    L = CONFIGS[cfg]
    d = {"name": f"ddnhw {cfg} (register every {L} adder levels)", "regs_every": L,
         "builds": {}, "estimate_error": {},
         "dense_features": {f: dense_features(graph, L, f) for f in ("ice40", "ecp5")}}
    rtl = work / f"{kind}_{cfg}" / "rtl"
    g, man, sec, cpu = ddnhw_generate(graph, rtl, L, "ecp5")
    d.update(rtl_seconds=cpu, rtl_wall_seconds=sec, latency=man["latency_cycles"])
    print(f"[{kind} {cfg}] RTL {cpu:.2f} s CPU ({sec:.2f} s wall), latency "
          f"{man['latency_cycles']}", flush=True)
    d["cosim"] = cosim(g, rtl, a.vectors)
    print(f"[{kind} {cfg}] cosim {d['cosim']}", flush=True)
    if d["cosim"]["mismatches"] or a.no_build:
        return d              # a design that is not exact is never built or reported
    for board in boards:
        fam = get_board(board).family
        net = plan_network(g, family=fam, regs_every=L)
        top = top_estimate(g)
        est = {k: sum(x["estimate"].get(k, 0) for x in net.layers) + top[k]
               for k in ("luts", "ffs")}
        core = build_network(g, family=fam, regs_every=L)
        rep = board_build(core, board, work / f"{kind}_{cfg}" / board, a.timeout)
        rep["estimate"] = est
        d["builds"][board] = rep
        if rep.get("luts"):
            d["estimate_error"][board] = estimate_error(est, rep)
        print(f"[{kind} {cfg}] {board}: {rep}; estimate {est} error "
              f"{d['estimate_error'].get(board)}", flush=True)
    return d


def run_da4ml(graph, kind, boards, work, a, res, result):
    """da4ml's design of a peer model: RTL, its emulator against the golden model, builds."""
    dd = work / f"{kind}_da4ml"
    comb, info = da4ml_design(graph, dd)
    x = flow.random_vectors(graph, a.vectors, seed=3)
    y = comb.predict(x.astype(np.float64))
    bad = int(np.sum(np.any(y != golden.run(graph, x), axis=1)))
    d = {"name": "da4ml 0.6 (latency cutoff 4)", "rtl_seconds": info["seconds"],
         "rtl_wall_seconds": info["wall_seconds"], "latency": info["latency"],
         "reg_bits": info["reg_bits"], "builds": {},
         "cosim": {"vectors": len(x), "mismatches": bad,
                   "note": "da4ml's own emulator vs ddnhw's golden model"}}
    print(f"[{kind} da4ml] RTL {info['seconds']:.2f} s CPU, emulator mismatches {bad}",
          flush=True)
    if a.no_build or bad:
        return d
    for board in boards:
        rep = board_build(da4ml_core(info), board, dd / board, a.timeout)
        d["builds"][board] = rep
        print(f"[{kind} da4ml] {board}: {rep}", flush=True)
    return d


if __name__ == "__main__":
    main()
