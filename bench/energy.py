#!/usr/bin/env python3
"""Energy per inference (ddnhw.energy) of models on a board: unrolled vs folded, and timing.

For each model file and each folding (``unrolled``, the automatic decision ``auto``, and the
planner's folding for each ``--ii`` given), estimate the energy per inference on the model's
test split (or random vectors for models without an example) with
:func:`ddnhw.energy.estimate_energy`, time it, and write bench/results/energy.{json,md}
(machine and date included). ``--calibrate`` refits the iCE40UP5K coefficients to the
published measurements and prints the fit (see ddnhw/energy/calibration.py).

    python bench/energy.py --models examples/digits_mlp.npz --ii 32,64
    python bench/energy.py --calibrate
    python bench/energy.py --examples all      # every example on the UP5K and the ECP5-85F

``--examples`` (bench/results/energy_examples.{json,md}): each example's model (the shipped one,
else trained here briefly: ``--epochs`` caps the example's epochs, seed 0, cached in
``--work``) on each of ``--boards``, with the folding ``ddnhw demo`` builds for that board (the
example's folding policy); on the first board, the examples of ``--alt`` that are unrolled
there also get a folded row (the planner's folding for ``--alt name:II``). Inputs: the test split
(its first ``--max-vectors``). A circuit that does not fit a board is a row with its error.
Rows already in the JSON are kept unless ``--force`` (the run can be resumed); rows that
failed with an error (not "does not fit") are run again.
"""
from __future__ import annotations

import datetime
import json
import re
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_dirs, bench_parser  # noqa: E402


def machine():
    import os
    return {"machine": platform.machine(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average": os.getloadavg()[0]}


def inputs_for(graph, spec):
    from ddnhw import examples
    try:
        return examples.input_vectors(graph, spec), spec
    except Exception:      # a model without an example: random vectors
        return examples.input_vectors(graph, "random:256"), "random:256"


def _cpu():
    import resource
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = resource.getrusage(resource.RUSAGE_SELF)
    return c.ru_utime + c.ru_stime + s.ru_utime + s.ru_stime


SHIPPED = {"mlp": ROOT / "examples" / "digits_mlp.npz"}


def example_model(name, work, epochs_cap, log=print):
    """``(graph, info)``: the shipped model of example ``name`` or one trained here (epochs
    capped at ``epochs_cap``, seed 0; the model file is kept in ``work/models``)."""
    from ddnhw import examples, golden
    from ddnhw.ir import load_graph
    ex = examples.get(name)
    path = SHIPPED.get(name)
    info = {"model": "shipped", "path": str(path)}
    if path is None or not path.exists():
        epochs = min(int(ex.settings.get("epochs", epochs_cap)), epochs_cap)
        path = work / "models" / f"{name}_e{epochs}.npz"
        meta = path.with_suffix(".json")
        if not path.exists() or not meta.exists():
            t0, c0 = time.monotonic(), _cpu()
            m = examples.train_model(name, path, settings={"epochs": epochs}, seed=0)
            meta.write_text(json.dumps({
                "epochs": epochs, "quant_accuracy": m["quant_accuracy"],
                "quant_rmse": m["quant_rmse"],
                "train_seconds_wall": round(time.monotonic() - t0, 1),
                "train_seconds_cpu": round(_cpu() - c0, 1)}) + "\n")
        info = {"model": f"trained here, {epochs} epochs (seed 0)", "path": str(path),
                **json.loads(meta.read_text())}
    g = load_graph(path)
    if "quant_accuracy" not in info:
        x, y = examples.test_inputs(name, g)
        out = golden.run(g, x)
        if g.meta.get("task") != "regression":
            info["quant_accuracy"] = float((out.reshape(len(out), -1).argmax(-1) == y).mean())
    log(f"{name}: {info['model']}, accuracy {info.get('quant_accuracy')}")
    return g, info


def example_rows(names, boards, work, *, epochs_cap, max_vectors, alt, alt_ii, done, force,
                 save, log=print):
    """Energy rows of the examples ``names`` on ``boards`` (see the module doc); ``done``: rows
    of an earlier run by (example, board, folding); ``save(rows)`` after each row."""
    from ddnhw import examples
    from ddnhw.energy import estimate_energy
    from ddnhw.flow import pipeline
    rows = []
    for name in names:
        ex = examples.get(name)
        todo = []
        for i, board in enumerate(boards):
            todo.append((board, "demo"))
            if i == 0 and name in alt:
                todo.append((board, f"II<={alt[name] or alt_ii}"))
        if not force and all((name, b, f) in done for b, f in todo):
            rows += [done[(name, b, f)] for b, f in todo]
            continue
        g, info = example_model(name, work, epochs_cap, log)
        x = examples.test_inputs(name, g)[0][:max_vectors]
        settings = pipeline.resolve_settings(ex, {})
        for board, kind in todo:
            key = (name, board, kind)
            if key in done and not force:
                rows.append(done[key])
                continue
            row = {"example": name, "board": board, "kind": kind, **{
                k: info.get(k) for k in ("model", "path", "epochs", "quant_accuracy",
                                         "quant_rmse", "train_seconds_cpu")}}
            t0, c0 = time.monotonic(), _cpu()
            try:
                if kind == "demo":
                    fold = pipeline.plan(ex, g, settings, boards=[board])["boards"][board]
                    opts = {"folding": "none" if not fold else dict(fold)}
                else:
                    opts = {"target_ii": int(kind.split("<=")[1])}
                r = estimate_energy(g, board, work / "examples" / name / board / kind.replace(
                    "<=", "le"), inputs=x, **opts)
                row.update({
                    "folding": "unrolled" if r["folding"]["mode"] == "unrolled" else
                    r["folding"]["folding"], "status": "ok", "vectors": r["vectors"],
                    "energy_nj_per_inference": r["energy_nj_per_inference"],
                    "total_energy_nj_per_inference": r["total_energy_nj_per_inference"],
                    "dynamic_power_mw_board_clock": r["dynamic_power_mw_board_clock"],
                    "static_power_mw": r["static_power_mw"], "clock_mhz": r["clock_mhz"],
                    "cycles_per_inference": r["activity"]["cycles_per_inference"],
                    "inferences_per_s_board_clock": r["inferences_per_s_board_clock"],
                    "breakdown": r["breakdown"], "cells": r["cells"],
                    "gate_level_mismatches": r["gate_level_mismatches"],
                    "error_band": r["error_band"]["relative"], "seconds": r["seconds"]})
            except Exception as e:      # a row with its error; the others go on
                from ddnhw.energy.estimate import DoesNotFit
                fits = isinstance(e, DoesNotFit) or str(e).startswith("nothing fits")
                row.update(status="does not fit" if fits else "error",
                           error=f"{type(e).__name__}: {e}"[:600])
            row["seconds_wall"] = round(time.monotonic() - t0, 1)
            row["seconds_cpu"] = round(_cpu() - c0, 1)
            rows.append(row)
            done[key] = row
            save(rows)
            log(f"{name} {board} {kind}: {row['status']} "
                + (f"{row['energy_nj_per_inference']:.3f} nJ/inference, "
                   f"{row['gate_level_mismatches']} mismatches" if row["status"] == "ok" else
                   row["error"][:200])
                + f" ({row['seconds_wall']} s wall, {row['seconds_cpu']} s CPU)")
    return rows


def _cells_short(c):
    def n(*keys):
        return sum(v for k, v in c.items() if any(s in k for s in keys))
    parts = [f"{n('LUT4')} LUT4", f"{n('CARRY', 'CCU2')} carry", f"{n('DFF', 'TRELLIS_FF')} FF"]
    for label, keys in (("DSP", ("MAC16", "MULT18")), ("BRAM", ("RAM40", "DP16KD")),
                        ("SPRAM", ("SPRAM",))):
        if n(*keys):
            parts.append(f"{n(*keys)} {label}")
    return ", ".join(parts)


def _fold_text(f):
    if f in (None, "unrolled"):
        return "unrolled"
    if isinstance(f, dict):
        return "folded " + ", ".join(f"{k} {tuple(v)}" for k, v in f.items() if v)
    return str(f)


def examples_markdown(rows, info):
    out = [f"# Energy per inference of every example (ddnhw.energy), {info['date']}", "",
           f"Machine: {info['cpus']} cores {info['processor']}, Python {info['python']}, load "
           f"average at start {info['load_average']:.1f} (shared machine: wall times are "
           "inflated; CPU time = this process + its tools: yosys, Verilator, the C++ "
           "compiler). Energy: dynamic, gate-level netlist on the example's test split "
           "(first N vectors), at the board clock; the model band is ±30 % (iCE40UP5K) and a "
           "factor 3 (ECP5). `demo`: the folding `ddnhw demo` builds for that board; `II<=N`: "
           "the planner's folding for that II. Reproduce: `python bench/energy.py --examples "
           "all`.", "",
           "| example | board | circuit | model (test accuracy) | vectors | nJ/inference | mW "
           "(dyn + static) | cycles/inference | cells | gate-level mismatches | time wall / CPU "
           "|", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = r.get("quant_accuracy")
        model = (r.get("model") or "").replace("trained here, ", "trained ")
        model += f" ({acc:.1%})" if acc is not None else (
            f" (RMSE {r['quant_rmse']:.3f})" if r.get("quant_rmse") is not None else "")
        t = f"{r['seconds_wall']:.0f} s / {r['seconds_cpu']:.0f} s"
        if r.get("status") != "ok":
            msg = r.get("error", "").split(": ", 1)[-1].replace("|", "/").replace("\n", " ")
            out.append(f"| {r['example']} | {r['board']} | {r['kind']} | {model} | | "
                       f"**{r['status']}**: {msg[:220]} | | | | | {t} |")
            continue
        static = "" if r["static_power_mw"] is None else f" + {r['static_power_mw']:.2f}"
        out.append(f"| {r['example']} | {r['board']} | {r['kind']}: {_fold_text(r['folding'])} "
                   f"| {model} | {r['vectors']} | {r['energy_nj_per_inference']:.3f} | "
                   f"{r['dynamic_power_mw_board_clock']:.2f}{static} | "
                   f"{r['cycles_per_inference']:.1f} | {_cells_short(r['cells'])} | "
                   f"{r['gate_level_mismatches']} | {t} |")
    out += ["", "## Per example (the README table)", ""] + compact_table(rows)
    ok = [r for r in rows if r.get("status") == "ok"]
    neq = sum("differs from golden" in r.get("error", "") for r in rows)
    out += ["", f"{len(ok)} of {len(rows)} rows estimated, each with gate-level == golden on "
            f"every vector; {neq} rows stopped because the gate-level outputs differed from "
            f"golden, {sum(r.get('status') == 'does not fit' for r in rows)} do not fit; CPU time in total "
            f"{sum(r['seconds_cpu'] for r in rows) / 60:.1f} min (training not included)."]
    return "\n".join(out) + "\n"


def _short_fold(r):
    f = r.get("folding")
    if f in (None, "unrolled") or (isinstance(f, dict) and not any(f.values())):
        return "unrolled"
    if isinstance(f, dict):
        return "folded " + " ".join(f"{k}{tuple(v)}".replace(" ", "") for k, v in f.items() if v)
    return str(f)


def compact_table(rows):
    """One line per example: the UP5K circuit(s) and the ECP5 one, nJ/inference and cycles."""
    by = {}
    for r in rows:
        by.setdefault(r["example"], []).append(r)

    def cell(r):
        if r is None:
            return "—"
        if r.get("status") != "ok":
            m = re.search(r"differs from golden on (\d+) of (\d+)", r.get("error", ""))
            if m:
                return f"**gate-level ≠ golden** on {m[1]} of {m[2]} vectors"
            m = (re.search(r"needs (\d+) (\w+) \(resource estimate\), the board has (\d+)",
                           r.get("error", "")) or
                 re.search(r"smallest footprint is (\w+) (\d+) of (\d+)", r.get("error", "")))
            if m and m.re.pattern.startswith("needs"):
                return f"does not fit ({m[1]} {m[2]} estimated, the board has {m[3]})"
            if m:
                return f"does not fit (smallest folding: {m[2]} {m[1]} of {m[3]} usable)"
            return r["status"] + ": " + r.get("error", "").split(": ", 1)[-1][:100]
        return ((f"{r['kind']}: " if r["kind"] != "demo" else "")
                + f"{r['energy_nj_per_inference']:,.2f} nJ, {r['cycles_per_inference']:,.1f} "
                f"cyc ({_short_fold(r)})")
    out = ["| example | accuracy of the model used | UP5K, as `ddnhw demo` builds | UP5K, "
           "folded (the planner's, II<=N) | ECP5-85F, as `ddnhw demo` builds | circuits with "
           "gate-level == golden |",
           "|---|---|---|---|---|---|"]
    for name, rs in by.items():
        get = {(r["board"], r["kind"]): r for r in rs}
        up = get.get(("icebreaker", "demo"))
        alts = [r for (b, k), r in get.items() if b == "icebreaker" and k != "demo"]
        alt = next((r for r in alts if r.get("status") == "ok"), alts[0] if alts else None)
        ecp = next((r for (b, k), r in get.items() if b != "icebreaker" and k == "demo"), None)
        acc = rs[0].get("quant_accuracy")
        acc = f"{acc:.1%}" if acc is not None else (f"RMSE {rs[0]['quant_rmse']:.3f}" if
                                                     rs[0].get("quant_rmse") is not None else "")
        ep = rs[0].get("epochs")
        acc += " (shipped)" if rs[0].get("model") == "shipped" else f" ({ep} epochs)"
        ok = sum(r.get("status") == "ok" and r["gate_level_mismatches"] == 0 for r in rs)
        ran = sum(r.get("status") == "ok" or "differs from golden" in r.get("error", "")
                  for r in rs)
        out.append(f"| {name} | {acc} | {cell(up)} | {cell(alt)} | {cell(ecp)} | "
                   f"{ok} of {ran} |")
    return out


def run_model(path, board, foldings, work, spec, log=print):
    import resource
    from ddnhw.energy import estimate_energy
    from ddnhw.energy.objective import candidate_foldings
    from ddnhw.ir import load_graph
    g = load_graph(path)
    x, used = inputs_for(g, spec)
    cands = []
    for f in foldings:
        if f == "unrolled":
            cands.append(("unrolled", "none"))
        elif f == "auto":
            cands.append(("auto", "auto"))
        else:
            ii = int(f)
            for label, fold in candidate_foldings(g, board, None):
                if label == f"II {ii}":
                    cands.append((label, fold))
    rows = []
    for label, fold in cands:
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        r = estimate_energy(g, board, work / Path(path).stem / label.replace(" ", ""),
                            inputs=x, folding=fold)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
               + s1.ru_utime + s1.ru_stime - s0.ru_utime - s0.ru_stime)
        row = {"model": str(path), "board": board, "folding": label, "inputs": used,
               "vectors": r["vectors"], "energy_nj_per_inference": r["energy_nj_per_inference"],
               "dynamic_power_mw_board_clock": r["dynamic_power_mw_board_clock"],
               "static_power_mw": r["static_power_mw"],
               "cycles_per_inference": r["activity"]["cycles_per_inference"],
               "inferences_per_s_board_clock": r["inferences_per_s_board_clock"],
               "breakdown": r["breakdown"], "cells": r["cells"],
               "gate_level_mismatches": r["gate_level_mismatches"],
               "seconds_wall": round(time.monotonic() - t0, 1), "seconds_cpu": round(cpu, 1),
               "seconds": r["seconds"], "error_band": r["error_band"]["relative"]}
        rows.append(row)
        log(f"{path} {label}: {row['energy_nj_per_inference']:.3f} nJ, "
            f"{row['seconds_wall']} s wall, {row['seconds_cpu']} s CPU")
    return rows


def markdown(rows, info):
    out = [f"# Energy per inference (ddnhw.energy), {info['date']}", "",
           f"Machine: {info['cpus']} cores {info['processor']}, Python {info['python']}, load "
           f"average at start {info['load_average']:.1f} (shared machine: wall times are "
           "inflated; CPU time = this process + its tools).", "",
           "| model | board | folding | inputs | nJ/inference (dynamic) | mW at board clock "
           "(dyn + static) | cycles/inference | cells (LUT4 / carry / FF) | gate == golden | "
           "time wall / CPU |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["cells"]
        lut = sum(v for k, v in c.items() if "LUT" in k)
        car = sum(v for k, v in c.items() if "CARRY" in k or "CCU2" in k)
        ff = sum(v for k, v in c.items() if "DFF" in k or "TRELLIS_FF" in k)
        static = "n/a" if r["static_power_mw"] is None else f"{r['static_power_mw']:.2f}"
        out.append(f"| {Path(r['model']).stem} | {r['board']} | {r['folding']} | {r['inputs']} "
                   f"({r['vectors']}) | {r['energy_nj_per_inference']:.3f} ± "
                   f"{r['error_band']:.0%} | {r['dynamic_power_mw_board_clock']:.2f} + "
                   f"{static} | {r['cycles_per_inference']:.2f} | {lut} / {car} / {ff} | "
                   f"{'yes' if r['gate_level_mismatches'] == 0 else 'NO'} | "
                   f"{r['seconds_wall']:.0f} s / {r['seconds_cpu']:.0f} s |")
    return "\n".join(out) + "\n"


def main():
    p = bench_parser(__doc__, "out/bench_energy")
    p.add_argument("--models", default="examples/digits_mlp.npz")
    p.add_argument("--board", default="icebreaker")
    p.add_argument("--foldings", default="unrolled", help="unrolled, auto and/or IIs")
    p.add_argument("--inputs", default="test")
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--name", default="energy", help="results file stem")
    p.add_argument("--examples", default="",
                   help="comma-separated example names or 'all' (bench/results/"
                        "energy_examples.*; --boards, --epochs, --alt, --max-vectors)")
    p.add_argument("--boards", default="icebreaker,ulx3s-85f")
    p.add_argument("--epochs", type=int, default=5, help="--examples: epochs cap for training")
    p.add_argument("--max-vectors", type=int, default=360)
    p.add_argument("--alt", default="mlp:32,cnn1d:128",
                   help="--examples: also a folded row on the first board for these examples "
                        "(name or name:II; the planner's folding for that II, default --alt-ii)")
    p.add_argument("--alt-ii", type=int, default=32)
    p.add_argument("--force", action="store_true", help="--examples: recompute every row")
    a = p.parse_args()
    work, out = bench_dirs(a)
    info = machine()
    if a.examples:
        from ddnhw import examples
        names = list(examples.NAMES) if a.examples == "all" else a.examples.split(",")
        for n in names:
            examples.get(n)
        res_json = out / "energy_examples.json"
        done = {}
        if res_json.exists():
            done = {(r["example"], r["board"], r["kind"]): r
                    for r in json.loads(res_json.read_text())["rows"]}
        boards = a.boards.split(",")
        alt = {n.split(":")[0]: (int(n.split(":")[1]) if ":" in n else None)
               for n in a.alt.split(",") if n}
        kinds = {"demo"} | {f"II<={v or a.alt_ii}" for v in alt.values()}
        # the rows of the examples run now that this run would not make (an older --alt) go
        allrows = {k: r for k, r in done.items() if k[0] not in names or
                   (k[1] in boards and (k[2] == "demo" or (k[1] == boards[0] and k[0] in alt
                                                         and k[2] in kinds)))}
        done = {k: r for k, r in allrows.items() if r.get("status") != "error"}   # retried

        def save(rows):
            for r in rows:
                allrows[(r["example"], r["board"], r["kind"])] = r
            order = {n: i for i, n in enumerate(examples.NAMES)}
            ordered = sorted(allrows.values(), key=lambda r: (order.get(r["example"], 99),
                                                               r["board"] != "icebreaker",
                                                               r["kind"]))
            res_json.write_text(json.dumps({**info, "rows": ordered}, indent=1) + "\n")
            (out / "energy_examples.md").write_text(examples_markdown(ordered, info))
        rows = example_rows(names, boards, work, epochs_cap=a.epochs,
                            max_vectors=a.max_vectors, alt=alt, alt_ii=a.alt_ii, done=done, force=a.force, save=save)
        save(rows)
        print((out / "energy_examples.md").read_text())
        return 0
    if a.calibrate:
        from ddnhw.energy.calibration import calibrate
        c = calibrate(work / "calibration")
        c["predicted_ua"] = {k: list(v) for k, v in c["predicted_ua"].items()}
        (out / "energy_calibration.json").write_text(json.dumps({**info, **c}, indent=1) + "\n")
        for k, v in c["relative_error"].items():
            print(f"{k}: measured {c['predicted_ua'][k][0]} µA, model "
                  f"{c['predicted_ua'][k][1]:.1f} µA ({v:+.1%})")
        print("coefficients (pJ):", c["coefficients_pj"])
        return 0
    rows = []
    for m in a.models.split(","):
        rows += run_model(ROOT / m if not Path(m).is_absolute() else Path(m), a.board,
                          a.foldings.split(","), work, a.inputs)
    (out / f"{a.name}.json").write_text(json.dumps({**info, "rows": rows}, indent=1) + "\n")
    (out / f"{a.name}.md").write_text(markdown(rows, info))
    print(markdown(rows, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
