"""``ddnhw``: train, generate RTL, cosimulate and synthesize quantized networks."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ddnhw import DdnhwError, Interrupted, __version__
from ddnhw.cli import args as A

DEMO_OUT = "out/demo"
TRAIN_SETTINGS = ("hidden", "bits", "prune", "epochs")
# Modules of ddnhw.cli that add commands of their own (``add_parser(sub)``), in help order.
COMMAND_MODULES = ("search", "sweep", "energy", "qonnx", "evaluate")


def _settings(a, *names):
    """The training settings given on the command line (None: the example's default)."""
    return {k: getattr(a, k) for k in names if getattr(a, k, None) is not None}


# -- commands ------------------------------------------------------------------------------------

def cmd_train(a):
    from ddnhw import examples, flow
    prog = flow.Progress(1, a.quiet)
    prog.step(f"training {examples.get(a.model).title}")
    m = examples.train_model(a.model, a.out, settings=_settings(a, *TRAIN_SETTINGS),
                             seed=a.seed, log=None if a.quiet else prog.log)
    prog.done()
    if m.get("quant_rmse") is not None:   # a regression example: RMSEs
        print(f"float RMSE {m['float_accuracy']:.4f}, quantized RMSE {m['quant_rmse']:.4f}"
              f"; model written to {a.out}")
        return 0
    print(f"float accuracy {m['float_accuracy']:.4f}, quantized accuracy {m['quant_accuracy']:.4f}"
          f"; model written to {a.out}")
    return 0


def _objective_folding(a, graph):
    """``--objective energy``: the least-energy folding meeting ``--min-throughput`` (a
    ``{layer: (pe, simd)}`` dict or ``"none"``), written into ``a.folding``."""
    if getattr(a, "objective", "throughput") != "energy":
        return
    from ddnhw import DdnhwError
    from ddnhw.cli.energy import input_vectors
    from ddnhw.energy.objective import candidate_foldings, choose_by_energy
    if not a.board or a.min_throughput is None:
        raise DdnhwError("--objective energy needs --board and --min-throughput")
    if a.target_ii is not None or a.max_luts is not None or a.folding != "auto":
        raise DdnhwError("--objective energy chooses the folding: drop --folding, --target-ii "
                         "and --max-luts")
    candidate_foldings(graph, a.board, a.min_throughput)   # an impossible throughput: now
    x = input_vectors(graph, a.energy_inputs, 0, "--energy-inputs")
    c = choose_by_energy(graph, a.board, Path(a.out) / "energy_candidates", a.min_throughput,
                         inputs=x, log=print)
    print(f"objective energy: {c['label']} ({c['estimate']['energy_nj_per_inference']:.3f} "
          f"nJ/inference)")
    a.folding = c["folding"]


def cmd_generate(a):
    from ddnhw import flow
    graph = flow.load_model(a.model)
    _objective_folding(a, graph)
    man = flow.generate(graph, a.out, name=a.name, board=a.board, folding=a.folding,
                        target_ii=a.target_ii, max_luts=a.max_luts)
    for layer in man["layers"]:
        if "pe" in layer:
            how = f"pe {layer['pe']} simd {layer['simd']}" if layer["folded"] else "unrolled"
            print(f"{layer['name']}: {how}, II {layer['ii']}")
    print(f"folding {man['folding_mode']}: wrote {Path(a.out) / man['verilog']}, "
          f"{Path(a.out) / 'manifest.json'} and the model with its folding "
          f"{Path(a.out) / 'model.npz'} (latency {man['latency_cycles']} cycles, II "
          f"{man['ii_cycles']})")
    return 0


def cmd_cosim(a):
    from ddnhw import examples, flow
    graph = flow.load_model(a.model)
    rtl = Path(a.rtl) if a.rtl else None
    if rtl is None:
        rtl = Path(a.out)
        flow.generate(graph, rtl, board=a.board, folding=a.folding, target_ii=a.target_ii,
                      max_luts=a.max_luts)
    x = examples.input_vectors(graph, a.vectors, a.seed)
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
    _objective_folding(a, graph)
    out = Path(a.out) / a.board
    rep = flow.build(graph, a.board, out, allow_timing_failure=a.allow_timing_failure,
                     top=a.top, baud=a.baud, toolchain=a.toolchain, folding=a.folding,
                     target_ii=a.target_ii, max_luts=a.max_luts, timeout=a.timeout)
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
    if getattr(a, "energy", None):
        from ddnhw.cli.energy import estimate, summary_lines
        r = estimate(graph, a.board, out / "energy", a.energy, None, rep.get("fmax_mhz"),
                     folding=a.folding, target_ii=a.target_ii, max_luts=a.max_luts)
        rep["energy"] = {k: r[k] for k in ("energy_nj_per_inference", "dynamic_power_mw_board_clock",
                                            "power_mw_fmax", "static_power_mw", "breakdown",
                                            "error_band", "gate_level_mismatches", "method")}
        flow.write_json_atomic(out / "report.json", rep)
        for line in summary_lines(r):
            print(f"energy: {line}")
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
    from ddnhw import examples, flow
    from ddnhw.host import Link, run_and_check
    graph = flow.load_model(a.model)
    x = examples.input_vectors(graph, a.inputs, 0)
    with Link(a.port, baud=a.baud, timeout=a.timeout, retries=a.retries,
              window=a.window, confirm=a.confirm) as link:
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


def cmd_demo(a):
    from ddnhw import examples, flow
    out = a.out or (DEMO_OUT if a.model == "mlp" else f"{DEMO_OUT}-{a.model}")
    boards = () if a.no_synth else (None if a.boards is None else
                                    tuple(b for b in a.boards.split(",") if b))
    s = examples.run(a.model, out, settings=_settings(a, *TRAIN_SETTINGS, "channels"),
                     seed=a.seed, boards=boards, simulator=a.simulator, random=a.random,
                     sim_vectors=a.sim_vectors, progress=flow.Progress(quiet=a.quiet),
                     **({"energy": True} if getattr(a, "energy", False) else {}))
    if a.json:
        flow.write_json_atomic(Path(a.json), s)
    rows = flow.summary_rows(s)
    w = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k:<{w}}  {v}")
    print(f"\noutputs (model, Verilog, manifest, reports) in {s['output_dir']}")
    return 0 if s["mismatches"] == 0 else 1


def _folding_args(s, board=True):
    """The options of the one folding decision (:func:`ddnhw.flow.decide`), the same for
    generate, cosim and build: the same model, board and options give the same circuit."""
    if board:
        s.add_argument("--board", type=A.board_name,
                       help="the board the circuit is for: unrolled when that fits, "
                                       "else folded to fit (as `ddnhw build --board`)")
    s.add_argument("--folding", default="auto", choices=["auto", "none"],
                   help="auto (default): a folding the model file carries, else unrolled when "
                        "that fits the board, else folded to fit it (highest throughput); "
                        "none: fully unrolled")
    s.add_argument("--target-ii", type=A.positive_int,
                   help="fold to at most N cycles per inference")
    s.add_argument("--max-luts", type=A.positive_int,
                   help="fold to fit N LUTs (less a 15%% margin)")


def _objective_args(s):
    """generate/build: ``--objective energy --min-throughput N`` (ddnhw.energy.objective)."""
    s.add_argument("--objective", default="throughput", choices=["throughput", "energy"],
                   help="throughput (default): the folding decision above; energy: the "
                        "folding with the least energy per inference (gate-level estimate) "
                        "that meets --min-throughput")
    s.add_argument("--min-throughput", type=A.positive_float, default=None,
                   help="inferences/s at the board clock the energy objective must meet")
    s.add_argument("--energy-inputs", default="test", type=A.vectors_spec,
                   help="inputs of the energy objective's estimates (test, random:N, X.npy)")


# -- parser -------------------------------------------------------------------------------------

def _parser():
    p = A.Parser(prog="ddnhw", description=__doc__)
    p.add_argument("--version", action="version", version=f"ddnhw {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    from ddnhw.examples import EXAMPLES

    def common_train(s):
        s.add_argument("--model", default="mlp", choices=list(EXAMPLES),
                       help="the example: " + "; ".join(f"{k}: {ex.title}"
                                                         for k, ex in EXAMPLES.items()))
        s.add_argument("--hidden", type=A.int_in(1, 4096), help="hidden neurons or state (mlp, gru, "
                       "gru-signal, rnn; default 16)")
        s.add_argument("--bits", type=A.int_in(2, 8),
                       help="bits of inputs, weights and activations (2..8, default 4)")
        s.add_argument("--prune", type=A.fraction,
                       help="mlp: fraction of first-layer weights pruned to zero (default 0.5)")
        s.add_argument("--epochs", "--cnn-epochs", "--seq-epochs", dest="epochs",
                       type=A.int_in(1, 100_000),
                       help="epochs of float training and as many of QAT (default: the "
                            "example's: mlp 120, cnn/cnn1d 40, gru/gru-signal 20, rnn 40)")
        s.add_argument("--seed", type=A.seed, default=0)
        s.add_argument("-q", "--quiet", action="store_true")

    s = sub.add_parser("demo", help="train, generate, simulate, cosimulate and synthesize an "
                                    "example (default: the digits MLP)")
    common_train(s)
    s.add_argument("--channels", type=A.int_in(1, 1024), help="cnn: conv channels (default 8)")
    s.add_argument("--out", type=A.nonempty,
                   help=f"output folder (default {DEMO_OUT} for mlp, "
                                 f"{DEMO_OUT}-MODEL for the others)")
    s.add_argument("--json", type=A.nonempty,
                   help="also write the summary as one JSON object here")
    s.add_argument("--simulator", "--cosim", dest="simulator", default="auto",
                   choices=["auto", "verilator", "icarus", "none"],
                   help="RTL cosimulation of the whole test split + random inputs (auto "
                        "(default): Verilator when installed; none: skip)")
    s.add_argument("--random", "--cosim-random", dest="random",
                   type=A.int_in(0, 10_000_000),
                   help="random inputs (extremes included) checked besides the test split "
                        "(default: the example's, mlp 10000, others 40)")
    s.add_argument("--sim-vectors", "--sim-images", "--seq-sim-images", dest="sim_vectors",
                   type=A.int_in(0, 1_000_000), help="test inputs run in the Amaranth simulator (default: the "
                                  "example's: mlp 0, cnn/cnn1d 100, gru/gru-signal/rnn 4)")
    s.add_argument("--boards", type=A.board_list, help="comma-separated boards to synthesize for (default: the "
                                    "example's, icebreaker)")
    s.add_argument("--no-synth", action="store_true", help="skip synthesis")
    s.add_argument("--energy", action="store_true",
                   help="also estimate each board's energy per inference (gate-level netlist "
                        "on the test split; `ddnhw energy`) for the table")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("train", help="train an example's model (default: the digits MLP) with "
                                     "QAT and write the model file")
    common_train(s)
    s.add_argument("--out", default="model.npz", type=A.nonempty,
                   help="model file to write (default model.npz)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("generate", help="generate Verilog and a manifest from a model file")
    s.add_argument("model", type=A.existing_file, help="model file (.npz from `ddnhw train`)")
    s.add_argument("--out", default="out/rtl", type=A.nonempty,
                   help="output folder (default out/rtl)")
    s.add_argument("--name", default="ddnhw_top", type=A.identifier, help="top module name")
    _folding_args(s)
    _objective_args(s)
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("cosim", help="cosimulate the RTL against the golden model (cocotb)")
    s.add_argument("model", type=A.existing_file, help="model file (.npz)")
    s.add_argument("--rtl", type=A.nonempty,
                   help="folder from `ddnhw generate` (default: generate into --out)")
    s.add_argument("--out", default="out/rtl", type=A.nonempty)
    s.add_argument("--vectors", default="test", type=A.vectors_spec,
                   help="'test' (the test split of the model's example, default the digits), "
                        "'random:N', or a .npy file of input codes")
    s.add_argument("--simulator", default="verilator", type=A.simulator_list,
                   help="verilator, icarus, or both comma-separated")
    s.add_argument("--mode", default="bulk", choices=["bulk", "bfm"],
                   help="bulk: HDL harness streams the vectors (fast); bfm: cocotb Python BFMs")
    s.add_argument("--idle", type=A.probability, default=0.3, help="probability of an idle input cycle")
    s.add_argument("--stall", type=A.probability, default=0.3, help="probability of output backpressure")
    s.add_argument("--seed", type=A.seed, default=0)
    _folding_args(s)
    s.set_defaults(func=cmd_cosim)

    s = sub.add_parser("build", help="synthesize, place and route for a board (Yosys + nextpnr)")
    s.add_argument("model", type=A.existing_file, help="model file (.npz)")
    s.add_argument("--board", default="icebreaker", type=A.board_name,
                   help="board name (see `ddnhw boards`)")
    s.add_argument("--out", default="out/build", type=A.nonempty)
    s.add_argument("--energy", default=None, metavar="INPUTS", type=A.vectors_spec,
                   help="also estimate the energy per inference on these inputs (test, "
                        "random:N or X.npy; see `ddnhw energy`) and add it to the report")
    s.add_argument("--allow-timing-failure", action="store_true",
                   help="keep going when Fmax is below the board clock")
    s.add_argument("--top", default="uart", choices=["uart", "measure"],
                   help="uart: the core behind the UART link, for the board (default); "
                        "measure: a shim to measure the core alone")
    s.add_argument("--baud", type=A.int_in(300, 12_000_000), default=115200,
                   help="UART baud rate (default 115200)")
    s.add_argument("--timeout", type=A.positive_float, default=None,
                   help="stop the build after S seconds (default: no limit); SIGINT/SIGTERM "
                        "stop it at once. Either way no bitstream or report is left")
    s.add_argument("--toolchain", default="yowasp", choices=["yowasp", "system"],
                   help="yowasp (pip, default) or the system's yosys/nextpnr")
    _folding_args(s, board=False)
    _objective_args(s)
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("flash", help="load a bitstream onto a board with openFPGALoader")
    s.add_argument("--board", required=True, type=A.board_name,
                   help="board name (see `ddnhw boards`)")
    s.add_argument("--bitstream", type=A.existing_file, help="bitstream file (default: <out>/<board>/ddnhw_top.bin|bit)")
    s.add_argument("--out", default="out/build", type=A.nonempty,
                   help="`ddnhw build --out` folder")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--sram", dest="mode", action="store_const", const="sram",
                   help="load into configuration SRAM (lost at power-off)")
    g.add_argument("--flash", dest="mode", action="store_const", const="flash",
                   help="write the SPI flash (kept); the default where SRAM is not possible")
    s.set_defaults(func=cmd_flash, mode=None)

    s = sub.add_parser("run", help="run inputs on the board over UART and check every answer "
                                   "against the golden model")
    s.add_argument("--port", required=True, type=A.nonempty, help="serial port, e.g. /dev/ttyUSB1")
    s.add_argument("--inputs", default="test", type=A.vectors_spec,
                   help="a .npy file of input codes (N, lanes), 'test' (the test split of the "
                        "model's example) or 'random:N'")
    s.add_argument("--model", default=str(Path(__file__).resolve().parents[2] / "examples" /
                                          "digits_mlp.npz"), type=A.nonempty,
                   help="model file the board was built from (default: the demo model)")
    s.add_argument("--baud", type=A.int_in(300, 12_000_000), default=115200)
    s.add_argument("--timeout", type=A.positive_float, default=0.5,
                   help="reply timeout in seconds")
    s.add_argument("--retries", type=A.int_in(0, 1000), default=3, help="re-sends of one frame")
    s.add_argument("--window", type=A.int_in(1, 64), default=4, help="frames in flight")
    s.add_argument("--confirm", action="store_true",
                   help="send every vector twice and accept an answer only when both agree "
                        "(half the throughput; the frames' CRC-32 already keeps damaged "
                        "answers out)")
    s.add_argument("--no-check", action="store_true",
                   help="skip the IDENT check of the design on the board")
    s.add_argument("--json", type=A.nonempty, help="write the run report here")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("boards", help="list supported boards")
    s.set_defaults(func=cmd_boards)

    # Commands in modules of their own: each module has ``add_parser(sub)``; add its name here.
    import importlib
    for name in COMMAND_MODULES:
        importlib.import_module(f"ddnhw.cli.{name}").add_parser(sub)
    return p


def _on_sigterm(signum, frame):
    raise Interrupted("stopped by SIGTERM", signum)


def main(argv=None):
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:   # a bad argument (one line printed): 2; --help/--version go on
        if e.code in (0, None):
            raise
        return 2
    import signal
    import threading
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, _on_sigterm)   # stop like Ctrl-C, with a message
    try:
        return args.func(args)
    except Interrupted as e:
        print(f"ddnhw {args.cmd}: {e}", file=sys.stderr)
        return e.exit_status
    except DdnhwError as e:
        print(f"ddnhw {args.cmd}: error: {' '.join(str(e).split()) if _one_line(e) else e}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ddnhw {args.cmd}: interrupted (SIGINT)", file=sys.stderr)
        return 130
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _one_line(e) -> bool:
    """Whether the error's message is shown on one line (all but those that quote a log)."""
    return not getattr(e, "multiline", False) and ":\n" not in str(e)


if __name__ == "__main__":
    sys.exit(main())
