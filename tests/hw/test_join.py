"""Fork (broadcast) and AlignedAdd (join) in the Amaranth simulator: every beat reaches every
consumer once and in order, sums are exact, under random idle cycles and independent random
backpressure per port; stream rules (a valid beat stays valid and unchanged until taken)."""
import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from ddnhw.hw.join import AlignedAdd, Fork
from ddnhw.hw.sim import pack, unpack
from ddnhw.ir import IntType


def run_ports(dut, ins, outs, n_out, idle, stall, seed, max_cycles=4000):
    """Drive the input ports ``ins`` ({name: beats}) and collect ``n_out`` beats on each of the
    output ports ``outs``; each port idles/stalls independently. Returns ({name: beats},
    protocol errors)."""
    rng = np.random.default_rng(seed)
    got = {o: [] for o in outs}
    errors = []

    async def bench(ctx):
        k = dict.fromkeys(ins, 0)
        held = dict.fromkeys(list(ins) + outs)      # a beat offered and not taken
        for cyc in range(max_cycles):
            if all(len(got[o]) >= n_out for o in outs):
                return
            for name, beats in ins.items():
                p = getattr(dut, name)
                w = p.payload.shape().elem_shape.width
                drive = k[name] < len(beats) and (held[name] or rng.random() >= idle)
                ctx.set(p.valid, int(drive))
                ctx.set(p.payload.as_value(), pack(beats[k[name]], w) if drive else 0)
                held[name] = drive
            for o in outs:
                ctx.set(getattr(dut, o).ready, int(rng.random() >= stall))
            sampled = await ctx.tick().sample(
                *[s for o in outs for s in (getattr(dut, o).valid, getattr(dut, o).ready,
                                            getattr(dut, o).payload.as_value())],
                *[s for name in ins for s in (getattr(dut, name).valid,
                                              getattr(dut, name).ready)])
            vals = sampled[2:]
            for j, o in enumerate(outs):
                v, r, pl = vals[3 * j:3 * j + 3]
                if held[o] is not None and (not v or pl != held[o]):
                    errors.append((cyc, o))
                held[o] = None
                if v and r:
                    lay = getattr(dut, o).payload.shape()
                    got[o].append(unpack(pl, lay.elem_shape.width, lay.elem_shape.signed,
                                         lay.length))
                elif v:
                    held[o] = pl
            for j, name in enumerate(ins):
                v, r = vals[3 * len(outs) + 2 * j:3 * len(outs) + 2 * j + 2]
                if v and r:
                    k[name] += 1
                    held[name] = False
        raise TimeoutError(f"{ {o: len(got[o]) for o in outs} } of {n_out} beats")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return {o: np.array(v, dtype=np.int64) for o, v in got.items()}, errors


def check_fork(n, lanes=3, beats=60, idle=0.3, stall=0.4, seed=0):
    dut = Fork(data.ArrayLayout(unsigned(5), lanes), n)
    x = np.random.default_rng(seed).integers(0, 32, (beats, lanes))
    outs = [f"o{k}" for k in range(n)]
    got, errors = run_ports(dut, {"i": x}, outs, beats, idle, stall, seed)
    for o in outs:
        np.testing.assert_array_equal(got[o], x)     # every beat once, in order
    assert errors == []


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_fork_broadcasts_under_backpressure(n, seed):
    check_fork(n, seed=seed)


def test_fork_full_rate():
    check_fork(2, idle=0.0, stall=0.0)


def check_add(t0, t1, s0, s1, lanes=4, beats=60, idle=0.3, stall=0.3, seed=0):
    lo = (t0.min << s0) + (t1.min << s1)
    hi = (t0.max << s0) + (t1.max << s1)
    ty = IntType.for_range(lo, hi, max(t0.frac + s0, t1.frac + s1))
    dut = AlignedAdd(lanes, t0, t1, ty, s0, s1)
    rng = np.random.default_rng(seed)
    a = rng.integers(t0.min, t0.max + 1, (beats, lanes))
    b = rng.integers(t1.min, t1.max + 1, (beats, lanes))
    a[0], b[0], a[1], b[1] = t0.min, t1.min, t0.max, t1.max        # both extremes
    got, errors = run_ports(dut, {"i0": a, "i1": b}, ["o"], beats, idle, stall, seed)
    np.testing.assert_array_equal(got["o"], (a << s0) + (b << s1))
    assert errors == []


@pytest.mark.parametrize("t0, t1, s0, s1", [
    (IntType(True, 9, 4), IntType(False, 4, 2), 0, 2),
    (IntType(False, 4, 3), IntType(True, 12, 0), 0, 3),
    (IntType(True, 5, 0), IntType(True, 5, 0), 0, 0),
    (IntType(False, 3, 0), IntType(True, 7, 0), 5, 0),
])
@pytest.mark.parametrize("seed", range(2))
def test_add_exact_under_backpressure(t0, t1, s0, s1, seed):
    check_add(t0, t1, s0, s1, seed=seed)


def test_add_full_rate_and_errors():
    check_add(IntType(True, 6, 0), IntType(False, 4, 0), 0, 1, idle=0.0, stall=0.0)
    with pytest.raises(ValueError, match="cannot hold"):
        AlignedAdd(2, IntType(False, 4), IntType(False, 4), IntType(False, 4))
    with pytest.raises(ValueError, match="shift1 must be an int"):
        AlignedAdd(2, IntType(False, 4), IntType(False, 4), IntType(False, 8), 0, -1)
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        Fork(unsigned(4), 1)
