"""Resets in the middle of a stream, in the RTL (Verilator bulk harness, ``sim/harness.v``).

At random cycles the harness asserts the DUT's reset (1-4 cycles) while vectors are in flight;
after every reset the design must accept a fresh stream and give exactly the golden outputs of
the vectors sent after it, in order: nothing stale, nothing lost after the last reset. The
bench (``bench/trust.py --part resets``) runs >= 10^5 vectors with >= 1,000 resets through the
demo MLP, a folded CNN and the GRU; this is its small CI slice.
"""
from __future__ import annotations

import numpy as np
import pytest

from ddnhw import flow, golden
from ddnhw.host.cosim import _check_segments, cosim
from ddnhw.ir.testing import random_cnn
import ddnhw.lower as lower

from ..sim.test_runner import _fast_verilator_builds, cache_dir  # noqa: F401

# the CI slice: one folded CNN (several input beats per vector); the bench runs the demo MLP,
# a folded CNN and the GRU (``bench/trust.py --part resets``)
CASES = {
    "cnn-folded": (lambda: random_cnn(3, in_shape=(4, 4, 1), channels=2, n_out=3),
                   {"folding": {"conv0": (1, 3), "fc": (1, 2)}}),
}


def reset_cycles(n_vectors, ii, count, seed):
    rng = np.random.default_rng(seed)
    span = max(count + 20, int(n_vectors * max(ii, 1) * 1.5))
    return np.sort(rng.choice(np.arange(10, span), size=count, replace=False))


@pytest.mark.cocotb
@pytest.mark.parametrize("name", sorted(CASES))
def test_resets_mid_stream_rtl(name, tmp_path, cache_dir):  # noqa: F811
    make, opts = CASES[name]
    g = make()
    man = lower.generate(g, tmp_path, "rst_top", **opts)
    n = 200
    x = flow.random_vectors(g, n, seed=1)
    y = golden.run(g, x)
    resets = reset_cycles(n, man["ii_cycles"], 40, seed=2)
    res = cosim(tmp_path / man["verilog"], man, x, expected=y, seed=5, idle_prob=0.3,
                stall_prob=0.5, build_dir=cache_dir / "builds", resets=resets)
    assert res.mismatches == 0, res.message
    ex = res.extra
    assert ex["resets"] >= 20                                     # most resets hit the stream
    assert ex["vectors_lost"] > 0                                 # some hit vectors in flight
    assert ex["vectors_checked"] + ex["vectors_lost"] >= n * 0.8
    # the last segment drains completely
    v0, v1 = ex["segments"][-1]["vectors"]
    assert v1 == n and ex["segments"][-1]["outputs"] * 1 >= (v1 - v0)


def test_segment_check_catches_stale_and_lost_outputs():
    """The judge can fail: a stale output after a reset, a wrong one, or one missing after the
    last reset are each counted."""
    exp = np.arange(20).reshape(10, 2)
    marks = np.array([[3, 5]])            # 3 outputs before the reset; go on at vector 5
    good = np.concatenate([exp[:3], exp[5:]])
    assert _check_segments(good, exp, marks, 1, 2 // 2, 10)[0] == 0
    stale = np.concatenate([exp[:3], exp[3:4], exp[5:]])           # vector 3 came out late
    assert _check_segments(stale, exp, marks, 1, 1, 10)[0] > 0
    wrong = good.copy()
    wrong[4, 0] += 1
    assert _check_segments(wrong, exp, marks, 1, 1, 10)[0] == 1
    assert _check_segments(good[:-1], exp, marks, 1, 1, 10)[0] == 1   # the last one lost
