"""Hostile inputs: each gives a DdnhwError naming the culprit (CLI: exit 2, no traceback) and
leaves no half-written output."""
from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from ddnhw import DdnhwError, golden
from ddnhw.cli.main import main
from ddnhw.ir import IntType, load_graph, save_graph
from ddnhw.ir.testing import random_mlp


@pytest.fixture
def model(tmp_path):
    p = tmp_path / "m.npz"
    save_graph(random_mlp(0, sizes=(6, 4, 3)), p)
    return p


def _cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _rewrite(src, dst, edit):
    """Copy a model file, editing its JSON structure and arrays."""
    with np.load(src) as z:
        files = {k: z[k] for k in z.files}
    js = json.loads(str(files["__graph__"]))
    edit(js, files)
    files["__graph__"] = np.array(json.dumps(js))
    np.savez(dst, **files)


# -- model files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("frac", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_model_file(model, tmp_path, capsys, frac):
    data = model.read_bytes()
    bad = tmp_path / "trunc.npz"
    bad.write_bytes(data[:int(len(data) * frac)])
    with pytest.raises(DdnhwError, match="trunc.npz"):
        load_graph(bad)
    rc, err = _cli(capsys, "generate", bad, "--out", tmp_path / "o")
    assert rc == 2 and "trunc.npz" in err
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_corrupted_byte_in_model_file(model, tmp_path):
    data = bytearray(model.read_bytes())
    for pos in range(40, len(data), max(1, len(data) // 25)):
        bad = tmp_path / "flip.npz"
        d = bytearray(data)
        d[pos] ^= 0xFF
        bad.write_bytes(bytes(d))
        try:
            load_graph(bad)        # a flip in padding may be harmless; then the model is valid
        except DdnhwError as e:
            assert "flip.npz" in str(e)


@pytest.mark.parametrize("edit,match", [
    (lambda js, f: js["nodes"][0].update(op="conv3d"), "unsupported op 'conv3d'"),
    (lambda js, f: js["nodes"][0].update(op="softmax"), "softmax"),
    (lambda js, f: js["tensors"][0]["dtype"].update(bits=0), "bits"),
    (lambda js, f: js["tensors"][0]["dtype"].update(bits=65), "bits"),
    (lambda js, f: js["tensors"][0]["dtype"].update(bits=1, signed=True), "bits"),
    (lambda js, f: js["tensors"][0]["dtype"].update(bits="8"), r"tensors\[0\]\.dtype.*bits.*must be int"),
    (lambda js, f: js["tensors"][0]["dtype"].update(bits="eight"), "malformed"),
    (lambda js, f: js["tensors"][1]["dtype"].update(bits=3), "cannot hold"),
    (lambda js, f: js.update(version=99), "version"),
    (lambda js, f: js.pop("nodes"), "malformed"),
    (lambda js, f: f.pop("fc0/weight"), "weight"),
    (lambda js, f: f.update({"fc0/weight": f["fc0/weight"].astype(np.float64)}), "not integer"),
    (lambda js, f: f.update({"fc0/weight": f["fc0/weight"][:, :2]}), "fc0"),
    (lambda js, f: f.update({"fc0_rq/shift": f["fc0_rq/shift"] + 70}), "shift"),
])
def test_malformed_model(model, tmp_path, capsys, edit, match):
    bad = tmp_path / "bad.npz"
    _rewrite(model, bad, edit)
    with pytest.raises(DdnhwError, match=match):
        load_graph(bad)
    rc, err = _cli(capsys, "generate", bad, "--out", tmp_path / "o")
    assert rc == 2 and "bad.npz" in err


def test_pickled_object_array_refused(model, tmp_path):
    bad = tmp_path / "pickle.npz"
    _rewrite(model, bad, lambda js, f: f.update({"fc0/bias": np.array([object()] * 4)}))
    with pytest.raises(DdnhwError, match="pickle.npz"):
        load_graph(bad)


# -- export ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("where,value", [("weight", float("nan")), ("weight", float("inf")),
                                         ("bias", float("-inf")), ("bias", float("nan"))])
def test_export_rejects_non_finite(where, value):
    import torch
    from ddnhw.quant import QuantMLP, export_mlp
    m = QuantMLP((4, 3, 2))
    m.calibrate(torch.rand(10, 4))
    with torch.no_grad():
        getattr(m.layers[0], where).view(-1)[0] = value
    with pytest.raises(DdnhwError, match=f"fc0: {where} contains NaN or Inf"):
        export_mlp(m)


@pytest.mark.parametrize("bits", [0, 1, 9, 64, -3, 2.5, True])
def test_unrealizable_bits(bits):
    from ddnhw.quant import QuantMLP
    for kw in ("in_bits", "w_bits", "a_bits"):
        with pytest.raises(DdnhwError, match="bit width"):
            QuantMLP((4, 3, 2), **{kw: bits})


# -- input tensors --------------------------------------------------------------------------------

@pytest.mark.parametrize("x,match", [
    (np.zeros((3, 5), np.int64), "shape"),
    (np.zeros((6,), np.int64), "shape"),
    (np.zeros((2, 6), np.complex64), "dtype"),   # float vectors are real inputs (quantized)
    (np.full((2, 6), 16), "out of range"),
    (np.full((2, 6), -1), "out of range"),
    (np.array([["a"] * 6]), "dtype"),
])
def test_golden_rejects_bad_inputs(x, match):
    g = random_mlp(0, sizes=(6, 4, 3))
    with pytest.raises(DdnhwError, match=match):
        golden.run(g, x)


@pytest.mark.parametrize("x,match", [
    (np.zeros((3, 5), np.int64), "x.npy"),
    (np.zeros((2, 6), np.complex64), "dtype"),   # float vectors are real inputs (quantized)
    (np.full((2, 6), 99), "out of range"),
    (np.zeros((), np.int64), "x.npy"),
    (b"not an npy file", "x.npy"),
])
def test_cli_cosim_bad_vectors(model, tmp_path, capsys, x, match):
    f = tmp_path / "x.npy"
    if isinstance(x, bytes):
        f.write_bytes(x)
    else:
        np.save(f, x)
    rc, err = _cli(capsys, "cosim", model, "--out", tmp_path / "rtl", "--vectors", f)
    assert rc == 2 and match in err, err


def test_runner_rejects_bad_inputs(model, tmp_path):
    from ddnhw.lower import generate
    from ddnhw.host.cosim import cosim
    man = generate(load_graph(model), tmp_path, "top")
    v = tmp_path / man["verilog"]
    for x, match in [(np.zeros((2, 5), np.int64), "lanes"), (np.full((2, 6), 99), "range")]:
        with pytest.raises(DdnhwError, match=match):
            cosim(v, man, x)


# -- environment ----------------------------------------------------------------------------------

def _run_cli(args, env):
    return subprocess.run([sys.executable, "-m", "ddnhw.cli.main", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("what", ["cosim", "build"])
def test_missing_toolchain(model, tmp_path, what):
    # an empty PATH: no verilator/make/c++, no yosys/nextpnr on the path
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERILATOR", "YOSYS",
                                                                    "NEXTPNR", "ICEPACK"))}
    env["PATH"] = ""
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    if what == "cosim":
        args = ["cosim", model, "--out", tmp_path / "r", "--vectors", "random:4"]
    else:
        args = ["build", model, "--board", "icebreaker", "--out", tmp_path / "b",
                "--toolchain", "system"]
    p = _run_cli(args, env)
    assert p.returncode == 2, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert any(t in p.stderr for t in ("not found", "not on PATH", "install")), p.stderr


def test_full_disk_cli(model, tmp_path, monkeypatch, capsys):
    import ddnhw.atomic as atomic
    real = os.fdopen

    def fdopen(fd, mode="r", *a, **kw):
        f = real(fd, mode, *a, **kw)
        orig = f.write

        def w(s):
            orig(s[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        f.write = w
        return f
    monkeypatch.setattr(atomic.os, "fdopen", fdopen)
    rc, err = _cli(capsys, "generate", model, "--out", tmp_path / "o")
    assert rc == 2 and "No space left" in err
    assert [p.name for p in (tmp_path / "o").iterdir()] == []
    # the model file itself: nothing left over either
    with pytest.raises(DdnhwError, match="n.npz: cannot write: No space left"):
        save_graph(random_mlp(1), tmp_path / "n.npz")
    assert not (tmp_path / "n.npz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_unwritable_output(model, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    rc, err = _cli(capsys, "generate", model, "--out", f / "sub")
    assert rc == 2 and "not writable" in err
