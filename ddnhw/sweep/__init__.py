"""Design-space sweeps (``ddnhw sweep sweep.toml``) on one machine or a Dask cluster.

A sweep (:mod:`.config`: ``sweep.toml``) trains and builds every combination of its axes
(weight and activation bits per layer, quantizer scheme, pruning, folding or target II, board,
...) for every seed; each point is a chain of stages (:mod:`.stages`: train → estimate →
cosim → build → energy) whose results go to a content-addressed store (:mod:`.store`), so
that a rerun or ``--resume`` runs only what is missing. :mod:`.run` runs the stages serially
or on ``dask.distributed``; :mod:`.report` writes the table and draws the Pareto fronts.
"""
from __future__ import annotations

import json

from ddnhw import DdnhwError, __version__
from ddnhw.atomic import write_text

from .config import (HW_AXES, STAGES, Point, SweepConfig, SweepConfigError,  # noqa: F401
                     expand, load_config, parse_config)
from .families import (ExampleFamily, FileFamily, ModelFamily,  # noqa: F401
                       SchemeMLPFamily, resolve)
from .report import csv_text, plot_pareto, write_results  # noqa: F401
from .run import Progress, SweepResult, execute, plan, run_sweep  # noqa: F401
from .stages import Task, run_stage  # noqa: F401
from .store import Store, stage_key  # noqa: F401

__all__ = ["HW_AXES", "STAGES", "Point", "SweepConfig", "SweepConfigError", "expand",
           "load_config", "parse_config", "ExampleFamily", "FileFamily", "ModelFamily",
           "SchemeMLPFamily", "resolve", "csv_text", "plot_pareto", "write_results",
           "Progress", "SweepResult", "execute", "plan", "run_sweep", "Task", "run_stage",
           "Store", "stage_key", "sweep"]

STATE = "sweep.json"


def sweep(cfg: SweepConfig, *, workers=0, scheduler=None, client=None, resume=False,
          recompute="missing", plot=False, quiet=True, points=None) -> SweepResult:
    """Run ``cfg`` (see :func:`run_sweep` for ``workers``, ``scheduler``, ``client``,
    ``recompute``, ``points``) and write its results into ``cfg.out``: ``results.csv``,
    ``results.json`` (``results.parquet`` with pyarrow), ``pareto.png`` with ``plot``, and
    ``sweep.json`` (which sweep this folder holds and whether it finished). ``resume``: the
    folder must hold this same sweep (else :class:`DdnhwError`); what its store has is not
    run again (as on any rerun)."""
    from ddnhw.flow.core import ensure_writable_dir
    out = ensure_writable_dir(cfg.out)
    state_path = out / STATE
    ident = cfg.identity()
    if resume:
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError):
            raise DdnhwError(f"--resume: {state_path} holds no sweep to resume; run without "
                             f"--resume to start it") from None
        if state.get("sweep") != ident:
            raise DdnhwError(f"--resume: {out} holds another sweep ({state.get('source')}, "
                             f"{state.get('sweep')}), not this one ({ident}); its config "
                             f"changed, or use another out folder")
    state = {"sweep": ident, "source": cfg.source, "ddnhw": __version__, "status": "running",
             "store": str(cfg.store_dir)}
    write_text(state_path, json.dumps(state, indent=1) + "\n")
    todo = expand(cfg) if points is None else points
    progress = Progress(len(todo), quiet=quiet)
    result = run_sweep(cfg, workers=workers, scheduler=scheduler, client=client, points=todo,
                       recompute=recompute, progress=progress)
    result.extra["paths"] = {k: str(v) for k, v in write_results(result, out).items()}
    if plot:
        plot_pareto(result.rows(), out / "pareto.png", cfg.name)
        result.extra["paths"]["png"] = str(out / "pareto.png")
    write_text(state_path, json.dumps({**state, "status": "done",
                                       "summary": result.stage_runs()}, indent=1) + "\n")
    return result
