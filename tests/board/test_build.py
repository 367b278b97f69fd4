"""Synthesis of small stream cores for the supported boards (yosys + nextpnr via YoWASP)."""

import json

import pytest

from ddnhw import DdnhwError
from ddnhw.board import build, get_board

from .cores import PairwiseMul, adder4

pytestmark = pytest.mark.synth


def check_report(report, board, outdir):
    profile = get_board(board)
    assert report["board"] == board and report["device"] == profile.device
    assert report == json.loads((outdir / "report.json").read_text())
    assert 0 < report["luts"] < profile.budget["luts"]
    assert report["ffs"] >= 4 * 9 + 1 + 66 + 36  # core output + shim shift registers
    assert report["io"] > 0
    assert report["dsps"] == 0 and report["brams"] == 0
    assert report["clock_mhz"] == profile.clock_mhz
    assert report["fmax_mhz"] > profile.clock_mhz
    assert report["timing_met"] is True
    assert report["seconds"] > 0
    assert report["bitstream"] and (outdir / report["bitstream"]).stat().st_size > 0
    for log in report["logs"].values():
        assert (outdir / log).exists()


@pytest.mark.parametrize("board", ["icebreaker", "ulx3s-85f"])
def test_build_adder(board, tmp_path):
    report = build(adder4(), board, tmp_path / board)
    check_report(report, board, tmp_path / board)


def test_build_deterministic(tmp_path):
    reports = [build(adder4(), "icebreaker", tmp_path / str(k)) for k in range(2)]
    bits = [open(r["bitstream"], "rb").read() for r in reports]
    assert bits[0] == bits[1]
    assert reports[0]["fmax_mhz"] == reports[1]["fmax_mhz"]


def test_build_timing_not_met(tmp_path):
    report = build(PairwiseMul(1, 16, "mul"), "icebreaker", tmp_path, clock_mhz=400)
    assert report["clock_mhz"] == 400
    assert report["timing_met"] is False
    assert 0 < report["fmax_mhz"] < 400
    assert report["dsps"] == 1


def test_build_too_many_dsps(tmp_path):
    with pytest.raises(DdnhwError, match=r"'icebreaker'.*ICESTORM_DSP: 16 used of 8 available "
                                         r"\(over by 8"):
        build(PairwiseMul(16, 8, "mul"), "icebreaker", tmp_path)


@pytest.mark.slow
def test_build_too_many_lcs(tmp_path):
    # 4-bit products stay in logic; the multiplier array alone overflows the UP5K.
    with pytest.raises(DdnhwError, match=r"'icebreaker'.*ICESTORM_LC: \d+ used of 5280 "
                                         r"available \(over by \d+"):
        build(PairwiseMul(128, 4, "mul"), "icebreaker", tmp_path)


def test_build_one_channel_requantizer_ecp5(tmp_path):
    # regression: the array lane name "o__payload[0]" made Yosys 0.70's ABC9 reintegration
    # fail (exit 1) on ECP5 for a one-channel requantizer (the ternary digits MLP's fc0_rq)
    import numpy as np
    from ddnhw.hw import Requantizer
    from ddnhw.ir import IntType
    rq = Requantizer(np.array([197]), np.array([14]), 0, 15, IntType(True, 11, 7),
                     IntType(False, 4, 1))
    report = build(rq, "ulx3s-85f", tmp_path)
    assert report["luts"] > 0 and report["timing_met"] is True


def _fake_runs(monkeypatch, codes):
    """Replace the tool run: the k-th run exits with ``codes[k]`` (None: the real run)."""
    import sys
    build_module = sys.modules["ddnhw.board.build"]   # ddnhw.board.build is also the function
    real, calls = build_module._run_script, []

    def fake(argv, cwd, env, log, timeout):
        calls.append(argv)
        code = codes[len(calls) - 1] if len(calls) <= len(codes) else None
        if code is not None:
            log.write_text("")
        return real(argv, cwd, env, log, timeout) if code is None else code
    monkeypatch.setattr(build_module, "_run_script", fake)
    return calls


@pytest.mark.parametrize("code", [128 + 7, 128 + 11, -7])   # SIGBUS, SIGSEGV (sh: 128 + N)
def test_build_reruns_a_crashed_tool_once(tmp_path, monkeypatch, code):
    calls = _fake_runs(monkeypatch, [code])
    report = build(PairwiseMul(1, 4, "mul"), "icebreaker", tmp_path)
    assert len(calls) == 2 and report["luts"] > 0


def test_build_crashing_twice_is_an_error(tmp_path, monkeypatch):
    calls = _fake_runs(monkeypatch, [128 + 7, 128 + 7])
    with pytest.raises(DdnhwError, match=r"failed \(exit 135\)"):
        build(PairwiseMul(1, 4, "mul"), "icebreaker", tmp_path)
    assert len(calls) == 2


@pytest.mark.parametrize("code,name", [(128 + 15, "SIGTERM"), (128 + 2, "SIGINT"),
                                       (128 + 9, "SIGKILL"), (-15, "SIGTERM")])
def test_build_does_not_rerun_a_stopped_tool(tmp_path, monkeypatch, code, name):
    from ddnhw import Interrupted
    calls = _fake_runs(monkeypatch, [code])
    with pytest.raises(Interrupted, match=f"stopped by {name} \\(not retried\\)") as e:
        build(PairwiseMul(1, 4, "mul"), "icebreaker", tmp_path)
    assert len(calls) == 1 and e.value.exit_status == code if code > 0 else 128 - code
    assert not list(tmp_path.glob("*.bin")) and not (tmp_path / "report.json").exists()


def test_build_does_not_rerun_a_tool_error(tmp_path, monkeypatch):
    calls = _fake_runs(monkeypatch, [1])
    with pytest.raises(DdnhwError, match=r"yosys failed \(exit 1\)"):
        build(PairwiseMul(1, 4, "mul"), "icebreaker", tmp_path)
    assert len(calls) == 1


def test_build_timeout_stops_the_tools(tmp_path):
    """A time limit shorter than the tools need stops them (the whole process group) and
    leaves neither a bitstream nor a report."""
    import time
    from ddnhw.board.build import BuildTimeout
    t0 = time.monotonic()
    with pytest.raises(BuildTimeout, match=r"time limit of 0.5 s .*no bitstream or report"):
        build(PairwiseMul(8, 4, "mul"), "icebreaker", tmp_path, timeout=0.5)
    assert time.monotonic() - t0 < 30
    assert not list(tmp_path.glob("*.bin")) and not (tmp_path / "report.json").exists()
    with pytest.raises(DdnhwError, match="timeout must be a positive number"):
        build(PairwiseMul(1, 4, "mul"), "icebreaker", tmp_path, timeout=-1)
