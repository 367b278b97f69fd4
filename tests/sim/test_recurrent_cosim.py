"""A sequence classifier ``x (T, I) -> gru -> dense -> requant`` in Verilator == golden model on
thousands of random sequences (plus all-min / all-max ones) under random idle cycles and
backpressure, with the GRU fully parallel and folded; and every-step outputs of an rnn (multi-beat
input and output through the runner)."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ddnhw import golden
from ddnhw.ir.testing import random_recurrent, random_recurrent_classifier
from sim.runner import cosim, manifest_beats

from .test_runner import _fast_verilator_builds, cache_dir  # noqa: F401

import ddnhw.lower as lower
pytestmark = pytest.mark.cocotb


def sequences(graph, n, seed):
    t = graph.input.dtype
    x = np.random.default_rng(seed).integers(t.min, t.max + 1, size=(n,) + graph.input.shape)
    x[0], x[1] = t.min, t.max
    return x


def check_recurrent_cosim(graph, outdir, build_dir, n, seed=0, **options):
    man = lower.generate(graph, outdir, **options)
    steps = graph.input.shape[0]
    x = sequences(graph, n, seed)
    want = golden.run(graph, x)
    assert manifest_beats(man) == (steps, steps if want.ndim == 3 else 1)
    r = cosim(outdir / "ddnhw_top.v", man, x, expected=want.reshape(n, -1), seed=seed,
              idle_prob=0.3, stall_prob=0.3, build_dir=build_dir)
    assert r.mismatches == 0, r.message
    assert_array_equal(r.outputs, want.reshape(n, -1))
    # every sequence takes at least ii cycles
    assert r.cycles >= n * man["ii_cycles"]
    return r, man


@pytest.mark.slow   # ~60 s each on 2 shared CPUs (mostly the Verilator build)
@pytest.mark.parametrize("options", [
    {},                                                       # fully parallel
    {"folding": {"gru": (4, 6)}, "gate_lanes": {"gru": 2}},   # folded engine and gates
])
def test_gru_classifier_cosim(options, cache_dir):  # noqa: F811
    g = random_recurrent_classifier(7, op="gru", steps=6, n_in=4, hidden=6, in_bits=4,
                                    w_bits=4, state_bits=8, lut_bits=7, n_out=5)
    tag = "par" if not options else "fold"
    r, man = check_recurrent_cosim(g, cache_dir / f"gru_cls_{tag}", cache_dir / "builds",
                                   3000, seed=len(options), **options)
    assert man["layers"][0]["folded"] == bool(options)


@pytest.mark.slow   # ~25 s (build ~20 s)
def test_rnn_sequences_cosim(cache_dir):  # noqa: F811
    g = random_recurrent(9, op="rnn", steps=4, n_in=3, hidden=5, in_signed=True,
                         return_sequences=1)
    check_recurrent_cosim(g, cache_dir / "rnn_seq", cache_dir / "builds", 1000, seed=2,
                          folding={"rnn": (1, 1)}, gate_lanes={"rnn": 1})
