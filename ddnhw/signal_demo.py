"""The 1-D CNN example: noisy sine/square/sawtooth classification (generated, seeded), QAT,
IR (a conv1d is a one-row conv2d), RTL, Amaranth-simulator check vs golden.

``conv1d 5 (8 channels, stride 2) → ReLU → conv1d 3 (8, stride 2) → ReLU → maxpool1d 2 →
flatten → dense 3`` on 32-sample signals, 4-bit inputs, weights and activations. Signals stream into the
hardware one sample per beat.
"""
from __future__ import annotations

import numpy as np

from ddnhw import golden
from ddnhw.datasets import make_waveforms

__all__ = ["SIGNAL_LAYERS", "SIGNAL_LENGTH", "train_signal_cnn", "signal_inputs"]

SIGNAL_LENGTH = 32
# the max pool halves the flattened features (48 -> 24) for a smaller dense layer and, at the
# same II, raises 4-bit test accuracy from 0.9833 (no pool) to 0.9944 (seed 0, 40+40 epochs)
SIGNAL_LAYERS = [{"op": "conv1d", "out": 8, "kernel": 5, "stride": 2},
                 {"op": "conv1d", "out": 8, "kernel": 3, "stride": 2},
                 {"op": "maxpool1d", "kernel": 2},
                 {"op": "flatten"}, {"op": "linear", "out": 3}]


def train_signal_cnn(bits=4, float_epochs=30, qat_epochs=30, seed=0, log=None, layers=None):
    """``(graph, metrics)``: the exported IR and float / fake-quant / golden test accuracy."""
    import torch
    from ddnhw.quant.cnn import CNNConfig, export_cnn, train_cnn

    torch.set_num_threads(1)
    xtr, ytr, xte, yte = make_waveforms(length=SIGNAL_LENGTH, seed=seed)
    cfg = CNNConfig(layers=[dict(s) for s in (layers or SIGNAL_LAYERS)],
                    in_shape=(1, 1, SIGNAL_LENGTH), in_bits=bits, w_bits=bits, a_bits=bits,
                    float_epochs=float_epochs, qat_epochs=qat_epochs, seed=seed)
    r = train_cnn(xtr, ytr, xte, yte, cfg, log=log)
    graph = export_cnn(r.model, meta={"name": "signal_cnn1d", "bits": int(bits)})
    x, y = signal_inputs(graph, seed=seed)
    gold = float(np.mean(golden.predict(graph, x) == y))
    return graph, {"float_accuracy": r.float_accuracy, "quant_accuracy": r.quant_accuracy,
                   "golden_accuracy": gold, "train_seconds": r.seconds, "bits": int(bits),
                   "model": r.model}


def signal_inputs(graph, seed=0):
    """The test split as integer ``(N, 1, L, 1)`` inputs for ``graph`` and the labels."""
    _, _, xte, yte = make_waveforms(length=SIGNAL_LENGTH, seed=seed)
    return golden.quantize_input(graph, xte.reshape(-1, 1, SIGNAL_LENGTH, 1)), yte
