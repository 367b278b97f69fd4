import json
import subprocess
import sys

import numpy as np
import pytest

from ddnhw.golden import run
from ddnhw.hw.sim import run_stream
from ddnhw.ir.testing import random_mlp
from ddnhw.lower import build_network, generate


def _vectors(t, lanes, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(t.min, t.max + 1, size=(n, lanes))
    return np.concatenate([np.full((1, lanes), t.min), np.full((1, lanes), t.max), x])


def check_network(seed, sizes, n=60, idle=0.3, stall=0.3, **options):
    g = random_mlp(seed, sizes=sizes)
    net = build_network(g, **options)
    x = _vectors(g.input.dtype, sizes[0], n, seed)
    y, log = run_stream(net, x, idle=idle, stall=stall, seed=seed)
    np.testing.assert_array_equal(y, run(g, x))
    assert log["protocol"] == []
    return net, log


@pytest.mark.parametrize("seed,sizes", [(0, (12, 6, 4)), (1, (10, 8, 6, 3)), (2, (16, 5, 4))])
def test_network_random(seed, sizes):
    check_network(seed, sizes)


def test_network_options():
    check_network(3, (9, 5, 3), regs_every=1, dense_style="shiftadd")


def test_network_timing_full_rate():
    net, log = check_network(4, (8, 6, 3), n=20, idle=0.0, stall=0.0)
    assert net.latency == sum(l["latency"] for l in net.layers) and net.ii == 1
    assert [o - i for i, o in zip(log["in"], log["out"])] == [net.latency] * len(log["out"])
    assert log["in"] == list(range(len(log["in"])))


def test_generate_manifest(tmp_path):
    g = random_mlp(5, sizes=(8, 4, 3))
    man = generate(g, tmp_path, name="top5")
    v = (tmp_path / "top5.v").read_text()
    assert json.loads((tmp_path / "manifest.json").read_text()) == man
    assert man["top"] == "top5" and man["verilog"] == "top5.v"
    assert man["input"]["lanes"] == 8 and man["input"]["bits"] == 4
    assert not man["input"]["signed"] and man["output"]["lanes"] == 3
    assert [l["op"] for l in man["layers"]] == ["dense", "requant", "dense"]
    assert man["ii_cycles"] == 1 and man["latency_cycles"] == sum(
        l["latency"] for l in man["layers"])
    for port in ("clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload", "o__valid",
                 "o__ready"):
        assert f" {port}" in v
    assert f"input [31:0] i__payload" in v
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


_GEN = ("import sys; from ddnhw.ir.testing import random_mlp; from ddnhw.lower import generate; "
        "generate(random_mlp(6, sizes=(10, 6, 4)), sys.argv[1])")


def test_generate_deterministic(tmp_path):
    g = random_mlp(6, sizes=(10, 6, 4))
    m1 = generate(g, tmp_path / "a")
    m2 = generate(random_mlp(6, sizes=(10, 6, 4)), tmp_path / "b")
    subprocess.run([sys.executable, "-c", _GEN, str(tmp_path / "c")], check=True,
                   env={"PYTHONHASHSEED": "123", "PATH": ""})
    files = [(tmp_path / d / f).read_bytes() for d in "abc" for f in ("ddnhw_top.v",
                                                                      "manifest.json")]
    assert files[0] == files[2] == files[4]
    assert files[1] == files[3] == files[5]
    assert m1 == m2


def test_network_rejects_bad_name(tmp_path):
    with pytest.raises(ValueError, match="identifier"):
        generate(random_mlp(0, sizes=(4, 2)), tmp_path, name="9 bad")
