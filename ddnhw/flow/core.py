"""The generic steps of the flow as an API: generate, simulate, cosimulate, fold, build.

They know no data set: the examples (:mod:`ddnhw.examples`) bring the data and the models, and
:mod:`ddnhw.flow.pipeline` runs them through these steps. The CLI is a thin layer over both.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ddnhw import DdnhwError, golden
from ddnhw.atomic import write_text
from ddnhw.ir import Graph, load_graph, save_graph
from ddnhw.passes.fold import FOLDINGS

def ensure_writable_dir(path) -> Path:
    """Create ``path`` if needed and check that files can be written into it."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".ddnhw-probe-", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DdnhwError(f"output folder {str(p)!r} is not writable: {e.strerror or e}") from None
    return p


def write_json_atomic(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def random_vectors(graph: Graph, n: int, seed=0) -> np.ndarray:
    """``n`` random input vectors over the full input range, led by all-min, all-max and
    alternating extremes."""
    t = graph.input
    rng = np.random.default_rng(seed)
    x = rng.integers(t.dtype.min, t.dtype.max + 1, size=(n,) + t.shape, dtype=np.int64)
    ext = [np.full(t.shape, t.dtype.min), np.full(t.shape, t.dtype.max)]
    alt = np.where(np.arange(int(np.prod(t.shape))).reshape(t.shape) % 2, t.dtype.max, t.dtype.min)
    ext += [alt, t.dtype.max + t.dtype.min - alt]
    k = min(n, len(ext))
    x[:k] = np.stack(ext[:k])
    return x


def random_images(graph: Graph, n: int, seed=0) -> np.ndarray:
    """``n`` random integer images (input shape ``(H, W, ...)``) in the input range of
    ``graph``; the first ones are all-min, all-max, a min/max checkerboard over (H, W) and its
    inverse."""
    t = graph.input.dtype
    shape = tuple(graph.input.shape)
    x = np.random.default_rng(seed).integers(t.min, t.max + 1, (max(n, 4),) + shape)
    x[0], x[1] = t.min, t.max
    checker = (np.add.outer(np.arange(shape[0]), np.arange(shape[1])) % 2).astype(bool)
    x[2][checker], x[2][~checker] = t.max, t.min
    x[3][checker], x[3][~checker] = t.min, t.max
    return x[:n]


def model_folding(graph: Graph):
    """The folding a model carries (``{layer: (pe, simd) or None}`` from its nodes' ``hw.fold``
    annotations, None: fully unrolled), or ``False`` when no foldable node is annotated."""
    from ddnhw.passes.base import hw_of
    from ddnhw.lower.registry import foldable
    nodes = [n for n in graph.nodes if foldable(n.op) and "fold" in hw_of(n)]
    if not nodes:
        return False
    out = {n.name: (None if hw_of(n)["fold"] is None else tuple(hw_of(n)["fold"]))
           for n in nodes}
    return out if any(v is not None for v in out.values()) else None


def decide(graph: Graph, board=None, folding="auto", *, target_ii=None, max_luts=None):
    """The one folding decision of ``ddnhw generate``, ``cosim``, ``build`` and the demos:
    ``(graph with hw.fold written on every foldable node, plan)``; ``plan`` as
    :func:`ddnhw.passes.fold.choose` returns it (``mode``: ``"unrolled"``, ``"auto"``,
    ``"explicit"``, or ``"model"`` when the model file carries its folding).

    ``folding="auto"`` (default): a folding written in the model (by an earlier
    ``ddnhw generate --board``, say) is used as it is, unless ``target_ii``/``max_luts`` ask
    for a new plan; else, with a ``board`` (or ``target_ii``/``max_luts``), fully unrolled when
    that fits the board, else folded to fit (:func:`ddnhw.passes.fold.choose`); with none of
    them, fully unrolled. ``"none"``: fully unrolled; a ``{layer: (pe, simd)}`` dict: that.
    The decision depends only on the model, the board and these arguments, so every command
    given the same ones builds the same circuit."""
    from ddnhw.hw.family import Budget
    from ddnhw.passes.fold import select
    family = None
    budget = None
    if board is not None:
        from ddnhw.board import get_board
        budget = get_board(board).budget_for()
        family = budget.family
    carried = model_folding(graph)
    if (isinstance(folding, str) and folding == "auto" and carried is not False
            and target_ii is None and max_luts is None):
        return graph, {"mode": "model", "folding": carried, "family": family}
    if budget is None:
        if target_ii is None and max_luts is None and not isinstance(folding, dict):
            folding = "none" if folding == "auto" else folding
        budget = Budget("ice40")
    g, plan = select(graph, budget, folding, target_ii=target_ii, max_luts=max_luts)
    if board is None and plan["mode"] != "auto":
        plan["family"] = None
    return g, plan


def generate(graph: Graph, outdir, name="ddnhw_top", *, board=None, target_ii=None,
             max_luts=None, folding="auto", family=None) -> dict:
    """Verilog, manifest and the model with its folding (``model.npz``: the circuit's model
    file, for ``ddnhw cosim`` and ``ddnhw build``) in ``outdir``; returns the manifest with
    ``folding_mode``. The folding is :func:`decide`'s (``board``, ``target_ii``, ``max_luts``,
    ``folding``: see there; a ``{layer: (pe, simd)}`` dict, e.g. a plan's, as given).
    ``family``: the FPGA family the blocks are built for (default: the board's, else the
    lowering's)."""
    from ddnhw.lower import generate as _generate
    if folding is None:
        folding = "auto"
    g, plan = decide(graph, board, folding, target_ii=target_ii, max_luts=max_luts)
    options = {}
    fam = family or plan.get("family")
    if fam is not None:
        options["family"] = fam
    ensure_writable_dir(outdir)
    man = _generate(g, outdir, name=name, **options)
    save_graph(g, Path(outdir) / "model.npz")
    return {**man, "folding_mode": plan["mode"]}


def cosim(graph: Graph, rtl_dir, inputs, *, simulator="verilator", mode="bulk", seed=0,
          build_dir=None, idle_prob=0.3, stall_prob=0.3):
    """Run ``inputs`` through the RTL in ``rtl_dir`` and compare with the golden model exactly."""
    from ddnhw.host.cosim import cosim as _cosim
    rtl_dir = Path(rtl_dir)
    manifest_path = rtl_dir / "manifest.json"
    if not manifest_path.is_file():
        raise DdnhwError(f"{manifest_path}: no manifest; run `ddnhw generate` first")
    manifest = json.loads(manifest_path.read_text())
    verilog = rtl_dir / manifest["verilog"]
    expected = golden.run(graph, inputs)
    res = _cosim(verilog, manifest, inputs, simulator=simulator, mode=mode, expected=expected,
                 seed=seed, idle_prob=idle_prob, stall_prob=stall_prob,
                 build_dir=build_dir or (rtl_dir / f"sim_{simulator}"))
    return res, expected


def cosim_check(graph: Graph, x, rtl_dir, *, simulator="verilator", idle=0.3, stall=0.3,
                seed=0, mode="bulk", build_dir=None) -> dict:
    """:func:`cosim` of inputs ``x`` (N, *input shape) under random idle/backpressure, as a
    dict: ``outputs``, ``mismatches`` (inputs whose output differs from golden in any element,
    or all of them when the RTL gave the wrong number of outputs), ``cycles``,
    ``seconds_build``, ``seconds_run``, ``simulator``, ``message``."""
    r, want = cosim(graph, rtl_dir, x, simulator=simulator, mode=mode, seed=seed,
                    build_dir=build_dir, idle_prob=idle, stall_prob=stall)
    bad = int(np.sum(np.any(r.outputs != want, axis=1))) if r.outputs.shape == want.shape \
        else len(want)
    return {"outputs": r.outputs, "mismatches": max(bad, int(r.mismatches or 0)),
            "cycles": r.cycles, "seconds_build": r.seconds_build, "seconds_run": r.seconds_run,
            "simulator": simulator, "message": r.message}


def sim_check(graph: Graph, x, *, idle=0.2, stall=0.2, seed=0, **options) -> dict:
    """Run inputs ``x`` (N, *input shape; one beat per row of the last axis) through the
    lowered network (``options``: :func:`ddnhw.lower.build_network`'s) in the Amaranth
    simulator under random idle/stall; returns ``dict(outputs, mismatches, cycles, seconds,
    ii_cycles)`` (``mismatches``: inputs differing from golden plus protocol errors)."""
    from ddnhw.hw.sim import run_beats
    from ddnhw.lower import build_network
    t = time.perf_counter()
    net = build_network(graph, **options)
    out, log = run_beats(net, x.reshape(-1, x.shape[-1]), len(x), idle=idle, stall=stall,
                         seed=seed)
    want = golden.run(graph, x)
    bad = int(np.sum(np.any(out != want, axis=1))) + len(log["protocol"])
    return {"outputs": out, "mismatches": bad, "cycles": int(log["out"][-1] + 1),
            "seconds": time.perf_counter() - t, "ii_cycles": int(net.ii)}


def lowering_available(graph: Graph) -> bool:
    """Whether the hardware lowering knows every op of ``graph``."""
    from ddnhw.lower.registry import LOWERINGS
    return all(n.op in LOWERINGS for n in graph.nodes)




def choose_folding(graph: Graph, board, folding="auto", *, target_ii=None, max_luts=None) -> dict:
    """The plan of :func:`decide` for ``board`` (without the annotated graph): dict with
    ``mode``, ``folding`` (``{layer: (pe, simd) or None}``, None: fully unrolled), ``family``
    and, when planned for the board, ``unrolled_estimate``, ``limit`` and (folded
    automatically) ``estimate`` and ``ii``."""
    return decide(graph, board, folding, target_ii=target_ii, max_luts=max_luts)[1]


TOPS = ("uart", "measure")


def build(graph: Graph, board: str, outdir, *, allow_timing_failure=False, top="measure",
          baud=115200, toolchain="yowasp", folding="auto", target_ii=None,
          max_luts=None, timeout=None) -> dict:
    """Bitstream for ``board``. ``top="uart"``: the product, the core behind the framed UART
    link (:class:`ddnhw.board.link.BoardTop`) at ``baud`` (``ddnhw build``'s default);
    ``top="measure"`` (the API default, for benchmarks): the measurement shim (core resources
    and timing only, not usable on the board).

    ``folding``/``target_ii``/``max_luts``: see :func:`decide` (by default a folding the model
    carries, else folded automatically when the unrolled network does not fit the board: the
    circuit ``ddnhw generate --board`` writes). The report
    (also ``<outdir>/report.json``) records ``folding`` (mode, per-layer PE/SIMD/II).

    ``timeout``: seconds the whole build may take (None: no limit); the tools are stopped when
    it runs out (:class:`ddnhw.board.build.BuildTimeout`). SIGINT/SIGTERM stop them at once
    (:class:`ddnhw.Interrupted`); either way no bitstream and no report are left."""
    from ddnhw.board import build as _build, get_board
    from ddnhw.board.build import BuildTimeout
    from ddnhw.lower import build_network
    start = time.monotonic()
    profile = get_board(board)  # an unknown board fails before any work
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0):
        raise DdnhwError(f"build: timeout must be a positive number of seconds, not {timeout!r}")
    if top not in TOPS:
        raise DdnhwError(f"unknown top {top!r}; choose one of {TOPS}")
    ensure_writable_dir(outdir)
    graph, plan = decide(graph, profile.name, folding, target_ii=target_ii, max_luts=max_luts)
    core = build_network(graph, family=profile.family)
    wrap = None
    if top == "uart":
        from ddnhw.board.link import BoardTop
        from ddnhw.board.protocol import Ident
        from ddnhw.board.uart import baud_divisor
        try:
            baud_divisor(profile.clock_mhz * 1e6, baud)
        except ValueError as e:
            raise DdnhwError(f"board {board!r}: {e}") from None
        ident = Ident.for_graph(graph, core.latency)

        def wrap(core, profile):
            return BoardTop(core, ident, baud=baud, uart=profile.uart, led=profile.led)
    left = None
    if timeout is not None:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            raise BuildTimeout(f"board {profile.name!r}: build stopped after its time limit of "
                               f"{timeout:g} s (before synthesis); no bitstream or report")
    report = _build(core, board, outdir, top=wrap, toolchain=toolchain, timeout=left,
                    limit_s=timeout)
    report["top"] = top
    if top == "uart":
        report["baud"] = baud
    report["latency_cycles"] = core.latency
    report["ii_cycles"] = core.ii
    report["folding"] = {
        "mode": plan["mode"], "unrolled_estimate": plan.get("unrolled_estimate"),
        "limit": plan.get("limit"), "estimate": {k: sum(layer["estimate"].get(k, 0)
                                                        for layer in core.layers)
                                                 for k in ("luts", "ffs", "dsps", "brams")},
        "layers": [{k: layer[k] for k in ("name", "op", "block", "folded", "pe", "simd",
                                          "ii", "latency", "fused_into", "fuses")
                    if k in layer} for layer in core.layers]}
    if report.get("fmax_mhz"):
        report["inferences_per_s"] = report["fmax_mhz"] * 1e6 / core.ii
        report["inferences_per_s_at_clock"] = report["clock_mhz"] * 1e6 / core.ii
    write_json_atomic(Path(outdir) / "report.json", report)
    if not report.get("timing_met") and not allow_timing_failure:
        raise DdnhwError(f"board {board!r}: timing not met: Fmax {report.get('fmax_mhz')} MHz "
                         f"< target {report.get('clock_mhz')} MHz (see {outdir}); "
                         f"use --allow-timing-failure to keep the bitstream anyway")
    return report


def load_model(path) -> Graph:
    return load_graph(path)


__all__ = ["ensure_writable_dir", "write_json_atomic", "random_vectors", "random_images",
           "model_folding", "decide", "generate", "cosim", "cosim_check", "sim_check", "lowering_available", "FOLDINGS",
           "choose_folding", "TOPS", "build", "load_model", "save_graph"]
