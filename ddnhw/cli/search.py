"""``ddnhw search``: mixed-precision search (per-layer bit widths) on the digits MLP, a preset of
``ddnhw sweep`` (:func:`ddnhw.sweep.presets.search_preset`); prints and writes the Pareto front
of accuracy against estimated LUTs (with ``--energy``, also against energy per inference: a
column, a second front and ``search_pareto.png``), and saves the picked model."""
from __future__ import annotations

from ddnhw.cli import args as A

from ddnhw.cli.sweep import _scheduler, _workers


def _bits_list(text):
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        from ddnhw import DdnhwError
        raise DdnhwError(f"bit widths must be comma-separated integers, not {text!r}") from None


def cmd_search(a):
    from ddnhw import DdnhwError, flow
    from ddnhw.atomic import write_bytes
    from ddnhw.quant.search import pareto_front
    from ddnhw.sweep import sweep
    from ddnhw.sweep.presets import search_preset

    out = flow.ensure_writable_dir(a.out)
    if a.family not in ("ice40", "ecp5"):
        raise DdnhwError(f"--family must be ice40 or ecp5, not {a.family!r}")
    board = None
    if a.energy:
        from ddnhw.board import get_board
        board = a.energy_board or ENERGY_BOARDS[a.family]
        if get_board(board).family != a.family:
            raise DdnhwError(f"--energy-board {board}: an {get_board(board).family} board, "
                             f"but --family is {a.family}")
    elif a.energy_board:
        raise DdnhwError("--energy-board needs --energy")
    fr = ()
    if a.channel_fractions:
        fr = tuple(float(v) for v in a.channel_fractions.split(","))
        if not all(0 < f < 1 for f in fr):
            raise DdnhwError(f"--channel-fractions must be in (0, 1), not {a.channel_fractions!r}")
    try:
        cfg, points = search_preset(
            hidden=a.hidden, w_bits=_bits_list(a.w_bits), a_bits=_bits_list(a.a_bits),
            realize=a.realize, limit=a.limit, channel_fractions=fr,
            channel_low_bits=a.channel_low_bits, epochs=a.epochs, float_epochs=a.float_epochs,
            distill=a.distill, prune=a.prune, fpga=a.family, seed=a.seed, out=out / "sweep",
            energy_board=board)
    except ValueError as e:
        raise DdnhwError(f"search: {e}") from None
    res = sweep(cfg, workers=0 if a.scheduler else a.workers, scheduler=a.scheduler,
                points=points, quiet=a.quiet)
    rows = []
    for i, r in enumerate(res.rows()):
        if r["status"] != "ok":
            raise DdnhwError(f"search: candidate {i} ({r['model_label'] or r['label']}) "
                             f"failed: {r['error']}")
        train = res.stage(i, "train")["values"]
        rows.append({"index": i, "label": r["model_label"], "w_bits": r["w_bits"],
                     "channel_bits": train["channel_bits"],
                     "a_bits": [r["a_bits"]] if isinstance(r["a_bits"], int) else r["a_bits"],
                     "accuracy": r["accuracy"], "ptq_accuracy": r["ptq_accuracy"],
                     "float_accuracy": r["float_accuracy"], "luts": r["est_luts"],
                     "ffs": r["est_ffs"], "dsps": r["est_dsps"]})
        if board:
            rows[-1].update(energy_nj_per_inference=r["energy_nj_per_inference"],
                            energy_gate_level_mismatches=r["energy_gate_level_mismatches"])
    front = pareto_front(rows)
    for r in rows:
        r["pareto"] = r in front
    if board:      # the front of accuracy against energy per inference
        efront = pareto_front(rows, cost="energy_nj_per_inference")
        for r in rows:
            r["energy_pareto"] = r in efront
    print(f"{'#':>3} {'candidate':<20} {'accuracy':>8} {'LUTs':>7} {'DSPs':>5}  pareto"
          + ("   nJ/inf  pareto" if board else ""))
    for r in sorted(rows, key=lambda r: r["luts"]):
        print(f"{r['index']:>3} {r['label']:<20} {r['accuracy']:>8.4f} {r['luts']:>7} "
              f"{r['dsps']:>5}  {'*' if r['pareto'] else ' ':<6}"
              + (f" {r['energy_nj_per_inference']:>8.3f}  {'*' if r['energy_pareto'] else ''}"
                 if board else ""))
    if a.pick is not None:
        pick = next((r for r in rows if r["index"] == a.pick), None)
        if pick is None:
            raise DdnhwError(f"--pick {a.pick}: no such candidate (0..{len(rows) - 1})")
    else:   # the cheapest front point within --tolerance of the best accuracy
        best = max(r["accuracy"] for r in rows)
        pick = min((r for r in front if r["accuracy"] >= best - a.tolerance),
                   key=lambda r: r["luts"])
    model = out / "search_pick.npz"
    write_bytes(model, res.model_file(pick["index"]))
    doc = {"family": a.family, "sizes": [64, a.hidden, 10], "rows": rows,
           "pick": pick["index"], "sweep": res.extra["paths"]["json"]}
    if board or a.plot:
        from ddnhw.sweep.report import plot_pareto
        doc["png"] = str(out / "search_pareto.png")
        plot_pareto(res.rows(), out / "search_pareto.png",
                    "ddnhw search: accuracy vs LUTs" + (f" and vs energy per inference on "
                                                        f"{board}" if board else ""),
                    costs=("LUTs", "energy (nJ/inference)"))
        print(f"Pareto fronts: {out / 'search_pareto.png'}")
    if board:
        doc["energy_board"] = board
    flow.write_json_atomic(out / "search.json", doc)
    print(f"picked #{pick['index']} {pick['label']}: accuracy {pick['accuracy']:.4f}, "
          f"~{pick['luts']} LUTs; model written to {model}, table to {out / 'search.json'} "
          f"(the sweep's: {res.extra['paths']['csv']})")
    return 0


ENERGY_BOARDS = {"ice40": "icebreaker", "ecp5": "ulx3s-85f"}


def add_parser(sub):
    s = sub.add_parser("search", help="mixed-precision search: Pareto front of accuracy vs "
                                      "estimated LUTs (digits MLP; a preset of `sweep`)")
    s.add_argument("--hidden", type=A.int_in(1, 4096), default=16)
    s.add_argument("--w-bits", default="2,3,4", help="weight widths per layer to try")
    s.add_argument("--a-bits", default="2,3,4", help="activation widths to try")
    s.add_argument("--realize", default="mult", choices=("mult", "pow2"),
                   help="requant scales as 8-bit multipliers or powers of two")
    s.add_argument("--limit", type=A.positive_int, default=None, help="at most this many candidates")
    s.add_argument("--channel-fractions", default="",
                   help="also try per-channel bit widths in the hidden layer: these fractions "
                        "of its least important channels at --channel-low-bits (e.g. 0.25,0.5)")
    s.add_argument("--channel-low-bits", type=A.int_in(1, 16), default=2)
    s.add_argument("--epochs", type=A.int_in(1, 100_000), default=40, help="QAT epochs per candidate")
    s.add_argument("--float-epochs", type=A.int_in(1, 100_000), default=120)
    s.add_argument("--distill", type=A.fraction, default=0.5, help="knowledge-distillation weight")
    s.add_argument("--prune", type=A.fraction, default=0.0)
    s.add_argument("--family", default="ice40", choices=("ice40", "ecp5"), help="estimate calibration: ice40 or ecp5")
    s.add_argument("--energy", action="store_true",
                   help="also the energy per inference of every candidate (unrolled, gate-level "
                        "netlist on the test split; `ddnhw energy`): a column, a front, and "
                        "search_pareto.png")
    s.add_argument("--energy-board", type=A.board_name, default=None,
                   help="board of --energy (default: icebreaker for ice40, ulx3s-85f for ecp5)")
    s.add_argument("--plot", action="store_true",
                   help="write search_pareto.png (accuracy vs LUTs; with --energy also vs energy)")
    s.add_argument("--pick", type=A.nonneg_int, default=None,
                   help="candidate index to save (default: cheapest within --tolerance)")
    s.add_argument("--tolerance", type=A.fraction, default=0.01)
    s.add_argument("--seed", type=A.seed, default=0)
    s.add_argument("--workers", type=_workers, default=0,
                   help="local Dask worker processes (default 0: serially in this process)")
    s.add_argument("--scheduler", type=_scheduler, help="run on this Dask scheduler")
    s.add_argument("-o", "--out", default="search_out", type=A.nonempty)
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_search)
    return s
