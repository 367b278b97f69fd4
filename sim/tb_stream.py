"""cocotb tests for one ddnhw stream DUT, configured by :mod:`ddnhw.host.cosim` through a JSON file.

The environment variable ``DDNHW_COSIM_CONFIG`` names the JSON file (written by the runner into the
run directory) with: ``n`` (input beats), ``n_out`` (output beats; default ``n``), ``seed``,
``idle_prob``, ``stall_prob``, ``in_lanes``/``out_lanes`` (``Lanes`` fields), ``in_hex`` (inputs,
one payload per line), ``out_hex`` (outputs are written here), ``expected_npy`` (optional),
``result_json`` (this module writes its summary there).

* ``run_bulk``: toplevel is ``ddnhw_harness`` (``sim/harness.v``); Python only starts the clock,
  resets, and waits for ``done``: no Python in the per-cycle loop.
* ``run_bfm``: toplevel is the DUT itself, driven by ``bfm.py`` from Python every cycle.

Both check every output vector against the expected ones with
:class:`ddnhw.host.scoreboard.Scoreboard` and fail on any mismatch.

Loaded by path (cocotb imports it by name from the run directory, with ``bfm.py`` beside it),
never as part of a package.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge
from cocotb.utils import get_sim_time

# numpy, ddnhw and the BFMs are imported where they are used: the bulk test needs none of them,
# and the simulator process starts faster without them
CLOCK_NS = 10


def _config(lanes: bool = True) -> dict:
    path = os.environ.get("DDNHW_COSIM_CONFIG")
    if not path:
        raise RuntimeError("DDNHW_COSIM_CONFIG is not set; run through ddnhw.host.cosim.cosim()")
    cfg = json.loads(Path(path).read_text())
    if lanes:
        from ddnhw.host.payload import Lanes

        cfg["in_lanes"] = Lanes(**cfg["in_lanes"])
        cfg["out_lanes"] = Lanes(**cfg["out_lanes"])
    return cfg


def _scoreboard(cfg) -> Scoreboard:
    import numpy as np

    from ddnhw.host.scoreboard import Scoreboard

    exp = cfg.get("expected_npy")
    return Scoreboard(np.load(exp) if exp else None)


def _finish(cfg, sb: Scoreboard, **summary) -> None:
    summary.update(mismatches=sb.mismatches, first_mismatch=sb.first, message=sb.message)
    Path(cfg["result_json"]).write_text(json.dumps(summary))
    if summary.get("timeout"):
        raise AssertionError(f"stream stalled: {summary['n_out']} of "
                             f"{cfg.get('n_out', cfg['n'])} beats came out before the watchdog "
                             "fired")
    assert sb.mismatches == 0, f"{sb.mismatches} mismatching vectors; {sb.message}"


@cocotb.test()
async def run_bulk(dut):
    """Bulk mode: the Verilog harness streams every vector; Python waits for ``done``."""
    cfg = _config(lanes=False)
    selfclock = cfg.get("selfclock", False)
    if not selfclock:      # the harness without DDNHW_SELFCLOCK: clock and reset from here
        dut.rst.value = 1
        Clock(dut.clk, CLOCK_NS, unit="ns").start()
        for _ in range(3):
            await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.rst.value = 0
    t0 = time.perf_counter()
    if dut.done.value != 1:
        await RisingEdge(dut.done)
    seconds = time.perf_counter() - t0
    cycles = int(dut.cycles.value)
    timeout = int(dut.timeout.value) == 1
    if cfg.get("check_in_parent"):
        # the runner reads the outputs and compares them itself (numpy, in its own process)
        Path(cfg["result_json"]).write_text(json.dumps(dict(
            cycles=cycles, n_out=int(dut.n_recv.value), timeout=timeout, seconds=seconds)))
        return
    from ddnhw.host.payload import Lanes, read_hex

    out = read_hex(cfg["out_hex"], Lanes(**cfg["out_lanes"]))
    sb = _scoreboard(cfg)
    if not timeout:
        sb.check_all(out)
    _finish(cfg, sb, cycles=cycles, n_out=len(out), timeout=timeout, seconds=seconds)


@cocotb.test()
async def run_bfm(dut):
    """BFM mode: Python drives and samples the DUT's stream ports every cycle."""
    from bfm import StreamDriver, StreamMonitor, reset

    from ddnhw.host.payload import unpack

    cfg = _config()
    n = cfg.get("n_out", cfg["n"])  # output beats to receive
    in_words = [int(h, 16) for h in Path(cfg["in_hex"]).read_text().split()]
    sb = _scoreboard(cfg)
    out_lanes = cfg["out_lanes"]

    def on_beat(index, word):
        sb.check_row(index, unpack([format(word, "x")], out_lanes)[0])

    dut.rst.value = 1
    driver = StreamDriver(dut, dut.clk, "i", idle_prob=cfg["idle_prob"], seed=cfg["seed"])
    monitor = StreamMonitor(dut, dut.clk, "o", stall_prob=cfg["stall_prob"], seed=cfg["seed"],
                            callback=on_beat if sb.expected is not None else None)
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    await reset(dut.clk, dut.rst, 3)
    t0 = time.perf_counter()
    start_ns = get_sim_time("ns")
    send = cocotb.start_soon(driver.send(in_words))
    watchdog_ns = CLOCK_NS * (cfg.get("watchdog", 1_000_000) + 1000 * (max(n, cfg["n"]) + 10))
    try:
        await cocotb.triggers.with_timeout(monitor.receive(n), watchdog_ns, "ns")
        timeout = False
    except cocotb.triggers.SimTimeoutError:
        timeout = True
    send.cancel() if not send.done() else None
    cycles = int(round((get_sim_time("ns") - start_ns) / CLOCK_NS))
    seconds = time.perf_counter() - t0
    Path(cfg["out_hex"]).write_text("".join(format(w, "x") + "\n" for w in monitor.beats))
    if sb.expected is not None and len(monitor.beats) != len(sb.expected) and sb.first is None:
        sb._fail(len(monitor.beats), f"got {len(monitor.beats)} vectors, expected {len(sb.expected)}")
    _finish(cfg, sb, cycles=cycles, n_out=len(monitor.beats), timeout=timeout, seconds=seconds)
