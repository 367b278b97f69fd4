"""THE board test: the complete board top (UART + framing + the demo core) in Verilator at the
bit level, driven by the host runtime's own code (ddnhw.host.Link) over a simulated serial port.

The digits test split must come back bit-exact, and so must the vectors after garbage bytes, a
corrupted CRC, a truncated frame and a back-to-back burst; the host must reject a wrong design.
"""
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ddnhw import examples, golden
from ddnhw.board import protocol as P
from ddnhw.ir import load_graph, save_graph
from ddnhw.ir.testing import random_mlp

pytestmark = pytest.mark.cocotb

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "digits_mlp.npz"


def test_link_cosim_digits(tmp_path_factory):
    from ddnhw.host.cosim_link import cosim_link

    graph = load_graph(DEMO)
    x, _ = examples.test_inputs("mlp", graph)
    tmp = tmp_path_factory.mktemp("link")
    wrong = tmp / "wrong.npz"
    save_graph(random_mlp(0, sizes=(64, 16, 10)), wrong)
    build_dir = tmp_path_factory.getbasetemp().parent / "ddnhw-link-sim"
    res = cosim_link(graph, x, build_dir=build_dir, divisor=4, window=4, burst_window=16,
                     phase_rows=24, wrong_model=wrong, fuzz_rows=40, fuzz_rate=0.3)

    assert res["ident"]["graph_hash"] == graph_hash(graph)
    assert "wrong design on the board" in res["wrong_design_message"]
    assert res["framing_errors"] == 0
    phases = res["phases"]
    assert set(phases) == {"all", "garbage", "bad_crc", "truncated", "burst"}
    all_ = phases["all"]
    assert all_["n"] == len(x) and all_["mismatches"] == [] and all_["retries"] == 0
    assert_array_equal(np.array(all_["outputs"]), golden.run(graph, x))
    for name in ("garbage", "bad_crc", "truncated", "burst"):
        assert phases[name]["n"] == 24 and phases[name]["mismatches"] == [], name
    assert phases["bad_crc"]["device_errors"].get("bad CRC") == 1
    assert phases["garbage"]["device_errors"]          # the device saw and reported garbage
    assert phases["truncated"]["device_errors"]        # the truncated frame got an error reply
    # A burst of 16 outstanding frames runs at the line rate: about one vector per input frame.
    bit_s = 4 * 10e-9
    frame_s = (P.OVERHEAD + 32) * 10 * bit_s
    assert phases["all"]["seconds"] < 1.1 * len(x) * frame_s + 1e-4
    # 40 vectors, frames to the RTL damaged at random (30 %), no confirmation: each answer
    # exact or lost
    fz = res["fuzz"]
    assert fz["wrong_accepted"] == 0 and fz["delivered_twice"] == 0, fz
    assert fz["delivered"] + fz["lost_after_retries"] == 40 and fz["delivered"] >= 36, fz
    assert sum(fz["damaged"].values()) >= 5 and fz["device_errors"], fz


def graph_hash(graph):
    from ddnhw.lower.network import graph_sha256
    return graph_sha256(graph)[:16]
