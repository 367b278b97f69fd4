"""Cosimulate the board top (``ddnhw.board.link.UARTLink`` + core) with the host runtime.

:func:`cosim_link` writes the board top's Verilog, builds it with the cosimulation runner's
cached build (:mod:`ddnhw.host.cosim`) and runs the cocotb test ``sim/tb_link.py``, where the host
code drives the RTL through a simulated serial port. It returns the session's result dict.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ddnhw import DdnhwError

from .cosim import _build, _tail, check_simulator, run_testbench

__all__ = ["cosim_link", "link_verilog"]

TOP = "ddnhw_link"


def link_verilog(graph, outdir, *, divisor=4, timeout_bytes=48) -> Path:
    """Write the board top of ``graph`` (UART divisor ``divisor``) as ``<outdir>/ddnhw_link.v``.

    The file is rewritten only when its text changes (keeps the simulator build cached)."""
    import ddnhw.hw.dense_rtl as dense_rtl
    from ddnhw.board.link import UARTLink
    from ddnhw.board.protocol import Ident
    from ddnhw.lower import build_network

    core = build_network(graph)
    top = UARTLink(core, Ident.for_graph(graph, core.latency), divisor=divisor,
                   timeout_cycles=timeout_bytes * 10 * divisor, led_cycles=1000)
    text = dense_rtl.convert(top, name=TOP, emit_src=False)
    path = Path(outdir) / f"{TOP}.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def cosim_link(graph, inputs, *, build_dir, divisor=4, simulator="verilator", window=4,
               burst_window=16, phase_rows=24, timeout_s=60e-6, retries=6, seed=0,
               wrong_model=None, fuzz_rows=0, fuzz_rate=0.2) -> dict:
    """Run the link session of ``sim/tb_link.py`` on ``inputs`` ``(N, in_lanes)``.

    The simulated clock is 100 MHz, so the baud rate is ``100e6 / divisor``; ``timeout_s`` is the
    host's reply timeout in simulated seconds. ``wrong_model`` (a model file of another
    design) checks that the host rejects it. ``fuzz_rows``: that many more vectors (the first
    rows of ``inputs``) with every frame to the device damaged with probability ``fuzz_rate``
    (:class:`ddnhw.host.fuzz.DamagingPort`), not confirmed (the CRC-32 alone guards); counts
    in ``result["fuzz"]``.
    """
    from ddnhw.ir import save_graph
    check_simulator(simulator)

    build_root = Path(build_dir).resolve()
    verilog = link_verilog(graph, build_root / "rtl", divisor=divisor)
    bdir, toplevel, _, _ = _build(simulator, "bfm", verilog, SimpleNamespace(top=TOP), 0,
                                  build_root)
    run_dir = bdir / f"run-{uuid.uuid4().hex[:12]}"
    run_dir.mkdir()
    save_graph(graph, run_dir / "model.npz")
    np.save(run_dir / "inputs.npy", np.asarray(inputs, dtype=np.int64))
    cfg = {"model": str(run_dir / "model.npz"), "inputs": str(run_dir / "inputs.npy"),
           "divisor": divisor, "baud": round(100e6 / divisor), "timeout": timeout_s,
           "retries": retries, "window": window, "burst_window": burst_window,
           "phase_rows": phase_rows, "seed": seed, "wrong_model": wrong_model and str(wrong_model),
           "fuzz_rows": int(fuzz_rows), "fuzz_rate": float(fuzz_rate),
           "result_json": str(run_dir / "result.json")}
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=1))
    log = run_dir / "sim.log"
    run_testbench(simulator, "tb_link", "link_session", toplevel, bdir, run_dir, log,
                  {"DDNHW_LINK_CONFIG": str(run_dir / "config.json")})
    result_json = run_dir / "result.json"
    if not result_json.exists():
        raise DdnhwError(f"link cosim ended abnormally; log {log}:\n{_tail(log, 40)}")
    result = json.loads(result_json.read_text())
    if os.environ.get("DDNHW_KEEP_SIM") != "1":
        shutil.rmtree(run_dir, ignore_errors=True)
    return result
