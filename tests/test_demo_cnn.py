"""ddnhw demo --model cnn end to end through the CLI (short training, a few images)."""
import json

from ddnhw.cli.main import main


def test_demo_cnn(tmp_path):
    rc = main(["demo", "--model", "cnn", "--out", str(tmp_path / "d"), "--cnn-epochs", "3",
               "--channels", "4", "--sim-images", "5", "-q", "--json", str(tmp_path / "s.json")])
    s = json.loads((tmp_path / "s.json").read_text())
    assert rc == 0 and s["mismatches"] == 0 and s["sim_images"] == 5
    assert (tmp_path / "d" / "rtl" / "ddnhw_top.v").exists()
