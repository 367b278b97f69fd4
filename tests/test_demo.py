"""`ddnhw demo` end to end through the CLI (short training, Icarus: no compile step)."""
import json

import pytest

from ddnhw.cli.main import main
from ddnhw.flow import SUMMARY_KEYS

from ._tools import needs_icarus


@pytest.mark.cocotb
@pytest.mark.synth
@pytest.mark.slow
@needs_icarus
def test_demo_short(tmp_path, capsys):
    js = tmp_path / "demo.json"
    rc = main(["demo", "--epochs", "8", "--hidden", "8", "--random", "200", "--simulator",
               "icarus", "--out", str(tmp_path / "out"), "--json", str(js), "-q"])
    out = capsys.readouterr().out
    assert rc == 0, out
    d = json.loads(js.read_text())
    assert list(d) == sorted(SUMMARY_KEYS)   # written with sorted keys
    assert d["mismatches"] == 0 and d["int_mode_mismatches"] == 0
    assert d["vectors_checked"] == 360 + 200
    assert d["rtl_accuracy"] == d["quant_accuracy"]  # same predictions: bit-exact outputs
    assert d["board"] == "icebreaker" and d["luts"] > 0 and d["timing_met"]
    assert d["inferences_per_s"] == pytest.approx(d["fmax_mhz"] * 1e6 / d["ii_cycles"])
    assert d["model"]["sizes"] == [64, 8, 10] and d["example"] == "mlp"
    for f in ("model.npz", "rtl/ddnhw_top.v", "rtl/manifest.json", "summary.json"):
        assert (tmp_path / "out" / f).is_file(), f
    assert "RTL vs golden mismatches" in out and "0 of 560 vectors" in out
