"""Stress: long cosimulation of the shipped demo RTL under heavy random backpressure, and resets
in the middle of a stream (nothing stale comes out afterwards). Marked slow."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module, ResetSignal, Signal
from amaranth.sim import Simulator

from ddnhw import flow, golden
from ddnhw.hw.sim import pack, unpack
from ddnhw.ir import load_graph
from ddnhw.ir.testing import random_mlp
from ddnhw.lower import build_network

ROOT = Path(__file__).resolve().parents[2]
RTL = ROOT / "rtl" / "digits_mlp"
MODEL = ROOT / "examples" / "digits_mlp.npz"
N = int(os.environ.get("DDNHW_STRESS_VECTORS", "100000"))


@pytest.mark.slow
@pytest.mark.cocotb
@pytest.mark.parametrize("idle,stall,seed", [(0.5, 0.7, 1), (0.0, 0.0, 2)])
def test_demo_rtl_long_run(tmp_path, idle, stall, seed):
    from sim.runner import cosim
    graph = load_graph(MODEL)
    manifest = json.loads((RTL / "manifest.json").read_text())
    x = flow.random_vectors(graph, N, seed=seed)
    expected = golden.run(graph, x)
    cache = Path(os.environ.get("DDNHW_SIM_CACHE") or f"/tmp/ddnhw-sim-cache-{os.getuid()}")
    t0 = time.perf_counter()
    res = cosim(RTL / manifest["verilog"], manifest, x, expected=expected, seed=seed,
                idle_prob=idle, stall_prob=stall, build_dir=cache / "stress")
    dt = time.perf_counter() - t0
    assert res.mismatches == 0, res.message
    np.testing.assert_array_equal(res.outputs, expected)
    assert len(res.outputs) == N
    print(f"\nstress: {N} vectors, idle {idle}, stall {stall}: {res.cycles} cycles, "
          f"{dt:.1f} s total, {N / res.seconds_run:,.0f} vectors/s")


def run_with_resets(dut, x, *, resets, idle, stall, seed, max_cycles):
    """Stream ``x`` through ``dut`` in the Amaranth simulator, pulsing reset at the given cycles.
    Returns a list per segment (between resets) of ``(sent inputs, received outputs)``."""
    wi = dut.i.payload.shape().elem_shape.width
    lay = dut.o.payload.shape()
    wo, so, lo = lay.elem_shape.width, lay.elem_shape.signed, lay.length
    rng = np.random.default_rng(seed)
    segs = [([], [])]

    async def bench(ctx):
        k = 0
        for cyc in range(max_cycles):
            if cyc in resets:   # one cycle of reset, inputs idle, random ready
                ctx.set(dut.i.valid, 0)
                ctx.set(dut.o.ready, int(rng.random() >= 0.5))
                ctx.set(rst, 1)
                await ctx.tick()
                ctx.set(rst, 0)
                segs.append(([], []))
                continue
            drive = k < len(x) and rng.random() >= idle
            ctx.set(dut.i.valid, int(drive))
            ctx.set(dut.i.payload.as_value(), pack(x[k], wi) if drive else 0)
            # once every input is in, drain: no more stalls
            ctx.set(dut.o.ready, int(k == len(x) or rng.random() >= stall))
            _, _, iv, ir, ov, orr, op = await ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload.as_value())
            if iv and ir:
                segs[-1][0].append(k)
                k += 1
            if ov and orr:
                segs[-1][1].append(unpack(op, wo, so, lo))
    rst = Signal()
    m = Module()
    m.submodules.dut = dut
    m.d.comb += ResetSignal().eq(rst)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return segs


@pytest.mark.slow
@pytest.mark.parametrize("folding", [None, {"fc0": (2, 3)}])
def test_reset_mid_stream(folding):
    g = random_mlp(5, sizes=(6, 5, 3))
    x = flow.random_vectors(g, 400, seed=5)
    y = golden.run(g, x)
    net = build_network(g, **({"folding": folding} if folding else {}))
    resets = {37, 38, 250, 611, 612, 613, 900}
    segs = run_with_resets(net, x, resets=resets, idle=0.4, stall=0.6, seed=3, max_cycles=6000)
    total_out, dropped = 0, 0
    for sent, got in segs:
        # outputs after a reset belong to inputs accepted after it, in order, as a prefix
        # (beats in flight at the reset are dropped, never emitted late)
        assert len(got) <= len(sent)
        np.testing.assert_array_equal(np.array(got).reshape(-1, y.shape[1]),
                                      y[sent[:len(got)]])
        total_out += len(got)
        dropped += len(sent) - len(got)
    assert len(segs) == len(resets) + 1 and total_out > 100
    assert dropped > 0                                  # some resets did hit beats in flight
    assert len(segs[-1][1]) == len(segs[-1][0])         # after the last reset: all come out
