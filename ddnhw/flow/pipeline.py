"""The one pipeline every example runs through: train → export → golden checks → folding plan →
generate → Amaranth simulation → RTL cosimulation → build → summary.

An example is data (:class:`Example`): a data set loader, a trainer (model factory and
training), its training settings, default boards and folding policy, and how many vectors to
check. The pipeline knows no data set and no model kind; :mod:`ddnhw.examples` holds the
records. Each step is a function of its own, the same for every example; :func:`run` chains
them and returns the summary, whose keys are :data:`SUMMARY_KEYS` for every example.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ddnhw import DdnhwError, golden
from ddnhw.ir import Graph, save_graph

import ddnhw.flow.core as core

__all__ = ["Example", "Trained", "Vectors", "Progress", "SUMMARY_KEYS", "SIMULATORS",
           "resolve_settings", "resolve_simulator", "train", "export", "train_model",
           "test_inputs", "vectors", "check_golden", "plan", "generate", "simulate",
           "cosimulate", "build", "summary_rows", "run"]


@dataclass(frozen=True)
class Example:
    """One example, as data.

    - ``name`` (``ddnhw demo --model NAME``), ``title`` (one line, for progress and help),
      ``dataset`` (the data set's name, written into the model file's meta);
    - ``load(seed) -> (x_train, y_train, x_test, y_test)``: ``x`` float ``(N, features)`` in
      [0, 1], ``y`` integer class labels; the same split for the same seed;
    - ``trainer(example, data, settings, seed, log) -> Trained``: model factory and training
      (QAT) on ``data`` (``load``'s tuple) with ``settings``, exporting the IR graph;
    - ``settings``: every training setting and its default (``epochs``, ``bits``, ...); a
      setting not listed here is refused by :func:`resolve_settings`;
    - ``boards``: default boards to build for; ``folding``: default folding policy,
      ``"auto"`` (fully unrolled when it fits the board, else folded to fit:
      :func:`ddnhw.flow.decide`), ``"none"`` (fully unrolled) or a function
      ``(graph, settings) -> {layer: (pe, simd)}`` (the same folding for the RTL and every
      board);
    - ``random_vectors``: random and extreme inputs checked besides the test split (integer
      mode, cosimulation); ``sim_vectors``: test inputs run in the Amaranth simulator;
    - ``task``: ``"classification"`` (``y`` class labels, scored by accuracy) or
      ``"regression"`` (``y`` real targets, one model output, scored by RMSE; the model file's
      meta maps outputs to targets: :mod:`ddnhw.flow.evaluate`).
    """
    name: str
    title: str
    dataset: str
    load: Callable[[int], tuple]
    trainer: Callable[..., "Trained"]
    settings: Mapping[str, Any]
    boards: tuple = ("icebreaker",)
    folding: Any = "auto"
    random_vectors: int = 40
    sim_vectors: int = 4
    task: str = "classification"


@dataclass
class Trained:
    """What a trainer returns: the exported ``graph``; ``float_accuracy`` and
    ``qat_accuracy`` (PyTorch float and fake-quantized models on the test split; for a
    regression model their RMSEs in the target's units);
    ``seconds`` of training; the PyTorch ``model``; ``int_forward(x) -> outputs``: the
    PyTorch integer mode on integer inputs in the graph's layout (``None``: not checked);
    ``info``: model description added to the summary's ``model``."""
    graph: Graph
    float_accuracy: float
    qat_accuracy: float
    seconds: float
    model: Any = None
    int_forward: Callable[[np.ndarray], np.ndarray] | None = None
    info: dict = field(default_factory=dict)
    float_model: Any = None     # the float model before QAT, stored in the model file


@dataclass
class Vectors:
    """The checked inputs: the test split ``x_test`` (integer codes) with labels ``y_test``,
    and ``x_random`` (random inputs led by extremes, :func:`ddnhw.flow.random_vectors`)."""
    x_test: np.ndarray
    y_test: np.ndarray
    x_random: np.ndarray

    @property
    def all(self) -> np.ndarray:
        return np.concatenate([self.x_test, self.x_random])


class Progress:
    """Step-by-step progress lines on stderr: ``[2/5] generating RTL ...``, then ``done in
    1.2 s``. ``total`` may be set once the number of steps is known."""

    def __init__(self, total=None, quiet=False):
        self.total, self.k, self.quiet = total, 0, quiet
        self.t0 = None

    def step(self, what):
        self.done()
        self.k += 1
        self.t0 = time.perf_counter()
        self.log(f"[{self.k}/{self.total or '?'}] {what} ...")

    def done(self, extra=""):
        if self.t0 is not None:
            self.log(f"      done in {time.perf_counter() - self.t0:.1f} s{extra}")
            self.t0 = None

    def log(self, msg):
        if not self.quiet:
            print(msg, file=sys.stderr, flush=True)


SIMULATORS = ("auto", "verilator", "icarus", "none")

# Every summary (``summary.json``, ``ddnhw demo --json``) has exactly these keys, whatever the
# example; a value that does not apply (no board, no cosimulation) is None.
SUMMARY_KEYS = (
    "example", "title", "dataset", "model", "seed", "output_dir",
    "float_accuracy", "qat_accuracy", "quant_accuracy", "sim_accuracy", "rtl_accuracy",
    "train_seconds", "generate_seconds",
    "int_mode_vectors", "int_mode_mismatches", "sim_vectors", "sim_mismatches",
    "simulator", "vectors_checked", "cosim_mismatches", "cosim_cycles",
    "folding", "latency_cycles", "ii_cycles", "estimate", "designs", "boards",
    "board", "luts", "ffs", "dsps", "brams", "fmax_mhz", "clock_mhz", "timing_met",
    "inferences_per_s", "mismatches", "energy_nj_per_inference", "power_mw",
    # regression examples (task "regression"): RMSE in the target's units instead of accuracy
    "task", "float_rmse", "quant_rmse", "rtl_rmse")


class _Quiet(Progress):
    def __init__(self):
        super().__init__(quiet=True)


# -- steps ---------------------------------------------------------------------------------------

def resolve_settings(example: Example, overrides: Mapping | None = None) -> dict:
    """The example's settings with ``overrides`` (None values ignored); an unknown setting
    raises :class:`DdnhwError` naming it and the example's settings."""
    s = {k: (list(v) if isinstance(v, list) else v) for k, v in example.settings.items()}
    for k, v in (overrides or {}).items():
        if v is None:
            continue
        if k not in s:
            raise DdnhwError(f"example {example.name!r} has no setting {k!r}; its settings: "
                             f"{', '.join(sorted(s))}")
        s[k] = v
    return s


def resolve_simulator(choice="auto") -> str:
    """``"auto"``: Verilator when installed, else ``"none"``; other choices as given."""
    if choice not in SIMULATORS:
        raise DdnhwError(f"unknown simulator {choice!r}; choose one of {SIMULATORS}")
    if choice != "auto":
        return choice
    from ddnhw.host.cosim import check_simulator
    try:
        check_simulator("verilator")
        return "verilator"
    except DdnhwError:
        return "none"


def train(example: Example, settings: Mapping | None = None, *, seed=0, log=None) -> Trained:
    """Load the example's data and train its model (``settings`` override the example's)."""
    try:
        import torch
    except ImportError:
        raise DdnhwError("PyTorch is needed for training: pip install 'ddnhw[train]' "
                         "(torch==2.13.0)") from None
    s = resolve_settings(example, settings)
    torch.set_num_threads(1)  # deterministic, and the same result on every machine
    return example.trainer(example, example.load(seed), s, seed, log)


def export(trained: Trained, path) -> Path:
    """Write the model file (``.npz``) of ``trained``; returns its path."""
    path = Path(path)
    core.ensure_writable_dir(path.parent if path.parent != Path("") else Path("."))
    save_graph(trained.graph, path)
    if trained.float_model is not None:
        from ddnhw.quant import float_model
        float_model.attach(path, trained.float_model)
    return path


def test_inputs(example: Example, graph: Graph, seed=0):
    """The example's test split as ``graph``'s integer input codes (reshaped to its input shape,
    then :func:`ddnhw.golden.quantize_input`), and its labels."""
    _, _, xte, yte = example.load(seed)
    x = np.asarray(xte).reshape((len(xte),) + tuple(graph.input.shape))
    return golden.quantize_input(graph, x), yte


def vectors(example: Example, graph: Graph, *, seed=0, random=None) -> Vectors:
    """The test split and ``random`` (default: the example's) random/extreme inputs."""
    x, y = test_inputs(example, graph, seed)
    n = example.random_vectors if random is None else random
    return Vectors(x, y, core.random_vectors(graph, n, seed) if n else x[:0])


def _regression(graph: Graph) -> bool:
    return graph.meta.get("task") == "regression"


def score(graph: Graph, outputs, y):
    """``(accuracy, rmse)`` of ``graph``'s integer ``outputs`` against ``y``: the accuracy of
    the argmax for a classifier (rmse None), the RMSE in the target's units for a regression
    model (meta ``task``; accuracy None)."""
    out = np.asarray(outputs)
    if _regression(graph):
        from ddnhw.flow.evaluate import outputs_to_values
        return None, float(np.sqrt(np.mean((outputs_to_values(graph, out) - y) ** 2)))
    return float(np.mean(np.argmax(out.reshape(len(out), -1), -1) == y)), None


def check_golden(trained: Trained, vec: Vectors) -> dict:
    """Golden accuracy (regression: RMSE) on the test split, and how many of all the vectors
    the PyTorch integer mode computes differently from golden in any output (0 expected)."""
    g = trained.graph
    acc, rmse = score(g, golden.run(g, vec.x_test), vec.y_test)
    out = {"quant_accuracy": acc, "quant_rmse": rmse,
           "int_mode_vectors": None, "int_mode_mismatches": None}
    if trained.int_forward is not None:
        x = vec.all
        a = np.asarray(trained.int_forward(x))
        b = golden.run(g, x)
        out.update(int_mode_vectors=len(x), int_mode_mismatches=int(
            np.sum(np.any(a.reshape(b.shape) != b, axis=tuple(range(1, b.ndim))))))
    return out


def plan(example: Example, graph: Graph, settings: Mapping, boards=(), folding=None) -> dict:
    """The circuits to check and build: ``{"family", "rtl": base folding, "boards": {board:
    folding}}`` (a folding is ``{layer: (pe, simd)}`` or None for fully unrolled). ``folding``
    (default: the example's policy): ``"auto"``/``"none"``: the RTL is fully unrolled and each
    board gets :func:`ddnhw.flow.decide`'s plan; a ``{layer: (pe, simd)}`` dict or a
    function ``(graph, settings) -> dict``: that folding for the RTL and every board."""
    policy = example.folding if folding is None else folding
    if callable(policy):
        policy = policy(graph, settings)
    if isinstance(policy, Mapping):
        policy = {k: tuple(v) for k, v in policy.items()} or "none"
    base = dict(policy) if isinstance(policy, dict) else None
    per_board, family = {}, None
    for b in boards:
        _, p = core.decide(graph, b, policy)
        per_board[b] = p["folding"]
        family = family or p["family"]
    return {"family": family, "rtl": base, "boards": per_board}


def generate(graph: Graph, rtl_dir, folding=None, family=None) -> dict:
    """Verilog + manifest of ``graph`` with ``folding`` into ``rtl_dir``; the manifest, with
    ``seconds`` added."""
    t = time.perf_counter()
    man = core.generate(graph, rtl_dir, folding=folding, family=family)
    return {**man, "seconds": time.perf_counter() - t}


def simulate(graph: Graph, x, y, *, folding=None, family=None, seed=0) -> dict:
    """Inputs ``x`` (labels ``y``) through the lowered network in the Amaranth simulator under
    random idle/backpressure: ``{"vectors", "mismatches", "accuracy"}``."""
    options = {"folding": dict(folding)} if folding else {}
    if family:
        options["family"] = family
    r = core.sim_check(graph, x, seed=seed, **options)
    return {"vectors": len(x), "mismatches": r["mismatches"],
            "accuracy": score(graph, r["outputs"], y)[0]}


def cosimulate(graph: Graph, rtl_dir, vec: Vectors, *, simulator, seed=0, build_dir=None) -> dict:
    """All the vectors through the RTL in ``rtl_dir`` on ``simulator`` under 30 % idle / 30 %
    backpressure, compared with golden: ``{"vectors", "mismatches", "cycles", "accuracy"
    (test split), "message"}``."""
    r = core.cosim_check(graph, vec.all, rtl_dir, simulator=simulator, seed=seed,
                         build_dir=build_dir)
    n = len(vec.x_test)
    acc, rmse = score(graph, r["outputs"][:n], vec.y_test) if len(r["outputs"]) >= n \
        else (None, None)
    return {"vectors": len(vec.all), "mismatches": r["mismatches"], "cycles": r["cycles"],
            "accuracy": acc, "rmse": rmse, "message": r["message"]}


def build(graph: Graph, board: str, outdir, folding=None) -> dict:
    """Bitstream for ``board`` with exactly ``folding`` (None: fully unrolled), so the built
    circuit is the cosimulated one; the report of :func:`ddnhw.flow.build`."""
    return core.build(graph, board, outdir, allow_timing_failure=True,
                      folding="none" if not folding else dict(folding))


def train_model(example: Example, path, settings: Mapping | None = None, *, seed=0,
                log=None) -> dict:
    """Train the example's model and write its model file to ``path``; returns
    ``float_accuracy``, ``qat_accuracy``, ``quant_accuracy`` (golden, test split),
    ``train_seconds``, ``model`` and ``path``."""
    t = train(example, settings, seed=seed, log=log)
    export(t, path)
    x, y = test_inputs(example, t.graph, seed)
    acc, rmse = score(t.graph, golden.run(t.graph, x), y)
    return {"float_accuracy": t.float_accuracy, "qat_accuracy": t.qat_accuracy,
            "quant_accuracy": acc, "quant_rmse": rmse,
            "train_seconds": t.seconds, "model": {**resolve_settings(example, settings),
                                                  **t.info}, "path": str(path)}


def _folding_json(f):
    return None if not f else {k: (list(v) if v is not None else None) for k, v in f.items()}


def _board_fields(reports: dict) -> dict:
    first = next(iter(reports.values()), {})
    out = {"board": next(iter(reports), None),
           **{k: first.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz",
                                        "clock_mhz", "timing_met")}}
    out["inferences_per_s"] = first.get("inferences_per_s")
    e = first.get("energy") or {}
    out["energy_nj_per_inference"] = e.get("energy_nj_per_inference")
    out["power_mw"] = e.get("power_mw_board_clock")
    return out


# -- the pipeline --------------------------------------------------------------------------------

def run(example: Example, out, *, settings: Mapping | None = None, seed=0, boards=None,
        folding=None, simulator="auto", random=None, sim_vectors=None,
        progress: Progress | None = None, energy=False) -> dict:
    """Run ``example`` end to end into folder ``out``: train (``settings`` override the
    example's), write ``model.npz``, check golden accuracy and PyTorch integer mode == golden
    on the test split plus ``random`` (default: the example's) random/extreme inputs, plan the
    folding (``folding``: see :func:`plan`) for ``boards`` (default: the example's; ``()``: no
    synthesis), generate the RTL (``rtl/``), run ``sim_vectors`` test inputs in the Amaranth
    simulator, cosimulate every vector on ``simulator`` (``"auto"``: Verilator when installed;
    ``"none"``: skip), generate and cosimulate each board's folded circuit where it differs from
    ``rtl/`` (``rtl-BOARD/``), and build each board with exactly the cosimulated circuit.

    Returns the summary (also ``<out>/summary.json``), keys :data:`SUMMARY_KEYS`;
    ``mismatches`` counts every integer-mode, simulator and RTL difference from golden. Raises
    :class:`DdnhwError` after the golden checks (summary written) when the lowering lacks an
    op of the model."""
    p = progress or _Quiet()
    out = core.ensure_writable_dir(out)
    s = resolve_settings(example, settings)
    boards = tuple(example.boards if boards is None else boards)
    sim_n = example.sim_vectors if sim_vectors is None else sim_vectors
    simulator = resolve_simulator(simulator)
    if p.total is None:
        p.total = 2 + (sim_n > 0) + (simulator != "none") + len(boards) * (1 + bool(energy))
    summary = dict.fromkeys(SUMMARY_KEYS)
    summary.update(example=example.name, title=example.title, dataset=example.dataset,
                   seed=seed, output_dir=str(out.resolve()), simulator=simulator, designs={},
                   boards={}, mismatches=0)

    shown = ", ".join(f"{k} {v}" for k, v in s.items() if isinstance(v, (int, float, str)))
    p.step(f"training {example.title} ({shown}), QAT")
    t = train(example, s, seed=seed, log=None if p.quiet else p.log)
    export(t, out / "model.npz")
    vec = vectors(example, t.graph, seed=seed, random=random)
    gold = check_golden(t, vec)
    summary.update(model={**s, **t.info}, train_seconds=t.seconds, task=example.task, **gold)
    if _regression(t.graph):   # the trainer's scores are RMSEs
        summary.update(float_rmse=t.float_accuracy)
        what = f"RMSE: float {t.float_accuracy:.4f}, quantized (golden) {gold['quant_rmse']:.4f}"
    else:
        summary.update(float_accuracy=t.float_accuracy, qat_accuracy=t.qat_accuracy)
        what = f"float {t.float_accuracy:.4f}, quantized (golden) {gold['quant_accuracy']:.4f}"
    summary["mismatches"] += gold["int_mode_mismatches"] or 0
    p.done(f": {what}"
           + ("" if gold["int_mode_vectors"] is None else
              f", integer-mode PyTorch vs golden: {gold['int_mode_mismatches']} of "
              f"{gold['int_mode_vectors']} differ"))
    if not core.lowering_available(t.graph):
        core.write_json_atomic(out / "summary.json", summary)
        raise DdnhwError(f"demo --model {example.name}: the model and its golden check are in "
                         f"{out}, but this version has no hardware lowering of "
                         f"{sorted({n.op for n in t.graph.nodes})}")

    pl = plan(example, t.graph, s, boards, folding)
    p.step(f"generating RTL (Amaranth → Verilog; folding {pl['rtl'] or 'none'})")
    man = generate(t.graph, out / "rtl", pl["rtl"], pl["family"])
    summary.update(folding=_folding_json(pl["rtl"]), latency_cycles=man["latency_cycles"],
                   ii_cycles=man["ii_cycles"], estimate=man["estimate"],
                   generate_seconds=man["seconds"])
    designs = {"rtl": {"folding": pl["rtl"], "manifest": man}}

    x = vec.x_test[:sim_n]
    if len(x):
        p.step(f"Amaranth simulation of {len(x)} test inputs under random idle/backpressure")
        r = simulate(t.graph, x, vec.y_test[:len(x)], folding=pl["rtl"], family=pl["family"],
                     seed=seed)
        p.done(f": {r['mismatches']} mismatches")
        summary.update(sim_vectors=r["vectors"], sim_mismatches=r["mismatches"],
                       sim_accuracy=r["accuracy"])
        summary["mismatches"] += r["mismatches"]

    def check(name):
        c = cosimulate(t.graph, out / name, vec, simulator=simulator, seed=seed,
                       build_dir=out / "sim" / name)
        if c["mismatches"]:
            p.log(f"      RTL differs from golden: {c['message']}")
        designs[name]["cosim"] = {k: c[k] for k in ("vectors", "mismatches", "cycles")}
        summary["mismatches"] += c["mismatches"]
        return c

    if simulator != "none":
        p.step(f"{simulator} cosimulation of {len(vec.x_test)} test + {len(vec.x_random)} "
               f"random inputs (extremes included) under random idle/backpressure")
        c = check("rtl")
        p.done(f": {c['mismatches']} mismatches, {c['cycles']} cycles")
        summary.update(vectors_checked=c["vectors"], cosim_mismatches=c["mismatches"],
                       cosim_cycles=c["cycles"], rtl_accuracy=c["accuracy"],
                       rtl_rmse=c["rmse"])

    reports = {}
    for b in boards:
        fold = pl["boards"][b]
        name = next((k for k, d in designs.items() if d["folding"] == fold), f"rtl-{b}")
        p.step(f"{b}: {'unrolled' if not fold else f'folded {fold}'}; Yosys + nextpnr")
        if name not in designs:   # another circuit: generate and cosimulate it before building
            designs[name] = {"folding": fold,
                             "manifest": generate(t.graph, out / name, fold, pl["family"])}
            if simulator != "none":
                check(name)
        designs[name].setdefault("boards", []).append(b)
        reports[b] = build(t.graph, b, out / "build" / b, fold)
        r = reports[b]
        p.done(f": {r.get('luts')} LUTs, {r.get('ffs')} FFs, {r.get('dsps')} DSPs, "
               f"{r.get('brams')} BRAMs, Fmax {r.get('fmax_mhz')} MHz")
        if energy:   # ddnhw.energy: the gate-level netlist on the test split
            from ddnhw.energy import estimate_energy
            p.step(f"{b}: energy per inference (gate-level netlist, {len(vec.x_test)} test "
                   f"inputs)")
            e = estimate_energy(t.graph, b, out / "energy" / b, inputs=vec.x_test,
                                fmax_mhz=r.get("fmax_mhz"),
                                folding="none" if not fold else dict(fold))
            r["energy"] = {k: e[k] for k in (
                "energy_nj_per_inference", "total_energy_nj_per_inference",
                "dynamic_power_mw_board_clock", "power_mw_board_clock", "power_mw_fmax",
                "static_power_mw", "breakdown", "gate_level_mismatches", "error_band")}
            summary["mismatches"] += e["gate_level_mismatches"]
            p.done(f": {e['energy_nj_per_inference']:.3f} nJ per inference")
    p.done()
    summary["designs"] = {
        k: {"folding": _folding_json(d["folding"]), "boards": d.get("boards", []),
            "latency_cycles": d["manifest"]["latency_cycles"],
            "ii_cycles": d["manifest"]["ii_cycles"], "cosim": d.get("cosim")}
        for k, d in designs.items()}
    summary["boards"] = reports
    summary.update(_board_fields(reports))
    core.write_json_atomic(out / "summary.json", summary)
    return summary


def _fmt(v, pct=False):
    if v is None:
        return "n/a"
    if pct:
        return f"{100 * v:.2f} %"
    if isinstance(v, float):
        return f"{v:,.2f}" if v < 1e4 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _fmt_rmse(v):
    return "n/a" if v is None else f"{v:.4f}"


def summary_rows(s: Mapping) -> list:
    """The summary as ``(label, value)`` rows of the demo's table."""
    if s.get("task") == "regression":
        rows = [("float RMSE", _fmt_rmse(s["float_rmse"])),
                ("quantized RMSE (golden)", _fmt_rmse(s["quant_rmse"]))]
    else:
        rows = [("float accuracy", _fmt(s["float_accuracy"], True)),
                ("quantized accuracy (golden)", _fmt(s["quant_accuracy"], True))]
    if s["int_mode_vectors"] is not None:
        rows.append(("integer-mode PyTorch vs golden",
                     f"{s['int_mode_mismatches']} of {s['int_mode_vectors']} differ"))
    if s["sim_vectors"] is not None:
        rows.append(("Amaranth sim vs golden",
                     f"{s['sim_mismatches']} of {s['sim_vectors']} differ"))
    if s["vectors_checked"] is not None:
        rows += [(f"RTL RMSE ({s['simulator']} cosim)", _fmt_rmse(s["rtl_rmse"]))
                 if s.get("task") == "regression" else
                 (f"RTL accuracy ({s['simulator']} cosim)", _fmt(s["rtl_accuracy"], True)),
                 ("RTL vs golden mismatches",
                  f"{s['cosim_mismatches']} of {s['vectors_checked']} vectors")]
    rows += [("folding (pe, simd)", str(s["folding"] or "unrolled")),
             ("latency", f"{s['latency_cycles']} cycles"),
             ("initiation interval", f"{s['ii_cycles']} cycle(s)")]
    for b, r in s["boards"].items():
        d = next((k for k, d in s["designs"].items() if b in d["boards"]), None)
        if d != "rtl":
            f = s["designs"][d]
            rows.append((f"{b}: folding, II", f"{f['folding'] or 'unrolled'}, "
                                              f"{f['ii_cycles']} cycle(s)"))
        rows += [(f"{b}: LUTs / FFs / DSPs / BRAMs",
                  f"{r['luts']} / {r['ffs']} / {r['dsps']} / {r['brams']}"),
                 (f"{b}: Fmax vs board clock",
                  f"{_fmt(r['fmax_mhz'])} MHz vs {r['clock_mhz']} MHz "
                  f"({'met' if r['timing_met'] else 'MISSED'})"),
                 (f"{b}: inferences/s at Fmax", _fmt(r.get("inferences_per_s")))]
        e = r.get("energy")
        if e:
            rows += [(f"{b}: energy per inference (dynamic)",
                      f"{e['energy_nj_per_inference'] / 1000:.4f} µJ "
                      f"(±{e['error_band']['relative']:.0%})"),
                     (f"{b}: power at board clock",
                      f"{_fmt(e['power_mw_board_clock'] or e['dynamic_power_mw_board_clock'])}"
                      f" mW")]
    return rows
