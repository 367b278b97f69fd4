"""CLI behaviour: help, clear errors for bad input (exit 2, message names the culprit)."""
import os
import subprocess
import sys

import pytest

from ddnhw.cli.main import main
from ddnhw.ir import save_graph
from ddnhw.ir.testing import random_mlp


@pytest.mark.parametrize("cmd", ["demo", "train", "generate", "cosim", "build", "flash", "run",
                                 "boards"])
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: ddnhw " + cmd in capsys.readouterr().out


def test_console_script_installed():
    exe = os.path.join(os.path.dirname(sys.executable), "ddnhw")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "ddnhw" in out.stdout


@pytest.mark.parametrize("content", [b"garbage", b"PK\x03\x04broken"])
def test_bad_model_file(tmp_path, capsys, content):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    assert main(["generate", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "Traceback" not in err


def test_missing_model_file(tmp_path, capsys):
    assert main(["build", str(tmp_path / "none.npz")]) == 2
    err = capsys.readouterr().err
    assert "argument model: must be an existing file" in err and err.count("\n") == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_nonroot(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    m = tmp_path / "m.npz"
    save_graph(random_mlp(0), m)
    assert main(["generate", str(m), "--out", str(ro / "x")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_unwritable_output(tmp_path, capsys):
    # a path below a regular file can never be created, even by root
    f = tmp_path / "file"
    f.write_text("x")
    m = tmp_path / "m.npz"
    save_graph(random_mlp(0), m)
    assert main(["generate", str(m), "--out", str(f / "sub")]) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and str(f) in err


def test_bad_vectors_spec(tmp_path, capsys):
    m = tmp_path / "m.npz"
    save_graph(random_mlp(0), m)
    assert main(["cosim", str(m), "--out", str(tmp_path / "r"), "--vectors", "random:x"]) == 2
    assert "random:x" in capsys.readouterr().err


def test_unknown_board(tmp_path, capsys):
    m = tmp_path / "m.npz"
    save_graph(random_mlp(0), m)
    assert main(["build", str(m), "--board", "nosuchboard", "--out", str(tmp_path)]) == 2
    assert "nosuchboard" in capsys.readouterr().err


@pytest.mark.parametrize("flags,ii", [(["--board", "icebreaker"], None),
                                      (["--target-ii", "16"], 16),
                                      (["--max-luts", "3000"], None)])
def test_generate_auto_fold(tmp_path, capsys, flags, ii):
    """generate folds as the one decision says (flow.decide: unrolled when that fits the
    board), every layer's manifest entry says how, and the written model carries it."""
    import json
    from ddnhw import flow
    from ddnhw.ir import load_graph
    model = tmp_path / "m.npz"
    graph = random_mlp(0, sizes=(32, 16, 10))
    save_graph(graph, model)
    assert main(["generate", str(model), "--out", str(tmp_path / "o"), *flags]) == 0
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    out = capsys.readouterr().out
    assert f"II {man['ii_cycles']})" in out and "fc0: " in out
    kw = {"board": "icebreaker"} if flags[0] == "--board" else \
        {"target_ii": 16} if flags[0] == "--target-ii" else {"max_luts": 3000}
    want = flow.decide(graph, **kw)[1]["folding"] or {}
    layers = {l["name"]: l for l in man["layers"] if "pe" in l}
    assert layers.keys() == {"fc0", "fc1"}
    for name, layer in layers.items():
        fold = want.get(name)
        assert layer["folded"] == (fold is not None)
        if fold is not None:
            assert (layer["pe"], layer["simd"]) == tuple(fold)
    assert flow.model_folding(load_graph(tmp_path / "o" / "model.npz")) == (want or None)
    if ii is not None:
        assert man["ii_cycles"] <= ii
        assert want


def test_generate_nothing_fits(tmp_path, capsys):
    model = tmp_path / "m.npz"
    save_graph(random_mlp(0, sizes=(32, 16, 10)), model)
    assert main(["generate", str(model), "--out", str(tmp_path / "o"), "--max-luts", "50"]) == 2
    err = capsys.readouterr().err
    assert "smallest footprint" in err and "Traceback" not in err
