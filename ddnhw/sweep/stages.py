"""The stages of a sweep point and the one task function that runs any of them.

A point is a chain of stages: its family's (``pretrain`` →) ``train`` (QAT and export: the
model file), then ``estimate`` (the folding decision of :func:`ddnhw.flow.decide` for the
point's board or target II, and the resource model's estimate of that circuit: no tool runs),
then any of ``cosim`` (RTL generation and Verilator/Icarus cosimulation of the test split plus
random vectors against the golden model), ``build`` (Yosys + nextpnr for the board) and
``energy`` (:func:`ddnhw.energy.estimate_energy`), each from the circuit ``estimate`` decided.

:func:`run_stage` is a pure function of its task and its parents' results: it returns the
stored result when the store has one, else runs the stage in a folder of its own and stores
it. A stage that fails for its own reason (the design does not fit, misses timing, a tool
error) returns ``ok: False`` with its error, stored like a success; the stages after it are
skipped (and not stored).
"""
from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ddnhw import DdnhwError

import ddnhw.sweep.families as families
from ddnhw.sweep.store import Store

__all__ = ["Task", "run_stage", "lost_result", "HW_STAGES", "setup_process"]

HW_STAGES = ("estimate", "cosim", "build", "energy")
RECOMPUTE = ("missing", "failed", "all")


@dataclass(frozen=True)
class Task:
    """One stage of one or more points: ``stage``, its store ``key``, ``config`` (what the key
    hashes), the keys of its parent stages ``deps`` (their results are the task's arguments,
    in this order), the ``store`` root, the model ``family`` and ``recompute``: ``"missing"``
    (use a stored result), ``"failed"`` (recompute a stored failure) or ``"all"``."""
    stage: str
    key: str
    config: dict
    deps: tuple = ()
    store: str = "store"
    family: object = None
    recompute: str = "missing"

    def reusable(self, result) -> bool:
        """Whether a stored ``result`` stands for this task."""
        return result is not None and (self.recompute == "missing" or
                                       (self.recompute == "failed" and result["ok"]))


_SETUP = {"done": False}


def setup_process() -> None:
    """Once per worker process: one thread for PyTorch and OpenMP (the workers are the
    parallelism, and one thread keeps training deterministic)."""
    if _SETUP["done"]:
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    _SETUP["done"] = True


def run_stage(task: Task, *parents) -> dict:
    """Run ``task`` (see :class:`Task`) given its parents' results; returns its result:
    ``stage``, ``key``, ``ok``, ``error``, ``values``, ``files`` (``{name: bytes}`` the next
    stages need), ``skipped`` and ``meta`` (host, pid, start and end time, seconds)."""
    setup_process()
    store = Store(task.store)
    stored = store.load(task.stage, task.key)
    if task.recompute != "all" and task.reusable(stored):
        return {**stored, "reused": True}
    failed = next((p for p in parents if not p["ok"]), None)
    if failed is not None:
        return _result(task, False, f"skipped: {failed['stage']} failed", {}, {},
                       skipped=True, t0=time.time())
    try:
        work = store.workdir(task.stage, task.key)
    except OSError:                  # a worker that cannot write the store: the client stores
        work = Path(tempfile.mkdtemp(prefix=f"ddnhw-sweep-{task.stage}-"))
    t0 = time.time()
    try:
        if task.stage in HW_STAGES:
            values, names, error = STAGE_FUNCTIONS[task.stage](task, parents, work)
        else:
            values, names = task.family.run(task.stage, task.config, parents, work)
            error = None
        files = {n: (work / n).read_bytes() for n in names}
    except DdnhwError as e:
        values, files, error = {}, {}, str(e)
    except Exception as e:       # a bug or a tool crash: recorded with where it happened
        tb = traceback.extract_tb(e.__traceback__)[-1]
        values, files = {}, {}
        error = f"{type(e).__name__}: {e} ({Path(tb.filename).name}:{tb.lineno})"
    result = _result(task, error is None, error, values, files, t0=t0)
    try:
        return store.commit(result, work, replace=stored is not None)
    except OSError:
        store.discard(work)
        return result


def lost_result(task: Task, error: str) -> dict:
    """The result of a task that never returned one (its workers kept dying, the cluster
    failed): a failure that is not stored, so the next run tries again."""
    return _result(task, False, error, {}, {}, skipped=True, t0=time.time())


def _result(task, ok, error, values, files, skipped=False, t0=None):
    t1 = time.time()
    return {"stage": task.stage, "key": task.key, "config": task.config, "ok": ok,
            "error": error, "values": values, "files": files, "skipped": skipped,
            "reused": False,
            "meta": {"host": socket.gethostname(), "pid": os.getpid(), "started": t0,
                     "finished": t1, "seconds": round(t1 - t0, 3)}}


# -- hardware stages -----------------------------------------------------------------------------

def _estimate(task, parents, work):
    """The folding decision for the point's board (or target II / LUT cap on its FPGA family)
    and the resource model's estimate of that circuit."""
    from ddnhw.flow.core import decide
    from ddnhw.lower import plan_network
    c = task.config
    g = families.graph_of(parents[0]["files"]["model.npz"], work)
    limits, clock = {}, None
    if c["board"] is not None:
        from ddnhw.board import get_board
        profile = get_board(c["board"])
        g2, plan = decide(g, c["board"], c["folding"], target_ii=c["target_ii"],
                          max_luts=c["max_luts"])
        fam, limits, clock = profile.family, profile.budget_for().limits(), profile.clock_mhz
    else:
        from ddnhw.hw.family import Budget
        from ddnhw.passes.fold import select
        fam = c["fpga"]
        g2, plan = select(g, Budget(fam), c["folding"], target_ii=c["target_ii"],
                          max_luts=c["max_luts"])
    net = plan_network(g2, family=fam)
    est = {k: sum(int(layer["estimate"].get(k, 0)) for layer in net.layers)
           for k in ("luts", "ffs", "dsps", "brams")}
    folding = plan["folding"]
    values = {"fpga": fam, "folding_mode": plan["mode"],
              "folding_plan": None if not folding else
              {k: (list(v) if v is not None else None) for k, v in sorted(folding.items())},
              **{f"est_{k}": v for k, v in est.items()},
              "latency_cycles": int(net.latency), "ii_cycles": int(net.ii),
              # every resource the board limits (SPRAM too, which est_* does not list)
              "fits": all(sum(int(layer["estimate"].get(k, 0)) for layer in net.layers) <= v
                          for k, v in limits.items()) if limits else None,
              "est_inferences_per_s": None if clock is None else clock * 1e6 / int(net.ii)}
    families.model_bytes(g2, work)     # the circuit: the model with its folding
    return values, ["model.npz"], None


def _circuit(parents, work):
    return families.graph_of(parents[0]["files"]["model.npz"], work, "circuit.npz")


def _cosim(task, parents, work):
    import numpy as np
    from ddnhw.flow import core
    c = task.config
    g = _circuit(parents, work)
    fam = parents[0]["values"]["fpga"]
    core.generate(g, work / "rtl", family=fam)
    split = task.family.test_split(g, c["seed"])
    x = split[0] if split is not None else np.zeros((0,) + tuple(g.input.shape), np.int64)
    xr = core.random_vectors(g, c["random"], c["seed"])
    r = core.cosim_check(g, np.concatenate([x, xr]), work / "rtl", simulator=c["simulator"],
                         seed=c["seed"], build_dir=work / "sim")
    acc = None
    if split is not None and len(r["outputs"]) >= len(x):
        acc = float(np.mean(r["outputs"][:len(x)].argmax(-1) == split[1]))
    values = {"cosim_vectors": len(x) + len(xr), "cosim_mismatches": r["mismatches"],
              "cosim_cycles": r["cycles"], "rtl_accuracy": acc}
    error = None if not r["mismatches"] else f"RTL differs from golden: {r['message']}"
    return values, [], error


_WARM = set()


def warm_yowasp(family) -> None:
    """Run each YoWASP tool of ``family`` once, under a lock on its cache folder, so that its
    WebAssembly is compiled and cached by one process only; the builds after it only read the
    cache. (YoWASP writes its cache file in place: two processes compiling the same tool at
    once can make each other crash.)"""
    if family in _WARM:
        return
    import fcntl
    from ddnhw.board.build import toolchain_env
    from ddnhw.hw.family import get_family
    try:
        import platformdirs
        default = platformdirs.user_cache_dir("YoWASP", appauthor=False)
    except ImportError:
        default = str(Path.home() / ".cache" / "YoWASP")
    cache = Path(os.environ.get("YOWASP_CACHE_DIR", default))
    cache.mkdir(parents=True, exist_ok=True)
    env = toolchain_env(family)
    with open(cache / ".ddnhw-sweep.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for var in get_family(family).tools:
            subprocess.run([env[var], "--version"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900,
                           check=False)
    _WARM.add(family)


def _build(task, parents, work):
    from ddnhw.flow import core
    c = task.config
    g = _circuit(parents, work)
    if c["toolchain"] == "yowasp":
        warm_yowasp(parents[0]["values"]["fpga"])
    rep = core.build(g, c["board"], work / "build", top="measure", allow_timing_failure=True,
                     toolchain=c["toolchain"], timeout=c.get("timeout"))
    values = {k: rep.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz", "clock_mhz",
                                      "timing_met", "inferences_per_s")}
    values["build_seconds"] = rep.get("seconds")
    error = None if rep.get("timing_met") else (
        f"board {c['board']!r}: timing not met: Fmax {rep.get('fmax_mhz')} MHz < "
        f"{rep.get('clock_mhz')} MHz")
    return values, [], error


def _energy(task, parents, work):
    c = task.config
    try:
        from ddnhw.energy import estimate_energy
    except ImportError as e:
        raise DdnhwError(f"energy stage: ddnhw.energy is not available in this ddnhw "
                         f"({e}); drop 'energy' from stages") from None
    g = _circuit(parents, work)
    split = task.family.test_split(g, c["seed"])   # the activity of real inputs, if any
    res = estimate_energy(g, c["board"], work / "energy",
                          inputs=None if split is None else split[0], clock_mhz=None)
    values = {"energy": res}
    for k, v in (res or {}).items():      # the numbers, as energy_* columns (times: not)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and "seconds" not in k:
            values[k if k.startswith("energy") else f"energy_{k}"] = v
    return values, [], None


STAGE_FUNCTIONS = {"estimate": _estimate, "cosim": _cosim, "build": _build, "energy": _energy}
