"""Running a sweep: the task graph of its points, run serially or on Dask, and its table.

:func:`plan` turns the points into tasks, one per distinct stage (points that share a stage,
say the float pre-training of one seed or the training behind several boards, share its task).
:func:`execute` runs them: in this process (``client=None``) or as Dask futures
(``client.submit(run_stage, task, *parent futures, retries=...)``); a worker that dies takes
no result with it: the scheduler runs its task again on another worker, and the task finds
in the store whatever was finished. :func:`run_sweep` does both and returns the
:class:`SweepResult`, whose :meth:`~SweepResult.rows` are one row per point, in point order,
with deterministic columns only (the same table serially, on one worker or on many).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from ddnhw import DdnhwError

from ddnhw.sweep.config import SweepConfig, expand
from ddnhw.sweep.stages import RECOMPUTE, Task, lost_result, run_stage
from ddnhw.sweep.store import Store, stage_key

__all__ = ["plan", "execute", "run_sweep", "SweepResult", "Progress", "COLUMNS"]

# The table's columns per stage (values every run computes the same way); times, hosts and
# other run facts go to results.json only.
COLUMNS = {
    "train": ("model_label", "float_accuracy", "ptq_accuracy", "qat_accuracy", "accuracy"),
    "estimate": ("fpga", "folding_mode", "folding_plan", "est_luts", "est_ffs", "est_dsps",
                 "est_brams", "latency_cycles", "ii_cycles", "fits", "est_inferences_per_s"),
    "cosim": ("cosim_vectors", "cosim_mismatches", "rtl_accuracy"),
    "build": ("luts", "ffs", "dsps", "brams", "fmax_mhz", "timing_met", "inferences_per_s"),
    "energy": (),        # every number estimate_energy returns, as energy_* columns
}
RETRIES = 2


def plan(cfg: SweepConfig, points=None, recompute="missing"):
    """``(tasks, chains)``: ``tasks`` ``{key: Task}`` in an order where parents come first;
    ``chains[i]``: ``[(stage, key)]`` of point ``i``."""
    if recompute not in RECOMPUTE:
        raise DdnhwError(f"recompute must be one of {RECOMPUTE}, not {recompute!r}")
    points = expand(cfg) if points is None else points
    tasks, chains = {}, []
    store = str(cfg.store_dir.resolve())      # the workers' folder may differ

    def add(stage, config, deps):
        key = stage_key(stage, config, deps)
        if key not in tasks:
            tasks[key] = Task(stage, key, config, tuple(deps), store, cfg.family, recompute)
        return key

    for p in points:
        chain, parent = [], []
        for stage, config in cfg.family.chain(p.model, p.seed):
            parent = [add(stage, config, parent)]
            chain.append((stage, parent[0]))
        train = parent
        if "estimate" in cfg.stages:
            hw = dict(p.hw)
            if hw["board"] is not None:
                hw["fpga"] = None            # the board's family: the same estimate
            est = [add("estimate", hw, train)]
            chain.append(("estimate", est[0]))
            for stage in ("cosim", "build", "energy"):
                if stage not in cfg.stages:
                    continue
                if stage == "cosim":
                    c = {**cfg.cosim, "seed": p.seed}
                elif stage == "build":
                    c = {**cfg.build, "board": p.hw["board"]}
                else:
                    c = {"board": p.hw["board"], "seed": p.seed}
                chain.append((stage, add(stage, c, est)))
        chains.append(chain)
    return tasks, chains


class Progress:
    """A progress bar of finished points on stderr (one line per update when stderr is not a
    terminal)."""

    def __init__(self, total, quiet=False, stream=None):
        self.total, self.quiet = total, quiet
        self.stream = stream or sys.stderr
        self.done = self.failed = self.reused = 0
        self.t0 = time.perf_counter()
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def point(self, ok, reused, label=""):
        self.done += 1
        self.failed += not ok
        self.reused += reused
        if self.quiet:
            return
        width = 30
        n = int(width * self.done / max(self.total, 1))
        line = (f"[{'#' * n}{'.' * (width - n)}] {self.done}/{self.total} points"
                f" ({self.failed} failed, {self.reused} from the store) "
                f"{time.perf_counter() - self.t0:6.1f} s")
        if self.tty:
            print("\r" + line, end="" if self.done < self.total else "\n", file=self.stream,
                  flush=True)
        else:
            print(f"{line}  {label}", file=self.stream, flush=True)


def execute(tasks: dict, client=None, *, on_result=None, retries=RETRIES) -> dict:
    """Run ``tasks`` (:func:`plan`'s); returns ``{key: result}``. ``client``: a
    :class:`distributed.Client`, or a function returning one, called only when something is
    left to run (None: run here, in order). Stored results that stand are loaded, not
    submitted. ``on_result(key, result)`` is called as each result arrives (for the results
    loaded from the store too)."""
    results, todo = {}, []
    store = None
    for key, t in tasks.items():
        store = store or Store(t.store)
        stored = store.load(t.stage, key) if t.recompute != "all" else None
        if t.reusable(stored):
            results[key] = {**stored, "reused": True}
            if on_result:
                on_result(key, results[key])
        else:
            todo.append(key)
    if client is not None and todo and callable(client) and not hasattr(client, "submit"):
        client = client()
    if client is None or not todo:
        for key in todo:
            t = tasks[key]
            results[key] = run_stage(t, *(results[d] for d in t.deps))
            if on_result:
                on_result(key, results[key])
        return results

    import uuid
    from distributed import as_completed
    futures = {}
    run = uuid.uuid4().hex[:8]      # this run's task names: never a result of another run's
    for key in todo:
        t = tasks[key]
        args = [futures.get(d, results.get(d)) for d in t.deps]
        futures[key] = client.submit(run_stage, t, *args, key=f"sweep-{t.stage}-{key}-{run}",
                                     pure=False, retries=retries)
    by_future = {f.key: k for k, f in futures.items()}
    try:
        for fut in as_completed(list(futures.values())):
            key = by_future[fut.key]
            try:
                res = fut.result()
            except Exception as e:      # e.g. KilledWorker: its workers died too often
                res = lost_result(tasks[key], f"{type(e).__name__}: {e}")
            if not res.get("skipped") and not store.has(res["stage"], key):
                store.commit(res)        # a worker that does not share the store's folder
            results[key] = res
            if on_result:
                on_result(key, res)
    finally:
        client.cancel([f for f in futures.values() if not f.done()])
    return results


@dataclass
class SweepResult:
    """The points, their stage chains, every stage's result and how the run went."""
    cfg: SweepConfig
    points: list
    chains: list
    results: dict
    seconds: float = 0.0
    workers: int = 0
    extra: dict = field(default_factory=dict)

    def columns(self) -> list:
        cols = ["point", "label", *self.cfg.axis_names(), "seed"]
        for stage in self.cfg.stages:
            cols += COLUMNS[stage]
        if "energy" in self.cfg.stages:
            names = {k for chain in self.chains for s, key in chain if s == "energy"
                     for k, v in self.results[key]["values"].items()
                     if k.startswith("energy_")}
            cols += sorted(names)
        cols += ["status", "error"]
        out = []
        for c in cols:
            if c not in out:
                out.append(c)
        return out

    def rows(self) -> list:
        """One dict per point (keys :meth:`columns`), in point order."""
        cols = self.columns()
        rows = []
        for p, chain in zip(self.points, self.chains):
            row = dict.fromkeys(cols)
            row.update(point=p.index, label=p.label(), seed=p.seed, **p.axes)
            fixed = {"point", "label", "seed", "status", "error", *p.axes}
            failed = None
            for stage, key in chain:
                r = self.results[key]
                for k, v in r["values"].items():
                    if k in row and k not in fixed:
                        row[k] = v
                if not r["ok"] and failed is None:
                    failed = r
            row["status"] = "ok" if failed is None else f"failed: {failed['stage']}"
            row["error"] = None if failed is None else failed["error"]
            rows.append(row)
        return rows

    def stage_runs(self) -> dict:
        """How many stage results were computed and how many came from the store."""
        rs = list(self.results.values())
        return {"computed": sum(not r["reused"] and not r["skipped"] for r in rs),
                "reused": sum(bool(r["reused"]) for r in rs),
                "skipped": sum(bool(r["skipped"]) for r in rs)}

    def stage(self, position, stage) -> dict:
        """The result of ``stage`` of the point at ``position`` in :attr:`points`."""
        key = next(k for s, k in self.chains[position] if s == stage)
        return self.results[key]

    def model_file(self, position) -> bytes:
        """The model file of the point at ``position`` (its ``train`` stage's)."""
        return self.stage(position, "train")["files"]["model.npz"]


def _client(scheduler, workers, local_dir):
    """``(client, closer)``: a Client of ``scheduler`` or of a new LocalCluster."""
    import contextlib
    import logging
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DdnhwError("sweeps on Dask need the distributed package: pip install "
                         "'ddnhw[sweep]'") from None
    stack = contextlib.ExitStack()
    if scheduler:
        try:
            client = stack.enter_context(Client(scheduler, timeout="30s"))
        except (OSError, TimeoutError) as e:
            raise DdnhwError(f"--scheduler {scheduler}: cannot connect: {e}") from None
    else:
        cluster = stack.enter_context(LocalCluster(
            n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},    # its HTTP routes: any free port
            local_directory=str(local_dir), silence_logs=logging.ERROR,
            env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}))
        client = stack.enter_context(Client(cluster))
    return client, stack


def run_sweep(cfg: SweepConfig, *, workers=0, scheduler=None, client=None, points=None,
              recompute="missing", progress=None, on_result=None) -> SweepResult:
    """Run the sweep ``cfg``: serially in this process (``workers=0``), on a new
    ``LocalCluster(n_workers=workers, processes=True, threads_per_worker=1)``, on the cluster
    at ``scheduler`` (``tcp://host:8786``) or on a given ``client``. ``points``: a subset of
    :func:`expand`'s; ``recompute``: ``"missing"`` (default: what the store has is not run
    again), ``"failed"`` or ``"all"``. ``progress``: a :class:`Progress` (default: quiet).
    ``on_result(key, result, client)`` sees every stage result as it arrives."""
    points = expand(cfg) if points is None else points
    tasks, chains = plan(cfg, points, recompute)
    Store(cfg.store_dir).root.mkdir(parents=True, exist_ok=True)
    progress = progress or Progress(len(points), quiet=True)
    remaining = [{k for _, k in chain} for chain in chains]
    waiting = {}
    for i, keys in enumerate(remaining):
        for k in keys:
            waiting.setdefault(k, []).append(i)
    results = {}
    t0 = time.perf_counter()
    opened = {}

    def connect():                   # the cluster starts only when something is left to run
        opened["client"], opened["closer"] = _client(scheduler, workers,
                                                     cfg.out / "dask-worker-space")
        return opened["client"]

    def seen(key, res):
        results[key] = res
        for i in waiting.get(key, ()):
            remaining[i].discard(key)
            if not remaining[i]:
                chain_res = [results[k] for _, k in chains[i]]
                progress.point(all(r["ok"] for r in chain_res),
                               all(r["reused"] for r in chain_res), points[i].label())
        if on_result:
            on_result(key, res, client or opened.get("client"))

    n_workers = 0
    try:
        execute(tasks, client or (connect if scheduler or workers else None), on_result=seen)
        c = client or opened.get("client")
        n_workers = len(c.scheduler_info()["workers"]) if c is not None else 0
    finally:
        if "closer" in opened:
            opened["closer"].close()
    return SweepResult(cfg, points, chains, results, time.perf_counter() - t0, n_workers)
