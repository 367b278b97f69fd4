"""``ddnhw search``: mixed-precision search (per-layer bit widths) on the digits MLP, a preset of
``ddnhw sweep`` (:func:`ddnhw.sweep.presets.search_preset`); prints and writes the Pareto front
of accuracy against estimated LUTs, and saves the picked model."""
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
            distill=a.distill, prune=a.prune, fpga=a.family, seed=a.seed, out=out / "sweep")
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
    front = pareto_front(rows)
    for r in rows:
        r["pareto"] = r in front
    print(f"{'#':>3} {'candidate':<20} {'accuracy':>8} {'LUTs':>7} {'DSPs':>5}  pareto")
    for r in sorted(rows, key=lambda r: r["luts"]):
        print(f"{r['index']:>3} {r['label']:<20} {r['accuracy']:>8.4f} {r['luts']:>7} "
              f"{r['dsps']:>5}  {'*' if r['pareto'] else ''}")
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
    flow.write_json_atomic(out / "search.json", {
        "family": a.family, "sizes": [64, a.hidden, 10], "rows": rows, "pick": pick["index"],
        "sweep": res.extra["paths"]["json"]})
    print(f"picked #{pick['index']} {pick['label']}: accuracy {pick['accuracy']:.4f}, "
          f"~{pick['luts']} LUTs; model written to {model}, table to {out / 'search.json'} "
          f"(the sweep's: {res.extra['paths']['csv']})")
    return 0


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
