"""Gate level: the Verilog datapath of an unrolled Dense (ddnhw.hw.dense_rtl) mapped by yosys'
``synth_ice40`` and ``synth_ecp5`` (the boards' options) and simulated with yosys' cell models
in Verilator (the flow of ddnhw.energy.gatesim) equals the golden dense, bit for bit, under a
random clock enable.

Why: yosys (0.70) LUT mapping (abc9, and abc) loses the logic of a ``(* keep *)`` wire whose
bits mix logic-driven bits with bits that are only a copy of an input of the mapped logic (a
port or flip-flop output, e.g. ``{sum_hi, x[0]}`` of a shifted add): the old connection of the
wire survives with those bits set to ``x``, the mapped LUTs driving them are dropped as the
losing side of a driver conflict, and the netlist computes garbage (seen on the iCE40 for
``random_mlp(3, (6, 4, 3))``, 147 of 200 vectors). RTL simulators and a generic ``synth``
agree with the golden model, so only a gate-level check catches it. One Verilator build per
family holds every configuration (several datapaths side by side)."""
import re
import shutil

import numpy as np
import pytest

from ddnhw.hw import DenseSpec
from ddnhw.hw.dense_rtl import dense_module
from ddnhw.ir import IntType

from .test_dense_rtl import _random_layer, expect

pytestmark = pytest.mark.skipif(shutil.which("verilator") is None, reason="needs Verilator")

# (seed, n_in, n_out, w_bits, signed inputs, input bits, style, regs_every): unsigned and
# signed inputs, 1-bit inputs, every style, negative weights (_random_layer makes a row of the
# most negative weight), one to five adder levels per pipeline stage
CONFIGS = [
    (0, 8, 4, 4, False, 8, "cse", 2),
    (1, 6, 4, 6, True, 6, "cse", 1),
    (2, 10, 3, 4, False, 4, "cse", 5),
    (3, 5, 3, 5, True, 3, "shiftadd", 2),
    (4, 4, 3, 4, True, 5, "mul", 1),
    (5, 12, 4, 3, False, 1, "cse", 3),
    (6, 8, 3, 3, True, 2, "cse", 2),
    (7, 6, 3, 2, False, 2, "shiftadd", 4),
]
N = 160          # cycles


def _specs():
    out = []
    for seed, n_in, n_out, w_bits, signed, bits, style, regs in CONFIGS:
        rng = np.random.default_rng(seed)
        xt = IntType(signed, bits)
        w, b, yt = _random_layer(rng, n_in, n_out, w_bits, xt)
        spec = DenseSpec(w, b, xt, yt, regs_every=regs, style=style)
        x = rng.integers(xt.min, xt.max + 1, size=(N, n_in))
        x[:10] = xt.min
        x[10:20] = xt.max
        ce = rng.random(N) < 0.7
        out.append((spec, x, ce))
    return out


def _design(cases):
    """One module with every datapath: ``ce`` (one bit each), ``x`` and ``y`` concatenated."""
    mods, inst = {}, []
    xo = yo = 0
    for k, (spec, _, _) in enumerate(cases):
        name, text = dense_module(spec)
        mods[name] = text
        xw, yw = spec.n_in * spec.in_type.bits, spec.n_out * spec.out_type.bits
        inst.append(f"  {name} d{k} (.clk(clk), .ce(ce[{k}]), .x(x[{xo + xw - 1}:{xo}]), "
                    f".y(y[{yo + yw - 1}:{yo}]));")
        xo, yo = xo + xw, yo + yw
    top = (f"module ddnhw_dense_multi (input clk, input [{len(cases) - 1}:0] ce, "
           f"input [{xo - 1}:0] x, output [{yo - 1}:0] y);\n" + "\n".join(inst) +
           "\nendmodule\n")
    return top + "".join(mods[k] for k in sorted(mods)), xo, yo


def _tb(k, xw, yw, n):
    return f"""
module ddnhw_gate_tb (input wire clk, input wire rst);
    reg [{k + xw - 1}:0] mem [0:{n - 1}];
    integer i = 0, f = 0;
    initial begin $readmemh("in.hex", mem); f = $fopen("out.hex", "w"); end
    wire [{k + xw - 1}:0] cur = mem[i];
    wire [{yw - 1}:0] y;
    ddnhw_dense_multi dut (.clk(clk), .ce(cur[{k + xw - 1}:{xw}] & {{{k}{{~rst}}}}),
                           .x(cur[{xw - 1}:0]), .y(y));
    always @(posedge clk)
        if (!rst) begin
            $fwrite(f, "%h\\n", y);      // the outputs before this edge
            i <= i + 1;
            if (i == {n - 1}) begin $fclose(f); $finish; end
        end
endmodule
"""


def gate_run(cases, family, tmp_path):
    """Per case, the outputs ``[[lanes] or None]`` of the gate-level netlist at every cycle."""
    from ddnhw.board import get_board
    from ddnhw.energy import gatesim
    text, xw, yw = _design(cases)
    board = {"ice40": "icebreaker", "ecp5": "ulx3s-85f"}[family]
    net = gatesim.synthesize([("dense.v", text)], "ddnhw_dense_multi", family,
                             tmp_path / "syn", synth_opts=get_board(board).synth_opts)
    k = len(cases)
    binary, _, _ = gatesim.build_sim(net, [("ddnhw_gate_tb.v", _tb(k, xw, yw, N))],
                                     tmp_path / "sim")
    rows = []
    for t in range(N):
        v = 0
        for j in reversed(range(k)):
            v = (v << 1) | int(cases[j][2][t])
        for spec, x, _ in reversed(cases):
            for val in reversed(x[t]):
                v = (v << spec.in_type.bits) | (int(val) & ((1 << spec.in_type.bits) - 1))
        rows.append(f"{v:x}")
    run = tmp_path / "run"
    run.mkdir()
    (run / "in.hex").write_text("\n".join(rows) + "\n")
    gatesim.run_sim(binary, run)
    lines = (run / "out.hex").read_text().split()
    assert len(lines) == N
    outs = [[] for _ in cases]
    for line in lines:
        v = None if any(c in line for c in "xXzZ") else int(line, 16)
        off = 0
        for j, (spec, _, _) in enumerate(cases):
            yb = spec.out_type.bits
            if v is None:
                outs[j].append(None)
                continue
            lanes = []
            for q in range(spec.n_out):
                u = (v >> (off + q * yb)) & ((1 << yb) - 1)
                if spec.out_type.signed and u >> (yb - 1):
                    u -= 1 << yb
                lanes.append(u)
            outs[j].append(lanes)
            off += spec.n_out * yb
    return outs, net


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_dense_gate_level_equals_golden(tmp_path, family):
    cases = _specs()
    outs, net = gate_run(cases, family, tmp_path)
    # an undefined constant on a cell input is how the keep/abc fault showed (the iCE40 DSP's
    # unused cascade inputs are left x by yosys' own DSP mapping)
    from ddnhw.energy.gatesim import _instances
    undefined = [(cell, name, port) for cell, name, ports, _ in
                 _instances(net.path.read_text(), set(net.cells))
                 if cell not in ("SB_MAC16", "MULT18X18D")
                 for port, e in ports.items() if re.search(r"'[hb][0-9a-fx]*x", e)]
    assert not undefined, undefined[:3]
    for (spec, x, ce), got, cfg in zip(cases, outs, CONFIGS):
        want = expect(spec, x, ce)
        assert sum(e is not None for e in want) > N // 2
        bad = [t for t, (g, e) in enumerate(zip(got, want))
               if e is not None and g != [int(v) for v in e]]
        assert not bad, f"{family} {cfg}: {len(bad)} cycles differ, first {bad[0]}"
