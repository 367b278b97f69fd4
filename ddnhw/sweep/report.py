"""The results of a sweep: ``results.csv`` (and ``results.parquet`` when pyarrow is installed),
``results.json`` (the table plus how the run went) and the Pareto fronts as PNG."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ddnhw import DdnhwError, __version__
from ddnhw.atomic import atomic_open, write_text

__all__ = ["write_results", "csv_text", "pareto_rows", "plot_pareto", "COSTS"]

# The Pareto fronts drawn: (column, label, smaller is better); the first present column of each
# list is used (built LUTs before estimated ones).
COSTS = ((("luts", "est_luts"), "LUTs", True),
         (("energy_nj_per_inference",), "energy (nJ/inference)", True),
         (("inferences_per_s", "est_inferences_per_s"), "inferences/s", False))


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    return repr(v) if isinstance(v, float) else str(v)


def csv_text(columns, rows) -> str:
    """The table as CSV text (floats as Python's shortest exact repr, lists as JSON)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def write_results(result, out) -> dict:
    """Write ``results.csv``, ``results.json`` (and ``results.parquet`` with pyarrow) of a
    :class:`~ddnhw.sweep.run.SweepResult` into ``out``; returns ``{kind: path}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cols, rows = result.columns(), result.rows()
    paths = {"csv": out / "results.csv", "json": out / "results.json"}
    write_text(paths["csv"], csv_text(cols, rows))
    runs = []
    for p, chain in zip(result.points, result.chains):
        runs.append({"point": p.index, "stages": [
            {"stage": s, "key": k, "ok": result.results[k]["ok"],
             "reused": result.results[k]["reused"], "skipped": result.results[k]["skipped"],
             "meta": result.results[k]["meta"],
             "extra": {n: v for n, v in result.results[k]["values"].items()
                       if n not in cols}} for s, k in chain]})
    doc = {"name": result.cfg.name, "model": result.cfg.family.identity(),
           "sweep": result.cfg.identity(), "ddnhw": __version__, "stages":
           list(result.cfg.stages), "columns": cols, "rows": rows,
           "summary": {"points": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
                       "failed": sum(r["status"] != "ok" for r in rows),
                       **result.stage_runs(), "wall_seconds": round(result.seconds, 2),
                       "workers": result.workers},
           "runs": runs, "store": str(result.cfg.store_dir)}
    write_text(paths["json"], json.dumps(doc, indent=1, default=str) + "\n")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return paths
    table = pa.Table.from_pylist([{c: _cell(r[c]) if isinstance(r[c], (list, dict)) else r[c]
                                   for c in cols} for r in rows])
    paths["parquet"] = out / "results.parquet"
    with atomic_open(paths["parquet"], "wb") as f:
        pq.write_table(table, f)
    return paths


def pareto_rows(rows, cost, smaller=True, acc="accuracy"):
    """The rows on the front of ``acc`` (higher is better) against ``cost``: none has another
    row at least as accurate and at most as costly (``smaller``; else at least as high)."""
    from ddnhw.quant.search import pareto_front
    ok = [r for r in rows if r.get(acc) is not None and r.get(cost) is not None]
    keyed = [{"accuracy": r[acc], "cost": r[cost] if smaller else -r[cost], "row": r}
             for r in ok]
    return [k["row"] for k in pareto_front(keyed, cost="cost")]


def plot_pareto(result_rows, path, title="sweep", costs=None) -> list:
    """Pareto fronts of accuracy against LUTs, energy and throughput (those the table has;
    ``costs``: only those of these labels) as one PNG at ``path``; returns the costs drawn."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DdnhwError("--plot needs matplotlib: pip install 'ddnhw[sweep]'") from None
    drawn = []
    for names, label, smaller in COSTS:
        if costs is not None and label not in costs:
            continue
        col = next((c for c in names if any(r.get(c) is not None for r in result_rows)), None)
        if col is not None and any(r.get("accuracy") is not None for r in result_rows):
            drawn.append((col, label, smaller))
    if not drawn:
        raise DdnhwError("--plot: the table has no accuracy with LUTs, energy or throughput "
                         "(run the train and estimate stages)")
    fig, axes = plt.subplots(1, len(drawn), figsize=(5.5 * len(drawn), 4.2), squeeze=False)
    for ax, (col, label, smaller) in zip(axes[0], drawn):
        rows = [r for r in result_rows if r.get("accuracy") is not None and
                r.get(col) is not None]
        ax.scatter([r[col] for r in rows], [100 * r["accuracy"] for r in rows], s=18,
                   color="0.6", label="points")
        front = pareto_rows(rows, col, smaller)
        front.sort(key=lambda r: r[col])
        ax.step([r[col] for r in front], [100 * r["accuracy"] for r in front],
                where="post" if smaller else "pre", color="C3", marker="o", label="Pareto front")
        ax.set_xlabel(f"{label} ({col})")
        ax.set_ylabel("accuracy (%)")
        xs = [r[col] for r in rows if r[col] > 0]
        if xs and max(xs) > 20 * min(xs):
            ax.set_xscale("log")
        ax.margins(0.08)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return [c for c, _, _ in drawn]
