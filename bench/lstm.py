"""Benchmark: an LSTM sequence classifier in the digits rows shape (8 steps x 8 inputs, hidden
16, 4-bit weights, 8-bit state, 12-bit cell state, dense to 10 logits) on the iCE40UP5K and the
ECP5-85F: resources, Fmax, latency, II, sequences/s. The graph is a seeded random one
(``random_lstm_classifier`` of :mod:`ddnhw.ir.testing`: hardware cost does not depend on
training); every built configuration is first cosimulated in Verilator bit-exact against the
golden model (random sequences incl. all-min/all-max, idle 0.3, backpressure 0.3).

    .venv/bin/python bench/lstm.py [--out bench/results] [--work /work/scratch/bench-lstm]
        [--configs up5k_folded,ecp5_folded,...] [--no-cosim] [--force]

Writes ``<out>/lstm.json`` and ``<out>/lstm.md``; rows already in ``lstm.json`` are kept unless
``--force``.
"""
from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ddnhw.ir.testing import random_lstm_classifier  # noqa: E402
from bench.rnn import run_bench, write_md  # noqa: E402

MODEL = dict(steps=8, n_in=8, hidden=16, in_bits=8, in_signed=True, w_bits=4, state_bits=8,
             lut_bits=8, gate_frac=7, cell_bits=12, n_out=10, a_bits=8)
DESCRIPTION = ("LSTM classifier: x (8 steps x 8 signed 8-bit inputs, the shape of the digits "
               "rows) -> LSTM hidden 16 (4-bit weights, 8-bit state, 12-bit cell state, "
               "256-entry sigmoid/tanh tables, gate_frac 7) -> dense 10 -> requant to 8-bit "
               "logits; output h_T only; the tanh(c) table index is c >> 1 for every unit, as an "
               "export sets it (c has 6 fraction bits, the index 5), the other index "
               "requantizers random")
FOLDED = {"folding": {"lstm": (2, 4), "classifier": (1, 1)}, "gate_lanes": {"lstm": 1},
          "fifos": "none"}
# name: (board, options)
CONFIGS = {
    # the UP5K: MAC engine 2 x 4 MACs over the 64 x 24 matrix, one hidden unit per cycle in the
    # gates, the classifier one MAC (its requantizer fused)
    "up5k_folded": ("icebreaker", FOLDED),
    # the ECP5-85F with the UP5K's folding, for comparison
    "ecp5_folded": ("ulx3s-85f", FOLDED),
    # the ECP5-85F: everything unrolled (constant-weight adder trees, 16 gate lanes)
    "ecp5_parallel": ("ulx3s-85f", {}),
}


def model(seed=0):
    """The seeded random classifier, its ``tanh(c)`` index requantizers set as an export sets
    them: ``c`` (the state's binary point, 6 fraction bits) to the table index (5 fraction
    bits) is one shift for every hidden unit (multiplier 1, shift 1)."""
    g = random_lstm_classifier(seed, **MODEL)
    a, h = g.nodes[0].attrs, MODEL["hidden"]
    frac, idx_frac = g.tensors[g.nodes[0].outputs[0]].dtype.frac, MODEL["lut_bits"] - 3
    a["multiplier"][4 * h:], a["shift"][4 * h:] = 1, frac - idx_frac
    return g.check()


def main(argv=None):
    md = partial(write_md, title="LSTM benchmark", description=DESCRIPTION,
                 script="bench/lstm.py")
    return run_bench(argv, __doc__, "lstm", model(), CONFIGS, MODEL, md,
                     "/work/scratch/bench-lstm")


if __name__ == "__main__":
    raise SystemExit(main())
