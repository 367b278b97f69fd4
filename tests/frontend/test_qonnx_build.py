"""An imported Brevitas MLP built for the iCEBreaker (UP5K) with the user's command, behind the
UART link: timing met, the bitstream written."""
import json

import pytest

from ddnhw.cli.main import main

pytestmark = [pytest.mark.synth, pytest.mark.slow]


def test_build_imported_mlp_icebreaker(exported, tmp_path, capsys):
    path, _ = exported("mlp_w2a2")
    model = tmp_path / "model.npz"
    assert main(["import", str(path), "--out", str(model)]) == 0
    assert main(["build", str(model), "--board", "icebreaker", "--out", str(tmp_path / "b")]) == 0
    rep = json.loads((tmp_path / "b" / "icebreaker" / "report.json").read_text())
    assert rep["timing_met"] is True and rep["fmax_mhz"] > rep["clock_mhz"]
    assert 0 < rep["luts"] < 5280
    from pathlib import Path
    assert Path(rep["bitstream"]).stat().st_size > 0
    assert "met" in capsys.readouterr().out
