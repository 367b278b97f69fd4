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


def generate(graph: Graph, outdir, name="ddnhw_top", *, board=None, target_ii=None,
             max_luts=None, folding=None, family=None) -> dict:
    """Verilog + manifest. With ``board``, ``target_ii`` or ``max_luts`` the dense layers are
    folded automatically (:func:`ddnhw.lower.fold.plan_folding`); with ``folding`` (``{layer:
    (pe, simd)}``, e.g. a :func:`choose_folding` plan's) as given; else fully unrolled.
    ``family``: the FPGA family the blocks are built for (default: the lowering's)."""
    from ddnhw.lower import generate as _generate
    options = {}
    if board is not None or target_ii is not None or max_luts is not None:
        if folding is not None:
            raise DdnhwError("generate: give folding or board/target_ii/max_luts, not both")
        from ddnhw.lower.fold import plan_folding
        from ddnhw.board import get_board
        plan = plan_folding(graph, None if board is None else get_board(board).budget_for(),
                            target_ii=target_ii, max_luts=max_luts,
                            fallback_margin=(0.07 if target_ii is None and max_luts is None
                                             else None))
        options = {"folding": plan["folding"], "family": plan["family"]}
    elif folding:
        options["folding"] = dict(folding)
    if family is not None:
        options["family"] = family
    ensure_writable_dir(outdir)
    return _generate(graph, outdir, name=name, **options)


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


FOLDINGS = ("auto", "none")


def choose_folding(graph: Graph, board, folding="auto", *, target_ii=None, max_luts=None,
                   margin=0.15, unrolled_margin=0.05, fallback_margin=0.07) -> dict:
    """How :func:`build` lowers ``graph`` for ``board``: dict with ``mode`` (``"unrolled"``,
    ``"auto"`` or ``"explicit"``), ``folding`` (``{dense layer: (pe, simd) or None}``, None:
    fully unrolled), ``family``, ``unrolled_estimate`` and ``limit`` (the board budget less
    ``margin``) and, when folded automatically, ``estimate`` and ``ii`` of the plan.

    ``folding``: ``"auto"`` (default): fully unrolled when its estimate fits the board's budget
    less ``unrolled_margin`` (the unrolled estimate is calibrated within ~6% on whole networks,
    and unrolled is the fastest there is; the demo model is at ~90% of the UP5K) and neither
    ``target_ii`` nor ``max_luts`` is given, else
    :func:`ddnhw.lower.fold.plan_folding` for the board (with ``target_ii``/``max_luts``; with
    ``fallback_margin`` when nothing fits the board with ``margin`` and neither is given;
    ``margin`` in the result is the one used);
    ``"none"``: fully unrolled; or an explicit ``{layer: (pe, simd)}`` dict."""
    from ddnhw.board import get_board
    from ddnhw.passes.fold import choose
    return choose(graph, get_board(board).budget_for(), folding, target_ii=target_ii,
                  max_luts=max_luts, margin=margin, unrolled_margin=unrolled_margin,
                  fallback_margin=fallback_margin)


TOPS = ("uart", "measure")


def build(graph: Graph, board: str, outdir, *, allow_timing_failure=False, top="measure",
          baud=115200, toolchain="yowasp", folding="auto", target_ii=None,
          max_luts=None) -> dict:
    """Bitstream for ``board``. ``top="uart"``: the product, the core behind the framed UART
    link (:class:`ddnhw.board.link.BoardTop`) at ``baud`` (``ddnhw build``'s default);
    ``top="measure"`` (the API default, for benchmarks): the measurement shim (core resources
    and timing only, not usable on the board).

    ``folding``/``target_ii``/``max_luts``: see :func:`choose_folding` (by default the network
    is folded automatically when its unrolled estimate does not fit the board). The report
    (also ``<outdir>/report.json``) records ``folding`` (mode, per-layer PE/SIMD/II)."""
    from ddnhw.board import build as _build, get_board
    from ddnhw.lower import build_network
    profile = get_board(board)  # an unknown board fails before any work
    if top not in TOPS:
        raise DdnhwError(f"unknown top {top!r}; choose one of {TOPS}")
    ensure_writable_dir(outdir)
    plan = choose_folding(graph, profile, folding, target_ii=target_ii, max_luts=max_luts)
    options = {"family": plan["family"]}
    if plan["folding"] is not None:
        options["folding"] = plan["folding"]
    core = build_network(graph, **options)
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
    report = _build(core, board, outdir, top=wrap, toolchain=toolchain)
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
           "generate", "cosim", "cosim_check", "sim_check", "lowering_available", "FOLDINGS",
           "choose_folding", "TOPS", "build", "load_model", "save_graph"]
