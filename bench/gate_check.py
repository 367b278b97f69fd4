#!/usr/bin/env python3
"""Gate-level check of a generated design (any size): its Verilog mapped by yosys'
synth_<family> with the board's options, simulated in yosys' cell models under Verilator
(ddnhw.energy.gatesim), N random vectors + the two extremes, compared with the golden model.

    python bench/gate_check.py RTL_DIR MODEL_NPZ {ice40,ecp5} N OUT_DIR

RTL_DIR holds ``manifest.json`` and the Verilog (``ddnhw generate``); MODEL_NPZ the annotated
graph it was generated from. Writes OUT_DIR/gate_check.json. The activity probes of the energy
flow are replaced by a cycle counter: they put one concatenation of every cell output on a
line, more tokens than Verilator accepts for a 20k-cell netlist.
"""
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from ddnhw import golden
from ddnhw.board import get_board
from ddnhw.energy import gatesim
from ddnhw.energy.estimate import _stream_rows
from ddnhw.flow.core import random_vectors
from ddnhw.host.cosim import find_testbench, manifest_beats
from ddnhw.host.payload import StreamLayout, read_hex, write_records
from ddnhw.ir import load_graph

rtl, model, fam = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
n, out = int(sys.argv[4]), Path(sys.argv[5])
g = load_graph(model)
man = json.loads((rtl / "manifest.json").read_text())
lay = StreamLayout.from_manifest(man, rtl / man["verilog"])
bi, bo = manifest_beats(man)
x = random_vectors(g, n, seed=5)
t = g.input.dtype
x = np.concatenate([np.full((1,) + x.shape[1:], t.min), np.full((1,) + x.shape[1:], t.max), x])
exp = golden.run(g, x).reshape(len(x), -1)
board = {"ice40": "icebreaker", "ecp5": "ulx3s-85f"}[fam]
t0 = time.time()
net = gatesim.synthesize([rtl / man["verilog"]], lay.top, fam, out / "syn",
                         synth_opts=get_board(board).synth_opts)
print("synth", round(time.time() - t0, 1), "s", net.cells, flush=True)


def _light(netlist, per_instance=False):
    """The netlist with only a cycle counter as probe (the full activity probes write one
    concatenation per cell type: too many tokens on a line for Verilator on 20k-cell designs)."""
    text = netlist.path.read_text().rstrip()
    assert text.endswith("endmodule")
    probed = netlist.path.with_name(netlist.path.stem + ".light.v")
    probed.write_text(text[:-len("endmodule")] + f"""
  reg [63:0] ddnhw_cycles = 64'd0;
  always @(posedge clk) ddnhw_cycles <= ddnhw_cycles + 64'd1;
  final $display("ddnhw_probe {netlist.top} cycles - %0d", ddnhw_cycles);
endmodule
""")
    return probed


gatesim.instrument = _light
t0 = time.time()
binary, tb, cached = gatesim.build_sim(
    net, [find_testbench() / "harness.v", ("ddnhw_gate_tb.v", gatesim.STREAM_TB)],
    out / "sim", params={"IN_W": lay.i.width, "OUT_W": lay.o.width},
    defines={"DDNHW_DUT": lay.top})
print("build", round(time.time() - t0, 1), "s", flush=True)
rd = out / "run"; rd.mkdir(parents=True, exist_ok=True)
rows = _stream_rows(x, lay.i.lanes, bi)
write_records(rd / "in.bin", rows, lay.i)
(rd / "out.hex").unlink(missing_ok=True)
acts, log = gatesim.run_sim(binary, rd, plusargs=[
    f"+ddnhw_in={rd / 'in.bin'}", f"+ddnhw_out={rd / 'out.hex'}", f"+ddnhw_n={len(rows)}",
    f"+ddnhw_nout={len(x) * bo}", "+ddnhw_idle=0", "+ddnhw_stall=0",
    "+ddnhw_watchdog=100000"])
got = read_hex(rd / "out.hex", lay.o)
got = got.reshape(-1, bo * lay.o.lanes)
bad = int(np.sum(np.any(got != exp, axis=1))) if got.shape == exp.shape else len(x)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
res = {"family": fam, "vectors": len(x), "mismatches": bad, "cells": net.cells,
       "children_cpu_s": round(r.ru_utime + r.ru_stime, 1)}
print(json.dumps(res), flush=True)
(out / "gate_check.json").write_text(json.dumps(res, indent=1))
