"""Amaranth-simulator stream driver for blocks with one ``i``/``o`` ArrayLayout stream pair.

Lane ``k`` of a payload occupies bits ``[k*w, (k+1)*w)`` (lane 0 at the LSB); the packing is
:mod:`ddnhw.hw.lanes`.
"""
from __future__ import annotations

import os

import numpy as np
from amaranth.sim import Simulator

from .lanes import Lanes, pack_words, unpack_words

__all__ = ["pack", "unpack", "run_stream", "run_beats"]


def _elem(port_payload):
    layout = port_payload.shape()
    shape = layout.elem_shape
    return shape.width, shape.signed, layout.length


def pack(vec, width):
    """Integer vector -> payload integer, lane 0 at the LSB (two's complement lanes)."""
    return pack_words([vec], Lanes(len(vec), width, False))[0]


def unpack(value, width, signed, lanes):
    """Payload integer -> list of ``lanes`` lane values (inverse of :func:`pack`)."""
    return unpack_words([value], Lanes(lanes, width, signed))[0].tolist()


def _withhold(p, rng, cycle):
    return bool(p(cycle)) if callable(p) else rng.random() < p


def run_stream(dut, x, *, idle=0.0, stall=0.0, seed=0, max_cycles=None, vcd=None, load=None):
    """Stream the rows of ``x`` through ``dut`` (one beat in, one beat out per row); returns
    ``(outputs, log)``.

    ``idle``/``stall``: per-cycle probability of withholding ``i.valid`` / ``o.ready``, or a
    function of the cycle number that returns True to withhold it (bursts, slow consumers).
    ``log`` holds the cycle of every input and output handshake (``"in"``, ``"out"``) and
    ``"protocol"`` errors (a valid payload that changed or was dropped while stalled).
    Waveforms are written to ``vcd`` (or ``$DDNHW_VCD_DIR``) only when ``DDNHW_VCD=1``.
    """
    x = np.asarray(x, dtype=np.int64)
    return run_beats(dut, x, len(x), idle=idle, stall=stall, seed=seed, max_cycles=max_cycles,
                     vcd=vcd, load=load)


def run_beats(dut, beats, n_out, *, idle=0.0, stall=0.0, seed=0, max_cycles=None, vcd=None,
              load=None):
    """Stream the rows of ``beats`` (one per input beat) through ``dut`` and collect ``n_out``
    output beats, for blocks whose beats in and out differ in number (image streams: pixels
    in, windows or vectors out). Returns ``(outputs (n_out, lanes), log)`` as
    :func:`run_stream`; ``idle``/``stall`` are probabilities or functions of the cycle.
    ``load``: words sent on the DUT's ``w`` stream (a weight memory loaded after reset) at
    the same time (the DUT takes no input beat before it has them all)."""
    beats = np.asarray(beats, dtype=np.int64)
    wi = _elem(dut.i.payload)[0]
    wo, so, lo = _elem(dut.o.payload)
    n = len(beats)
    rng = np.random.default_rng(seed)
    max_cycles = max_cycles or (n + n_out + 50) * 20 + 10 * getattr(dut, "latency", 10)
    outs, log = [], {"in": [], "out": [], "protocol": []}

    async def bench(ctx):
        k, cyc, pending = 0, 0, None
        while len(outs) < n_out:
            if cyc > max_cycles:
                raise TimeoutError(f"only {len(outs)} of {n_out} outputs after {cyc} cycles "
                                   f"({k} of {n} inputs accepted)")
            drive = k < n and not _withhold(idle, rng, cyc)
            ctx.set(dut.i.valid, int(drive))
            ctx.set(dut.i.payload.as_value(), pack(beats[k], wi) if drive else 0)
            ctx.set(dut.o.ready, int(not _withhold(stall, rng, cyc)))
            _, _, iv, ir, ov, orr, op = await ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload.as_value())
            if pending is not None and (not ov or op != pending):
                log["protocol"].append(cyc)
            pending = None
            if iv and ir:
                log["in"].append(cyc)
                k += 1
            if ov and orr:
                log["out"].append(cyc)
                outs.append(unpack(op, wo, so, lo))
            elif ov:
                pending = op
            cyc += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    if load is not None:
        words = [int(v) for v in load]

        async def loader(ctx):
            for word in words:
                ctx.set(dut.w.valid, 1)
                ctx.set(dut.w.payload, word)
                await ctx.tick().until(dut.w.ready)
            ctx.set(dut.w.valid, 0)
        sim.add_testbench(loader)
        max_cycles += len(words)
    if vcd is None and os.environ.get("DDNHW_VCD") == "1":
        vcd = os.path.join(os.environ.get("DDNHW_VCD_DIR", "."), f"{type(dut).__name__}.vcd")
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return np.array(outs, dtype=np.int64).reshape(n_out, lo), log
