"""The fuzzed link through the RTL board top at volume (CI slice of ``bench/trust.py --part
link``): the host runtime (ddnhw.host.Link, no --confirm) against the Verilator model of
UARTLink + a core, the UART bit level in C++ (ddnhw.host.link_sim), frames damaged both ways.
Every answer is delivered once and exact, or reported lost; the RTL's replies are always well
formed and its UART never misframes."""
import numpy as np
import pytest

from ddnhw.host.fuzz import DAMAGE
from ddnhw.ir.testing import random_mlp

from ..sim.test_runner import _fast_verilator_builds, cache_dir  # noqa: F401

pytestmark = pytest.mark.cocotb


def test_fuzzed_link_through_the_rtl(cache_dir):  # noqa: F811
    from ddnhw.host.link_sim import fuzz_link_rtl
    g = random_mlp(3, sizes=(6, 5, 3))
    r = fuzz_link_rtl(g, 400, build_dir=cache_dir / "linksim", seed=5, error_rate=0.2,
                      retries=8)
    assert r["wrong_accepted"] == 0 and r["delivered_twice"] == 0, r
    assert r["delivered"] + r["lost_after_retries"] == 400 and r["lost_after_retries"] <= 4, r
    assert r["malformed_reply_bytes"] == 0 and r["uart_framing_errors"] == 0, r
    assert 0.13 < r["frame_error_rate"] < 0.27, r
    assert set(r["frames_damaged"]["to_device"]) == set(DAMAGE), r
    assert r["device_errors"].get("bad CRC") and r["device_errors"].get("wrong length"), r
    assert r["frames_on_wire"]["to_device"] > 500


def test_rtl_port_without_damage_is_exact(cache_dir):  # noqa: F811
    """The C++ UART and the port: no damage, back-to-back frames (window 4: what the device
    buffers), all exact, no retry."""
    from ddnhw import golden
    from ddnhw.host.link import Link
    from ddnhw.host.link_sim import CLOCK_NS, RtlPort, build_link_sim
    g = random_mlp(3, sizes=(6, 5, 3))
    port = RtlPort(build_link_sim(g, cache_dir / "linksim"))
    try:
        link = Link(port, baud=round(1e9 / CLOCK_NS / 4), timeout=60e-6, window=4)
        link.check(g)
        t = g.input.dtype
        x = np.random.default_rng(0).integers(t.min, t.max + 1, size=(300, 6))
        out, _ = link.infer(x)
        assert np.array_equal(out, golden.run(g, x))
        assert link.stats.retries == 0 and link.stats.bad_reply_frames == 0
        assert port.status()["framing_errors"] == 0
    finally:
        port.close()
