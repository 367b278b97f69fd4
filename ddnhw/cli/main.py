"""``ddnhw``: train, generate RTL, cosimulate and synthesize quantized networks."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ddnhw import DdnhwError, __version__


class Progress:
    """Step-by-step progress lines on stderr: ``[2/5] generating RTL ... 1.2 s``."""

    def __init__(self, total, quiet=False):
        self.total, self.k, self.quiet = total, 0, quiet
        self.t0 = None

    def step(self, what):
        self.done()
        self.k += 1
        self.t0 = time.perf_counter()
        self.log(f"[{self.k}/{self.total}] {what} ...")

    def done(self, extra=""):
        if self.t0 is not None:
            self.log(f"      done in {time.perf_counter() - self.t0:.1f} s{extra}")
            self.t0 = None

    def log(self, msg):
        if not self.quiet:
            print(msg, file=sys.stderr, flush=True)


DEMO_OUT = "out/demo"
SEQ_MODELS = ("gru", "gru-signal", "rnn")


def _fmt(v, pct=False):
    if v is None:
        return "n/a"
    if pct:
        return f"{100 * v:.2f} %"
    if isinstance(v, float):
        return f"{v:,.2f}" if v < 1e4 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _vectors(graph, spec, seed):
    from ddnhw import flow
    if spec == "test":
        return flow.digits_test_vectors(graph)[0]
    if spec.startswith("random:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            raise DdnhwError(f"--vectors {spec!r}: expected random:N with an integer N") from None
        return flow.random_vectors(graph, n, seed)
    p = Path(spec)
    if p.suffix == ".npy":
        import numpy as np
        from ddnhw import golden
        try:
            x = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DdnhwError(f"{p}: cannot read input vectors: {e}") from None
        shape = graph.input.shape
        if x.ndim == 0 or x.size != len(x) * int(np.prod(shape)):
            raise DdnhwError(f"{p}: input vectors have shape {x.shape}, the model takes "
                             f"(N, {', '.join(map(str, shape))})")
        return golden.check_input(graph, x.reshape((len(x),) + shape))
    raise DdnhwError(f"--vectors {spec!r}: use 'test', 'random:N' or a .npy file")


# -- commands ------------------------------------------------------------------------------------

def cmd_train(a):
    from ddnhw import flow
    out = Path(a.out)
    flow.ensure_writable_dir(out.parent if out.parent != Path("") else Path("."))
    prog = Progress(1, a.quiet)
    prog.step(f"training a 64-{a.hidden}-10 MLP on digits ({a.bits}-bit)")
    graph, m = flow.train_digits(hidden=a.hidden, bits=a.bits, prune=a.prune,
                                 float_epochs=a.epochs, qat_epochs=a.epochs, seed=a.seed,
                                 log=None if a.quiet else prog.log)
    flow.save_graph(graph, out)
    prog.done()
    print(f"float accuracy {m['float_accuracy']:.4f}, quantized accuracy {m['quant_accuracy']:.4f}"
          f"; model written to {out}")
    return 0


def cmd_generate(a):
    from ddnhw import flow
    graph = flow.load_model(a.model)
    man = flow.generate(graph, a.out, name=a.name, board=a.board, target_ii=a.target_ii,
                        max_luts=a.max_luts)
    for layer in man["layers"]:
        if "pe" in layer:
            how = f"pe {layer['pe']} simd {layer['simd']}" if layer["folded"] else "unrolled"
            print(f"{layer['name']}: {how}, II {layer['ii']}")
    print(f"wrote {Path(a.out) / man['verilog']} and {Path(a.out) / 'manifest.json'} "
          f"(latency {man['latency_cycles']} cycles, II {man['ii_cycles']})")
    return 0


def cmd_cosim(a):
    from ddnhw import flow
    graph = flow.load_model(a.model)
    rtl = Path(a.rtl) if a.rtl else None
    if rtl is None:
        rtl = Path(a.out)
        flow.generate(graph, rtl)
    x = _vectors(graph, a.vectors, a.seed)
    rc = 0
    for simulator in a.simulator.split(","):
        res, _ = flow.cosim(graph, rtl, x, simulator=simulator, mode=a.mode, seed=a.seed,
                            idle_prob=a.idle, stall_prob=a.stall)
        print(f"{simulator}: {len(x)} vectors, {res.mismatches} mismatches vs golden, "
              f"{res.cycles} cycles, {len(x) / max(res.seconds_run, 1e-9):,.0f} vectors/s")
        if res.mismatches:
            print(f"  {res.message}")
            rc = 1
    return rc


def cmd_build(a):
    from ddnhw import flow
    graph = flow.load_model(a.model)
    out = Path(a.out) / a.board
    rep = flow.build(graph, a.board, out, allow_timing_failure=a.allow_timing_failure,
                     top=a.top, baud=a.baud, toolchain=a.toolchain, folding=a.folding,
                     target_ii=a.target_ii, max_luts=a.max_luts)
    fold = rep.get("folding", {})
    for layer in fold.get("layers", []):
        if "pe" in layer:
            how = f"pe {layer['pe']} simd {layer['simd']}" if layer["folded"] else "unrolled"
            print(f"{layer['name']}: {how}, II {layer['ii']}")
    print(f"folding {fold.get('mode')}: II {rep['ii_cycles']} cycles, latency "
          f"{rep['latency_cycles']} cycles")
    print(f"{a.board} ({a.top} top): {rep['luts']} LUTs, {rep['ffs']} FFs, {rep['dsps']} DSPs, "
          f"{rep['brams']} BRAMs, Fmax {rep['fmax_mhz']:.1f} MHz (target {rep['clock_mhz']} MHz,"
          f" {'met' if rep['timing_met'] else 'MISSED'}); bitstream {rep['bitstream']}")
    return 0


def cmd_flash(a):
    from ddnhw.board import get_board
    from ddnhw.board.flash import BITSTREAM_EXT, flash
    profile = get_board(a.board)
    bitstream = a.bitstream or (Path(a.out) / a.board /
                                f"ddnhw_top.{BITSTREAM_EXT[profile.family]}")
    res = flash(profile, bitstream, mode=a.mode)
    print(f"{a.board}: loaded {bitstream} ({a.mode or profile.loader_modes[0]}) with: "
          f"{' '.join(res['command'])}")
    return 0


def cmd_run(a):
    from ddnhw import flow
    from ddnhw.host import Link, run_and_check
    graph = flow.load_model(a.model)
    x = _vectors(graph, a.inputs, 0)
    with Link(a.port, baud=a.baud, timeout=a.timeout, retries=a.retries,
              window=a.window) as link:
        rep = run_and_check(link, graph, x, check_ident=not a.no_check)
    print(rep.summary())
    if a.json:
        flow.write_json_atomic(Path(a.json), {
            "n": rep.n, "mismatches": rep.mismatches, "seconds": rep.seconds,
            "vectors_per_s": rep.vectors_per_second,
            "latency_median_ms": 1e3 * float(__import__("numpy").median(rep.latency_s)),
            "stats": rep.stats})
    return 1 if rep.mismatches else 0


def cmd_boards(a):
    from ddnhw.board import get_board, list_boards
    for name in list_boards():
        b = get_board(name)
        budget = ", ".join(f"{k} {v}" for k, v in b.budget.items())
        print(f"{b.name:15s} {b.device:18s} {b.clock_mhz:5.1f} MHz  {budget}")
    return 0


def _cosim_simulator(choice):
    """``--cosim auto``: Verilator when installed, else none."""
    if choice != "auto":
        return choice
    from ddnhw.host.cosim import check_simulator
    try:
        check_simulator("verilator")
        return "verilator"
    except DdnhwError:
        return "none"


def _board_rows(reports, rate):
    rows = []
    for b, r in reports.items():
        rows += [(f"{b}: LUTs / FFs / DSPs / BRAMs",
                  f"{r['luts']} / {r['ffs']} / {r['dsps']} / {r['brams']}"),
                 (f"{b}: Fmax vs board clock",
                  f"{_fmt(r['fmax_mhz'])} MHz vs {r['clock_mhz']} MHz "
                  f"({'met' if r['timing_met'] else 'MISSED'})"),
                 (f"{b}: {rate} at Fmax", _fmt(r.get("inferences_per_s")))]
    return rows


def _print_rows(rows, out):
    w = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k:<{w}}  {v}")
    print(f"\noutputs (model, Verilog, manifest, reports) in {out}")


def cmd_demo_cnn(a):
    import numpy as np
    from ddnhw import cnn_demo, flow

    out = flow.ensure_writable_dir(a.out)
    cosim_sim = _cosim_simulator(a.cosim)
    boards = [] if a.no_synth else [b for b in a.boards.split(",") if b]
    prog = Progress(3 + (cosim_sim != "none") + len(boards), a.quiet)
    log = None if a.quiet else prog.log
    if a.model == "cnn1d":
        from ddnhw import signal_demo
        prog.step(f"training a 1-D CNN (conv1d 5 x8 /2, conv1d 3 x8 /2, maxpool1d 2, dense 3) "
                  f"on generated sine/square/sawtooth signals, {a.bits}-bit QAT")
        graph, m = signal_demo.train_signal_cnn(bits=a.bits, float_epochs=a.cnn_epochs,
                                                qat_epochs=a.cnn_epochs, seed=a.seed, log=log)
        m.pop("model")
    else:
        prog.step(f"training a digits CNN (conv 3x3 x{a.channels}, maxpool 2, dense 10), "
                  f"{a.bits}-bit QAT")
        graph, m = cnn_demo.train_digits_cnn(channels=a.channels, bits=a.bits,
                                             float_epochs=a.cnn_epochs, qat_epochs=a.cnn_epochs,
                                             seed=a.seed, log=log)
    flow.save_graph(graph, out / "model.npz")
    prog.done(f": float {m['float_accuracy']:.4f}, quantized {m['golden_accuracy']:.4f}")
    prog.step("generating RTL (Amaranth → Verilog; pixels in, logits out)")
    man = cnn_demo.generate_cnn(graph, out / "rtl")
    if a.model == "cnn1d":
        x_all, y = signal_demo.signal_inputs(graph, seed=a.seed)
    else:
        x_all, y = cnn_demo.digits_images(graph)
    x = x_all[:a.sim_images]
    prog.step(f"Amaranth simulation of {len(x)} test images under random idle/backpressure")
    r = cnn_demo.sim_check(graph, x, seed=a.seed)
    prog.done()
    cos = None
    if cosim_sim != "none":
        xc = np.concatenate([x_all, cnn_demo.random_images(graph, a.cosim_random, seed=a.seed)])
        prog.step(f"{cosim_sim} cosimulation of {len(x_all)} test + {a.cosim_random} random "
                  "images under random idle/backpressure")
        cos = cnn_demo.cosim_check(graph, xc, out / "rtl", simulator=cosim_sim, seed=a.seed)
        prog.done(f": {cos['mismatches']} mismatches, {cos['cycles']} cycles")
    summary = {**m, "sim_images": len(x), "mismatches": r["mismatches"],
               "sim_accuracy": float((r["outputs"].argmax(1) == y[:len(x)]).mean()),
               "latency_cycles": man["latency_cycles"], "ii_cycles": man["ii_cycles"],
               "estimate": man["estimate"], "output_dir": str(out.resolve())}
    if cos is not None:
        summary.update(cosim_simulator=cosim_sim, cosim_images=len(xc),
                       cosim_mismatches=cos["mismatches"], cosim_cycles=cos["cycles"],
                       cosim_accuracy=float((cos["outputs"][:len(x_all)].argmax(1) == y).mean()))
        summary["mismatches"] += cos["mismatches"]
    reports = {}
    for b in boards:
        plan = flow.choose_folding(graph, b)
        fold = plan["folding"]
        prog.step(f"synthesizing for {b} ({'unrolled' if fold is None else f'folded {fold}'}"
                  f"; Yosys + nextpnr)")
        if fold is not None and cos is not None:
            # the folded design is another circuit: cosimulate it before building it
            flow_rtl = out / "rtl" / f"folded-{b}"
            cnn_demo.generate_cnn(graph, flow_rtl, folding=fold)
            fc = cnn_demo.cosim_check(graph, xc, flow_rtl, simulator=cosim_sim, seed=a.seed)
            summary["mismatches"] += fc["mismatches"]
            summary.setdefault("folded_cosim", {})[b] = {"images": len(xc),
                                                         "mismatches": fc["mismatches"]}
        reports[b] = flow.build(graph, b, out / "build" / b, allow_timing_failure=True,
                                folding="none" if fold is None else fold)
        prog.done(f": {reports[b]['luts']} LUTs, {reports[b]['fmax_mhz']:.1f} MHz")
    summary["boards"] = reports
    flow.write_json_atomic(out / "summary.json", summary)
    if a.json:
        flow.write_json_atomic(Path(a.json), summary)
    for k in ("float_accuracy", "golden_accuracy", "sim_accuracy", "cosim_accuracy",
              "cosim_images", "mismatches", "ii_cycles"):
        if k in summary:
            print(f"  {k:<16}  {summary[k]}")
    for k, v in _board_rows(reports, "inferences/s"):
        print(f"  {k}  {v}")
    return 0 if summary["mismatches"] == 0 else 1


def cmd_demo_seq(a):
    from ddnhw import seq_demo

    cosim_sim = _cosim_simulator(a.cosim)
    boards = [] if a.no_synth else [b for b in a.boards.split(",") if b]
    out = a.out if a.out != DEMO_OUT else f"{DEMO_OUT}-{a.model}"
    prog = Progress(2 + (a.seq_sim_images > 0) + (cosim_sim != "none") + len(boards), a.quiet)
    s = seq_demo.run_seq_demo(a.model, out, hidden=a.hidden, bits=a.bits, epochs=a.seq_epochs,
                              seed=a.seed, sim_images=a.seq_sim_images, cosim=cosim_sim,
                              cosim_random=a.cosim_random, boards=boards, progress=prog)
    if a.json:
        from ddnhw import flow
        flow.write_json_atomic(Path(a.json), s)
    rows = [("float accuracy", _fmt(s["float_accuracy"], True)),
            ("quantized accuracy (golden)", _fmt(s["golden_accuracy"], True)),
            ("integer-mode PyTorch vs golden", f"{s['int_mode_mismatches']} of "
                                               f"{s['int_mode_vectors']} differ")]
    if "sim_images" in s:
        rows.append(("Amaranth sim vs golden", f"{s['sim_mismatches']} of {s['sim_images']} "
                                               "differ"))
    if "cosim_images" in s:
        rows += [(f"RTL accuracy ({s['cosim_simulator']} cosim)", _fmt(s["cosim_accuracy"], True)),
                 ("RTL vs golden mismatches", f"{s['cosim_mismatches']} of "
                                              f"{s['cosim_images']} sequences")]
    rows += [("folding (pe, simd)", str(s["folding"])),
             ("latency / II", f"{s['latency_cycles']} / {s['ii_cycles']} cycles")]
    rows += _board_rows(s["boards"], "sequences/s")
    _print_rows(rows, s["output_dir"])
    return 0 if s["mismatches"] == 0 else 1


def cmd_demo(a):
    import numpy as np
    from ddnhw import flow

    if getattr(a, "model", "mlp") in ("cnn", "cnn1d"):
        return cmd_demo_cnn(a)
    if getattr(a, "model", "mlp") in SEQ_MODELS:
        return cmd_demo_seq(a)
    out = flow.ensure_writable_dir(a.out)
    boards = [] if a.no_synth else [b for b in a.boards.split(",") if b]
    prog = Progress(3 + len(boards), a.quiet)
    prog.step(f"training a 64-{a.hidden}-10 MLP on scikit-learn digits, {a.bits}-bit QAT")
    graph, m = flow.train_digits(hidden=a.hidden, bits=a.bits, prune=a.prune,
                                 float_epochs=a.epochs, qat_epochs=a.epochs, seed=a.seed,
                                 log=None if a.quiet else prog.log)
    flow.save_graph(graph, out / "model.npz")
    prog.done(f": float {m['float_accuracy']:.4f}, quantized {m['quant_accuracy']:.4f}")

    prog.step("generating RTL (Amaranth → Verilog)")
    t = time.perf_counter()
    man = flow.generate(graph, out / "rtl")
    gen_s = time.perf_counter() - t

    x, y = flow.digits_test_vectors(graph)
    xr = flow.random_vectors(graph, a.random, a.seed) if a.random else x[:0]
    # one run (one simulator build) for the test split and the random vectors
    prog.step(f"cosimulating {len(x)} test + {len(xr)} random vectors (extremes included) on "
              f"{a.simulator} under random idle cycles and backpressure")
    res, expected = flow.cosim(graph, out / "rtl", np.concatenate([x, xr]),
                               simulator=a.simulator, seed=a.seed, build_dir=out / "sim")
    rtl_acc = float(np.mean(np.argmax(res.outputs[:len(x)], axis=1) == y))
    vectors, mismatches = len(res.outputs), res.mismatches
    if mismatches:
        prog.log(f"      RTL differs from golden: {res.message}")
    reports = {}
    for b in boards:
        prog.step(f"synthesizing for {b} (yosys + nextpnr)")
        reports[b] = flow.build(graph, b, out / "build" / b, allow_timing_failure=True)
    prog.done()

    summary = {
        "float_accuracy": m["float_accuracy"], "quant_accuracy": m["quant_accuracy"],
        "rtl_accuracy": rtl_acc, "mismatches": int(mismatches), "vectors_checked": int(vectors),
        "simulator": a.simulator, "model": {"sizes": m["sizes"], "bits": m["bits"],
                                           "prune": m["prune"]},
        "latency_cycles": man["latency_cycles"], "ii_cycles": man["ii_cycles"],
        "generate_seconds": gen_s, "output_dir": str(out.resolve()),
        "boards": reports,
    }
    first = reports[boards[0]] if boards else {}
    summary.update({"board": boards[0] if boards else None,
                    **{k: first.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz",
                                                 "clock_mhz", "timing_met")}})
    summary["inferences_per_s"] = (first["fmax_mhz"] * 1e6 / man["ii_cycles"]
                                   if first.get("fmax_mhz") else None)
    flow.write_json_atomic(out / "summary.json", summary)
    if a.json:
        flow.write_json_atomic(Path(a.json), summary)

    rows = [("float accuracy", _fmt(m["float_accuracy"], True)),
            ("quantized accuracy (golden)", _fmt(m["quant_accuracy"], True)),
            (f"RTL accuracy ({a.simulator} cosim)", _fmt(rtl_acc, True)),
            ("RTL vs golden mismatches", f"{mismatches} of {vectors} vectors"),
            ("latency", f"{man['latency_cycles']} cycles"),
            ("initiation interval", f"{man['ii_cycles']} cycle(s)")]
    rows += _board_rows(reports, "inferences/s")
    _print_rows(rows, out.resolve())
    return 0 if mismatches == 0 else 1


# -- parser -------------------------------------------------------------------------------------

def _parser():
    p = argparse.ArgumentParser(prog="ddnhw", description=__doc__)
    p.add_argument("--version", action="version", version=f"ddnhw {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def common_train(s):
        s.add_argument("--hidden", type=int, default=16, help="hidden neurons (default 16)")
        s.add_argument("--bits", type=int, default=4,
                       help="bits of inputs, weights and activations (2..8, default 4)")
        s.add_argument("--prune", type=float, default=0.5,
                       help="fraction of first-layer weights pruned to zero (default 0.5)")
        s.add_argument("--epochs", type=int, default=120, help="epochs of float and of QAT")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("-q", "--quiet", action="store_true")

    s = sub.add_parser("demo", help="train, generate, cosimulate and synthesize the digits MLP")
    common_train(s)
    s.add_argument("--out", default=DEMO_OUT, help="output folder (default out/demo; "
                   "out/demo-MODEL for the recurrent models)")
    s.add_argument("--json", help="also write the summary table as one JSON object here")
    s.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    s.add_argument("--random", type=int, default=10000,
                   help="random input vectors cosimulated besides the test split (default 10000)")
    s.add_argument("--boards", default="icebreaker",
                   help="comma-separated boards to synthesize for (default icebreaker)")
    s.add_argument("--no-synth", action="store_true", help="skip synthesis")
    s.add_argument("--model", default="mlp", choices=["mlp", "cnn", "cnn1d", *SEQ_MODELS],
                   help="mlp (default), cnn: the digits CNN, cnn1d: a 1-D CNN on generated "
                        "signals (train, RTL, Amaranth-sim check, RTL cosim); gru: a GRU on the "
                        "digits rows, gru-signal: a GRU on the generated signals, rnn: an Elman "
                        "RNN on the digits rows (train, RTL, sim, cosim, synthesis)")
    s.add_argument("--channels", type=int, default=8, help="cnn: conv channels (default 8)")
    s.add_argument("--cnn-epochs", type=int, default=40, help="cnn: epochs of float and QAT")
    s.add_argument("--sim-images", type=int, default=100,
                   help="cnn: test images simulated in the Amaranth simulator (default 100)")
    s.add_argument("--cosim", default="auto", choices=["auto", "verilator", "icarus", "none"],
                   help="cnn: RTL cosimulation of the whole test split + random images "
                        "(auto: Verilator when installed)")
    s.add_argument("--cosim-random", type=int, default=40,
                   help="cnn: random images (incl. extremes) cosimulated besides the test split")
    s.add_argument("--seq-epochs", type=int, default=None,
                   help="gru/rnn: epochs of float and QAT (default: the example's, 20)")
    s.add_argument("--seq-sim-images", type=int, default=4,
                   help="gru/rnn: test sequences run in the Amaranth simulator (default 4)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("train", help="train the digits MLP with QAT and write the model file")
    common_train(s)
    s.add_argument("--out", default="model.npz", help="model file to write (default model.npz)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("generate", help="generate Verilog and a manifest from a model file")
    s.add_argument("model", help="model file (.npz from `ddnhw train`)")
    s.add_argument("--out", default="out/rtl", help="output folder (default out/rtl)")
    s.add_argument("--name", default="ddnhw_top", help="top module name")
    s.add_argument("--board", help="fold the layers to fit this board (highest throughput)")
    s.add_argument("--target-ii", type=int, help="fold to at most N cycles per inference")
    s.add_argument("--max-luts", type=int, help="fold to fit N LUTs (less a 15%% margin)")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("cosim", help="cosimulate the RTL against the golden model (cocotb)")
    s.add_argument("model", help="model file (.npz)")
    s.add_argument("--rtl", help="folder from `ddnhw generate` (default: generate into --out)")
    s.add_argument("--out", default="out/rtl")
    s.add_argument("--vectors", default="test",
                   help="'test' (digits test split), 'random:N', or a .npy file of input codes")
    s.add_argument("--simulator", default="verilator",
                   help="verilator, icarus, or both comma-separated")
    s.add_argument("--mode", default="bulk", choices=["bulk", "bfm"],
                   help="bulk: HDL harness streams the vectors (fast); bfm: cocotb Python BFMs")
    s.add_argument("--idle", type=float, default=0.3, help="probability of an idle input cycle")
    s.add_argument("--stall", type=float, default=0.3, help="probability of output backpressure")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_cosim)

    s = sub.add_parser("build", help="synthesize, place and route for a board (Yosys + nextpnr)")
    s.add_argument("model", help="model file (.npz)")
    s.add_argument("--board", default="icebreaker", help="board name (see `ddnhw boards`)")
    s.add_argument("--out", default="out/build")
    s.add_argument("--allow-timing-failure", action="store_true",
                   help="keep going when Fmax is below the board clock")
    s.add_argument("--top", default="uart", choices=["uart", "measure"],
                   help="uart: the core behind the UART link, for the board (default); "
                        "measure: a shim to measure the core alone")
    s.add_argument("--baud", type=int, default=115200, help="UART baud rate (default 115200)")
    s.add_argument("--toolchain", default="yowasp", choices=["yowasp", "system"],
                   help="yowasp (pip, default) or the system's yosys/nextpnr")
    s.add_argument("--folding", default="auto", choices=["auto", "none"],
                   help="auto (default): fold the layers to fit the board when the fully "
                        "unrolled network does not (highest throughput); none: fully unrolled")
    s.add_argument("--target-ii", type=int, help="fold to at most N cycles per inference")
    s.add_argument("--max-luts", type=int, help="fold to fit N LUTs (less a 15%% margin)")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("flash", help="load a bitstream onto a board with openFPGALoader")
    s.add_argument("--board", required=True, help="board name (see `ddnhw boards`)")
    s.add_argument("--bitstream", help="bitstream file (default: <out>/<board>/ddnhw_top.bin|bit)")
    s.add_argument("--out", default="out/build", help="`ddnhw build --out` folder")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--sram", dest="mode", action="store_const", const="sram",
                   help="load into configuration SRAM (lost at power-off)")
    g.add_argument("--flash", dest="mode", action="store_const", const="flash",
                   help="write the SPI flash (kept); the default where SRAM is not possible")
    s.set_defaults(func=cmd_flash, mode=None)

    s = sub.add_parser("run", help="run inputs on the board over UART and check every answer "
                                   "against the golden model")
    s.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
    s.add_argument("--inputs", default="test",
                   help="a .npy file of input codes (N, lanes), 'test' (digits test split) or "
                        "'random:N'")
    s.add_argument("--model", default=str(Path(__file__).resolve().parents[2] / "examples" /
                                          "digits_mlp.npz"),
                   help="model file the board was built from (default: the demo model)")
    s.add_argument("--baud", type=int, default=115200)
    s.add_argument("--timeout", type=float, default=0.5, help="reply timeout in seconds")
    s.add_argument("--retries", type=int, default=3, help="re-sends of one frame")
    s.add_argument("--window", type=int, default=4, help="frames in flight")
    s.add_argument("--no-check", action="store_true",
                   help="skip the IDENT check of the design on the board")
    s.add_argument("--json", help="write the run report here")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("boards", help="list supported boards")
    s.set_defaults(func=cmd_boards)

    from .search import add_parser as add_search
    add_search(sub)
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except DdnhwError as e:
        print(f"ddnhw {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ddnhw {args.cmd}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
