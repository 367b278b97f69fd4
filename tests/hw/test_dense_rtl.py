"""The Verilog text datapath of an unrolled Dense (ddnhw.hw.dense_rtl) against the golden
dense, bit for bit, under a random clock enable, in Icarus Verilog; and the plan's pipeline
cuts (fewest crossing bits) against the level-every-N rule."""
import shutil
import subprocess

import numpy as np
import pytest

from ddnhw.hw import DenseSpec
from ddnhw.hw.dense_rtl import dense_module
from ddnhw.ir import IntType
from ddnhw.ir.ops import dense_range

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs iverilog")


def _random_layer(rng, n_in, n_out, w_bits, in_type, zero_frac=0.3):
    wmax = (1 << (w_bits - 1)) - 1
    w = rng.integers(-wmax - 1, wmax + 1, size=(n_out, n_in))
    w[rng.random(w.shape) < zero_frac] = 0
    w[0, :] = 0                                   # a constant output
    w[-1, 0], w[-1, 1:] = wmax, 0                 # one weight
    if n_out > 2:
        w[1, :] = -(wmax + 1)                      # every weight the most negative
    b = rng.integers(-200, 200, size=n_out)
    lo, hi = dense_range(w, b, in_type)
    return w, b, IntType.for_range(int(lo.min()), int(hi.max()))


def run_rtl(spec, x, ce, tmp_path):
    """Outputs ``y`` the module gives at every cycle (before the clock edge) for inputs ``x``
    (cycles, n_in) and clock enables ``ce``."""
    name, text = dense_module(spec)
    xw, yw = spec.in_type.bits, spec.out_type.bits
    n_in, n_out = spec.n_in, spec.n_out
    rows = []
    for xi, c in zip(x, ce):
        v = int(c)
        for j in reversed(range(n_in)):
            v = (v << xw) | (int(xi[j]) & ((1 << xw) - 1))
        rows.append(f"{v:x}")
    (tmp_path / "in.hex").write_text("\n".join(rows) + "\n")
    tb = f"""
module tb;
  reg clk = 0; reg ce; reg [{n_in * xw - 1}:0] x; wire [{n_out * yw - 1}:0] y;
  reg [{n_in * xw}:0] mem [0:{len(x) - 1}];
  integer i, f;
  {name} dut(.clk(clk), .ce(ce), .x(x), .y(y));
  initial begin
    $readmemh("in.hex", mem);
    f = $fopen("out.hex", "w");
    for (i = 0; i < {len(x)}; i = i + 1) begin
      {{ce, x}} = mem[i];
      #1; $fwrite(f, "%h\\n", y);
      clk = 1; #1; clk = 0;
    end
    $fclose(f); $finish;
  end
endmodule
"""
    (tmp_path / "dut.v").write_text(text + tb)
    subprocess.run(["iverilog", "-g2005", "-o", "sim", "dut.v"], cwd=tmp_path, check=True)
    subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, check=True, capture_output=True)
    out = []
    for line in (tmp_path / "out.hex").read_text().split():
        if any(c in line for c in "xXzZ"):
            out.append(None)
            continue
        v = int(line, 16)
        lanes = []
        for k in range(n_out):
            u = (v >> (k * yw)) & ((1 << yw) - 1)
            if spec.out_type.signed and u >> (yw - 1):
                u -= 1 << yw
            lanes.append(u)
        out.append(lanes)
    return out


def expect(spec, x, ce):
    """The pipeline's outputs: at each cycle, the dense of the input the clock enable took
    ``latency`` enabled edges ago (None before)."""
    taken, out = [], []
    for xi, c in zip(x, ce):
        out.append(list(taken[-spec.latency] @ spec.weight.T + spec.bias)
                   if len(taken) >= spec.latency else None)
        if c:
            taken.append(np.asarray(xi, np.int64))
    return out


@pytest.mark.parametrize("seed,n_in,n_out,w_bits,signed,bits,style,regs", [
    (0, 12, 6, 4, False, 8, "cse", 2),
    (1, 9, 5, 6, True, 6, "cse", 1),
    (2, 16, 4, 4, False, 4, "cse", 5),
    (3, 7, 3, 5, True, 3, "shiftadd", 2),
    (4, 6, 4, 4, True, 5, "mul", 1),
    (5, 20, 8, 3, False, 1, "cse", 3),
])
def test_dense_rtl_exact(tmp_path, seed, n_in, n_out, w_bits, signed, bits, style, regs):
    rng = np.random.default_rng(seed)
    xt = IntType(signed, bits)
    w, b, yt = _random_layer(rng, n_in, n_out, w_bits, xt)
    spec = DenseSpec(w, b, xt, yt, regs_every=regs, style=style)
    n = 300
    x = rng.integers(xt.min, xt.max + 1, size=(n, n_in))
    x[:20] = xt.min
    x[20:40] = xt.max
    x[40:60] = np.where(rng.random((20, n_in)) < 0.5, xt.min, xt.max)
    ce = rng.random(n) < 0.7
    got, want = run_rtl(spec, x, ce, tmp_path), expect(spec, x, ce)
    assert sum(v is not None for v in want) > n // 2
    for t, (g, e) in enumerate(zip(got, want)):
        if e is not None:
            assert g == [int(v) for v in e], f"cycle {t}"


def test_dense_rtl_mutant_fails(tmp_path):
    """The check above can fail: a wrong bias shows up."""
    rng = np.random.default_rng(9)
    xt = IntType(False, 4)
    w, b, yt = _random_layer(rng, 8, 3, 4, xt)
    spec = DenseSpec(w, b, xt, yt)
    x = rng.integers(0, 16, size=(40, 8))
    ce = np.ones(40, bool)
    got = run_rtl(spec, x, ce, tmp_path)
    spec.bias = spec.bias + 1             # the model now disagrees with the circuit
    want = expect(spec, x, ce)
    assert any(e is not None and g != [int(v) for v in e] for g, e in zip(got, want))


def test_cuts_fewer_bits_than_fixed_levels():
    """The pipeline registers go where the fewest bits cross: never more flip-flops than
    a register every ``regs_every`` levels, and the same latency."""
    rng = np.random.default_rng(4)
    xt = IntType(False, 8)
    w, b, yt = _random_layer(rng, 48, 16, 4, xt, zero_frac=0.1)
    for regs in (2, 3, 4):
        spec = DenseSpec(w, b, xt, yt, regs_every=regs)
        nodes = spec.walk()
        fixed = {n.uid: max(1, -(-n.depth // regs)) for n in nodes}
        assert spec.latency == max(max(1, -(-r.depth // regs)) for r in spec.roots)
        for n in nodes:
            for a in n.args:
                if a.kind not in ("const", "in"):
                    assert spec.stage(a) <= spec.stage(n)
        saved = dict(spec._stages)
        mine = spec.estimate["ffs"]
        spec._stages = fixed
        theirs = spec._estimate()["ffs"]
        spec._stages = saved
        assert mine <= theirs, regs
