"""``ddnhw sweep sweep.toml``: train and build every point of a design-space sweep, on this
machine (a Dask LocalCluster, or serially) or on a Dask cluster, into one results table."""
from __future__ import annotations

import argparse
import os
import sys


def _workers(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, not {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, not {n}")
    return n


def _scheduler(text):
    if "://" not in text:
        raise argparse.ArgumentTypeError(f"must be a scheduler address such as "
                                         f"tcp://head:8786, not {text!r}")
    return text


def resolve(name, base):
    """The model families of a sweep, the examples included (they live above ddnhw.sweep)."""
    from ddnhw.examples import EXAMPLES
    from ddnhw.sweep import resolve as _resolve
    return _resolve(name, base, examples=EXAMPLES)


def print_table(result, file=None):
    """The results table, short: one line per point."""
    rows = result.rows()
    cols = [c for c in ("point", "accuracy", "est_luts", "luts", "ii_cycles", "fmax_mhz",
                        "rtl_accuracy", "status") if c in result.columns()]
    file = file or sys.stdout
    print("  ".join(f"{c:>10}" for c in cols) + "  label", file=file)
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            cells.append(f"{v:>10.4f}" if isinstance(v, float) else f"{str(v):>10}")
        print("  ".join(cells) + f"  {r['label']}", file=file)


def cmd_sweep(a):
    from pathlib import Path
    from ddnhw.sweep import load_config, sweep
    cfg = load_config(a.config, resolve=resolve)
    if a.out:
        cfg.out = Path(a.out)
    if a.scheduler:
        workers = 0
    else:
        workers = (os.cpu_count() or 1) if a.workers is None else a.workers
    recompute = "all" if a.force else ("failed" if a.retry_failed else "missing")
    res = sweep(cfg, workers=workers, scheduler=a.scheduler, resume=a.resume,
                recompute=recompute, plot=a.plot, quiet=a.quiet)
    if not a.quiet:
        print_table(res)
    runs = res.stage_runs()
    rows = res.rows()
    failed = sum(r["status"] != "ok" for r in rows)
    where = a.scheduler or (f"{res.workers} local workers" if res.workers else "this process")
    print(f"{len(rows)} points ({failed} failed) on {where} in {res.seconds:.1f} s: "
          f"{runs['computed']} stages run, {runs['reused']} from the store "
          f"({cfg.store_dir}); results in {', '.join(res.extra['paths'].values())}")
    return 0


def add_parser(sub):
    s = sub.add_parser("sweep", help="design-space sweep from a sweep.toml (bits, schemes, "
                                     "pruning, folding, boards x seeds) on Dask")
    s.add_argument("config", help="the sweep file (sweep.toml; see README 'Sweeps')")
    s.add_argument("--scheduler", type=_scheduler,
                   help="a running Dask scheduler (tcp://host:8786); default: a LocalCluster")
    s.add_argument("--workers", type=_workers,
                   help="local worker processes (default: one per core; 0: run serially in "
                        "this process)")
    s.add_argument("--resume", action="store_true",
                   help="continue the sweep in its out folder (which must hold this same "
                        "sweep): only what is missing runs")
    s.add_argument("--retry-failed", action="store_true",
                   help="run the points again that failed (their errors are stored)")
    s.add_argument("--force", action="store_true", help="run everything again")
    s.add_argument("--plot", action="store_true",
                   help="draw the Pareto fronts (accuracy vs LUTs, energy, throughput) to "
                        "OUT/pareto.png")
    s.add_argument("--out", help="results folder (default: the file's `out`)")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_sweep)
    return s
