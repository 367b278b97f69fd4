"""LSTM sequence classifiers ``x (T, I) -> lstm -> dense -> requant`` in Verilator == golden
model on hundreds of random sequences (plus all-min / all-max ones) under random idle cycles and
backpressure, the LSTM fully parallel and folded, with a narrow cell state that clips; and
every-step outputs of a folded LSTM (multi-beat input and output through the runner)."""
from __future__ import annotations

from copy import deepcopy

import numpy as np
import pytest

from ddnhw import golden
from ddnhw.ir.testing import random_lstm, random_lstm_classifier

from .test_recurrent_cosim import check_recurrent_cosim, sequences
from .test_runner import _fast_verilator_builds, cache_dir  # noqa: F401

pytestmark = pytest.mark.cocotb


def _clips(graph, n, seed):
    """Whether the cell state of ``graph``'s lstm clips on the test's sequences."""
    x = sequences(graph, n, seed)
    wide = deepcopy(graph)
    wide.nodes[0].attrs["cell_bits"] = 30
    return not np.array_equal(golden.run(graph, x), golden.run(wide, x))


@pytest.mark.slow   # ~1 min each on 2 shared CPUs (mostly the Verilator build)
@pytest.mark.parametrize("options", [
    {},                                                          # fully parallel
    {"folding": {"lstm": (8, 5)}, "gate_lanes": {"lstm": 2}},    # folded engine and gates
])
def test_lstm_classifier_cosim(options, cache_dir):  # noqa: F811
    g = random_lstm_classifier(7, steps=5, n_in=4, hidden=4, in_bits=4, w_bits=4,
                               state_bits=8, lut_bits=7, gate_frac=6, cell_bits=7, n_out=5)
    seed = len(options)
    assert _clips(g, 400, seed)
    tag = "par" if not options else "fold"
    r, man = check_recurrent_cosim(g, cache_dir / f"lstm_cls_{tag}", cache_dir / "builds",
                                   400, seed=seed, **options)
    assert man["layers"][0]["op"] == "lstm"
    assert man["layers"][0]["folded"] == bool(options)


@pytest.mark.slow   # ~30 s (build ~25 s)
def test_lstm_sequences_cosim(cache_dir):  # noqa: F811
    g = random_lstm(9, steps=4, n_in=3, hidden=3, in_signed=True, cell_bits=6,
                    return_sequences=1)
    check_recurrent_cosim(g, cache_dir / "lstm_seq", cache_dir / "builds", 300, seed=2,
                          folding={"lstm": (1, 1)}, gate_lanes={"lstm": 1})
