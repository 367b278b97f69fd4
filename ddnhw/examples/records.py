"""The example records (``ddnhw demo --model NAME``): data only. Adding an example is adding
one :class:`~ddnhw.flow.Example` to :data:`RECORDS`: a data loader (:mod:`.data`), a trainer
(:mod:`.trainers`), its settings, default boards and folding policy."""
from __future__ import annotations

from ddnhw.flow.pipeline import Example

import ddnhw.examples.data as data
import ddnhw.examples.lut as lut
import ddnhw.examples.trainers as trainers

__all__ = ["RECORDS", "DIGITS_CNN_LAYERS", "DIGITS_DWS_LAYERS", "SIGNAL_LAYERS",
           "recurrent_folding", "MNIST1D_CNN_LAYERS", "MNIST1D_CNN_UP5K_LAYERS",
           "planned_folding"]

DIGITS_CNN_LAYERS = ({"op": "conv", "out": 8, "kernel": 3, "padding": 1},
                     {"op": "maxpool", "kernel": 2}, {"op": "flatten"},
                     {"op": "linear", "out": 10})
# the digits CNN with a depthwise-separable block after its pool: depthwise 3x3 (groups = C:
# one 3x3 filter per channel) then pointwise 1x1 (bench/depthwise.py: its folded cost against
# a dense 3x3 conv in its place)
DIGITS_DWS_LAYERS = ({"op": "conv", "out": 8, "kernel": 3, "padding": 1},
                     {"op": "maxpool", "kernel": 2},
                     {"op": "conv", "out": 8, "kernel": 3, "padding": 1, "groups": 8},
                     {"op": "conv", "out": 8, "kernel": 1},
                     {"op": "flatten"}, {"op": "linear", "out": 10})
# the max pool halves the flattened features (48 -> 24) for a smaller dense layer and, at the
# same II, raises 4-bit test accuracy from 0.9833 (no pool) to 0.9944 (seed 0, 40+40 epochs)
SIGNAL_LAYERS = ({"op": "conv1d", "out": 8, "kernel": 5, "stride": 2},
                 {"op": "conv1d", "out": 8, "kernel": 3, "stride": 2},
                 {"op": "maxpool1d", "kernel": 2},
                 {"op": "flatten"}, {"op": "linear", "out": 3})


def recurrent_folding(simd):
    """The UP5K folding of a sequence classifier: the recurrent layer (named after its cell)
    at one PE and ``simd`` lanes over ``[x_t, h]`` (fewer when it has fewer columns), the
    classifier ``fc`` at (1, 1)."""
    def folding(graph, settings):
        cell = settings["cell"]
        n_cols = graph.node(cell).attrs["weight"].shape[1]
        return {cell: (1, min(simd, n_cols)), "fc": (1, 1)}
    return folding


_DIGITS = dict(dataset="sklearn-digits", load=data.digits)
_SIGNALS = dict(dataset="waveforms", load=data.waveforms)
_JETS = dict(dataset="synthetic-jets", load=lut.jets)
_DIGIT_ROWS = dict(steps=8, input_size=8)
_SIGNAL_STEPS = dict(steps=data.SIGNAL_LENGTH, input_size=1)

RECORDS = (
    # sized to fit the iCE40UP5K fully unrolled (see README); `ddnhw demo`'s default
    Example("mlp", "an MLP (64-16-10) on scikit-learn's digits", **_DIGITS, trainer=trainers.mlp,
            settings=dict(hidden=16, bits=4, prune=0.5, epochs=120),
            random_vectors=10000, sim_vectors=0),
    Example("cnn", "a digits CNN (conv 3x3 x8, maxpool 2, dense 10)", **_DIGITS,
            trainer=trainers.cnn, settings=dict(layers=DIGITS_CNN_LAYERS, in_shape=(1, 8, 8),
                                                channels=8, bits=4, epochs=40),
            random_vectors=40, sim_vectors=100),
    # its sliding windows (8x8x1 and 4x4x8 line buffers) and MACs exceed the UP5K
    Example("cnn-dws", "a digits CNN with a depthwise-separable block (conv 3x3 x8, maxpool 2, "
            "depthwise 3x3 x8, pointwise 1x1 x8, dense 10)", **_DIGITS, trainer=trainers.cnn,
            settings=dict(layers=DIGITS_DWS_LAYERS, in_shape=(1, 8, 8), bits=4, epochs=40),
            boards=("ulx3s-85f",), random_vectors=40, sim_vectors=20),
    Example("cnn1d", "a 1-D CNN (conv1d 5 x8 /2, conv1d 3 x8 /2, maxpool1d 2, dense 3) on "
            "generated sine/square/sawtooth signals", **_SIGNALS, trainer=trainers.cnn,
            settings=dict(layers=SIGNAL_LAYERS, in_shape=(1, 1, data.SIGNAL_LENGTH), bits=4,
                          epochs=40),
            random_vectors=40, sim_vectors=100),
    Example("gru", "a GRU on the digits rows (8 steps of 8 pixels), dense 10", **_DIGITS,
            trainer=trainers.seq, settings=dict(cell="gru", **_DIGIT_ROWS, hidden=16, bits=4,
                                                epochs=20),
            folding=recurrent_folding(4)),
    Example("gru-signal", "a GRU on generated sine/square/sawtooth signals (32 steps of 1 "
            "sample), dense 3", **_SIGNALS, trainer=trainers.seq,
            settings=dict(cell="gru", **_SIGNAL_STEPS, hidden=16, bits=4, epochs=20),
            folding=recurrent_folding(2)),   # at SIMD 4 it needs 9 of the UP5K's 8 DSPs
    Example("lstm", "an LSTM on the digits rows (8 steps of 8 pixels), dense 10", **_DIGITS,
            trainer=trainers.seq, settings=dict(cell="lstm", **_DIGIT_ROWS, hidden=16, bits=4,
                                                epochs=40),
            # its gate unit's products and per-lane index multipliers take 7 DSPs: at (1, 1)
            # the engine's one more fills the UP5K's 8 (at SIMD 4 it needs 11)
            folding=recurrent_folding(1)),
    Example("rnn", "an Elman RNN on the digits rows (8 steps of 8 pixels), dense 10",
            **_DIGITS, trainer=trainers.seq, settings=dict(cell="rnn", **_DIGIT_ROWS, hidden=16,
                                                           bits=4, epochs=40),
            folding=recurrent_folding(4)),
    # logic-domain networks (ddnhw/quant/lut.py): thermometer bits, learned table neurons,
    # popcount per class; one inference per clock
    # 4-input tables: one iCE40 LUT4 each (yosys/ABC map a learned 5-input table to ~4 LUT4s
    # and a 6-input one to ~9); uniform thresholds: 95.8 % (seed 0), distributive ones 93.9 %
    Example("lut", "a lookup-table network on the digits (thermometer 3 levels, 600 table "
            "neurons of 4 inputs, popcount per class)", **_DIGITS, trainer=lut.train,
            settings=dict(layers=((600, 4),), levels=3, bits=4, tau=3.0, epochs=30, lr=0.01,
                          encoding="uniform"),
            folding="none", random_vectors=2000, sim_vectors=20),
    # uniform thresholds, 7 levels: 95.0 % (seed 0), 3 distributive levels 89.2 %
    Example("lut-signal", "a lookup-table network on generated sine/square/sawtooth signals "
            "(thermometer 7 levels, 300 and 150 table neurons of 4 inputs, popcount)",
            **_SIGNALS, trainer=lut.train,
            settings=dict(layers=((300, 4), (150, 4)), levels=7, bits=4, tau=3.0, epochs=30,
                          lr=0.01, encoding="uniform"),
            folding="none", random_vectors=2000, sim_vectors=20),
    Example("lut-jets", "a jet-tagging-sized lookup-table network on synthetic data (16 "
            "features, thermometer 8 levels, 320 and 160 table neurons of 6 inputs, 5 classes)",
            **_JETS, trainer=lut.train,
            settings=dict(layers=((320, 6), (160, 6)), levels=8, bits=6, tau=3.0, epochs=10,
                          lr=0.01, encoding="distributive"),
            boards=("ulx3s-85f",), folding="none", random_vectors=2000, sim_vectors=20),
)


# -- MNIST-1D (Greydanus & Kobak; the mnist1d package's data set, generated locally) -------------
# 40 samples per sequence, 10 classes; the paper's float test accuracies: MLP 68 %, CNN 94 %,
# GRU 91 % (bench/mnist1d_bench.py compares ours, float and 4-bit, over 5 seeds). The samples are
# standardized signals mapped to [0, 1]: 8-bit input codes for the CNNs and the GRU (4-bit codes
# cost the CNN ~7 points: 16 levels over 8 standard deviations), 4-bit weights and activations.
# The UP5K CNN sees a sequence as one column (in_shape (1, 40, 1)): its hardware windows then
# buffer a kernel's samples, not the whole 40-sample row with a 40-way selection per window
# lane (for the 3x32 CNN the planner's smallest circuit drops from ~13.4k to ~8.4k LCs).
MNIST1D_CNN_LAYERS = ({"op": "conv1d", "out": 32, "kernel": 5, "stride": 2},
                      {"op": "conv1d", "out": 32, "kernel": 3, "stride": 2},
                      {"op": "conv1d", "out": 32, "kernel": 3, "stride": 2},
                      {"op": "flatten"}, {"op": "linear", "out": 10})
# the CNN that fits the iCE40UP5K: 16 channels, then 8 in the last convolution (a smaller
# flatten for the dense layer, whose input registers and selection dominate its cost)
MNIST1D_CNN_UP5K_LAYERS = ({"op": "conv1d", "out": 16, "kernel": 5, "stride": 2},
                           {"op": "conv1d", "out": 16, "kernel": 3, "stride": 2},
                           {"op": "conv1d", "out": 8, "kernel": 3, "stride": 2},
                           {"op": "flatten"}, {"op": "linear", "out": 10})
_MNIST1D = dict(dataset="mnist1d", load=data.mnist1d)


def planned_folding(board, max_luts):
    """The folding policy "the planner's fastest folding for ``board`` within ``max_luts``"
    (:func:`ddnhw.flow.choose_folding`), the same for the RTL and every board."""
    def folding(graph, settings):
        from ddnhw.flow import choose_folding
        plan = choose_folding(graph, board, max_luts=max_luts)["folding"] or {}
        return {k: v for k, v in plan.items() if v is not None}   # None: unrolled
    return folding


RECORDS += (
    # float training on standardized inputs (input_norm): without it the MLP reaches ~38 %
    Example("mnist1d-mlp", "an MLP (40-64-10) on MNIST-1D", **_MNIST1D, trainer=trainers.mlp,
            settings=dict(hidden=64, bits=4, prune=0.0, epochs=60, input_norm=True),
            random_vectors=1000, sim_vectors=0),
    # three 32-channel convolutions on the one-row signal (the layout of its 5-seed figures in
    # bench/results/mnist1d.md): the smallest folding the planner finds needs ~13.4k LCs (as a
    # column, the same network: ~8.4k), so it is built for the ECP5; unrolled it would take
    # ~76k LUTs, so RTL and board share a folding planned for 15k ECP5 LUTs
    Example("mnist1d-cnn", "a 1-D CNN (conv1d 5 x32 /2, conv1d 3 x32 /2, conv1d 3 x32 /2, "
            "dense 10) on MNIST-1D", **_MNIST1D, trainer=trainers.cnn,
            settings=dict(layers=MNIST1D_CNN_LAYERS, in_shape=(1, 1, data.MNIST1D_LENGTH),
                          bits=4, in_bits=8, out_per_channel=True, epochs=40),
            boards=("ulx3s-85f",), folding=planned_folding("ulx3s-85f", 15000),
            random_vectors=40, sim_vectors=4),
    # sized for the iCE40UP5K (the planner's fastest folding for it, the same on the ECP5);
    # QAT with the weight exponents fixed at their least-squared-error values after BN folding
    # (recomputing them every step, a channel's grid doubles whenever its largest weight
    # crosses a power of two, and the small network's QAT loss stalls)
    Example("mnist1d-cnn-up5k", "a 1-D CNN for the iCE40UP5K (conv1d 5 x16 /2, conv1d 3 x16 "
            "/2, conv1d 3 x8 /2, dense 10) on MNIST-1D", **_MNIST1D, trainer=trainers.cnn,
            settings=dict(layers=MNIST1D_CNN_UP5K_LAYERS, in_shape=(1, data.MNIST1D_LENGTH, 1),
                          bits=4, in_bits=8, out_per_channel=True, epochs=40, qat_epochs=60,
                          qat_lr=3e-4, freeze_exponents="mse"),
            boards=("icebreaker", "ulx3s-85f"), folding=planned_folding("icebreaker", None),
            random_vectors=40, sim_vectors=4),
    # 40 steps of 1 sample, the classifier reading every step's state (as the paper's GRU,
    # which is bidirectional with 6 units), 8-bit input codes: seed 0 94.4 % float, 93.1 %
    # at 4 bits (20 + 20 epochs: 90.3 / 88.9 %; the earlier 10 steps of 4 samples reading
    # only the last state, 4-bit inputs: 81.6 / 74.2 %)
    Example("mnist1d-gru", "a GRU 16 on MNIST-1D (40 steps of 1 sample), dense 10 over every "
            "step's state", **_MNIST1D, trainer=trainers.seq,
            settings=dict(cell="gru", steps=data.MNIST1D_LENGTH, input_size=1, hidden=16,
                          bits=4, in_bits=8, return_sequences=True, batch=128, epochs=40,
                          input_norm=True),
            folding=recurrent_folding(2)),
    # a regression example: the frequency of the generated signals (periods per window)
    Example("signal-freq", "an MLP (32-16-1) estimating the frequency of generated "
            "sine/square/sawtooth signals (regression)", dataset="waveforms-periods",
            load=data.signal_periods, trainer=trainers.mlp_regressor,
            settings=dict(hidden=16, bits=4, prune=0.0, epochs=60, target=data.PERIODS,
                          input_norm=True),
            random_vectors=1000, sim_vectors=0, task="regression"),
)
