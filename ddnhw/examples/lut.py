"""The logic-domain (lookup-table neuron) examples: their trainer and the synthetic jet-tagging
data set (the hls4ml jet-tagging benchmark's shape: 16 features, 5 classes, no real data here).
"""
from __future__ import annotations

import numpy as np

from ddnhw import DdnhwError
from ddnhw.flow import Trained

__all__ = ["train", "jets", "JET_FEATURES", "JET_CLASSES"]

JET_FEATURES, JET_CLASSES = 16, 5


def jets(seed=0, n=12000, test_fraction=0.2):
    """A generated stand-in for the jet-tagging benchmark (not physics: only its size and a
    similar difficulty): ``JET_CLASSES`` classes, each a Gaussian cloud in a 6-D latent space
    around its own centre (the centres close enough to overlap), seen through 16 fixed random
    nonlinear features (``tanh`` of random projections, plus noise), scaled to [0, 1] with
    the training split's ranges. The task is generated from its own fixed seed 1234; ``seed``
    only reorders it. Returns ``(x_train, y_train, x_test, y_test)``."""
    task = np.random.default_rng(1234)
    centres = task.normal(0.0, 1.0, (JET_CLASSES, 6))
    proj = task.normal(0.0, 0.6, (6, JET_FEATURES))
    bias = task.normal(0.0, 0.5, JET_FEATURES)
    y = np.arange(n) % JET_CLASSES
    z = centres[y] + task.normal(0.0, 1.0, (n, 6))
    x = np.tanh(z @ proj + bias) + task.normal(0.0, 0.15, (n, JET_FEATURES))
    order = np.random.default_rng(seed).permutation(n)
    x, y = x[order], y[order]
    k = int(round(n * (1 - test_fraction)))
    lo, hi = x[:k].min(axis=0), x[:k].max(axis=0)
    x = np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    return x[:k], y[:k].astype(np.int64), x[k:], y[k:].astype(np.int64)


def _layers(settings):
    layers = settings["layers"]
    try:
        return tuple((int(n), int(k)) for n, k in layers)
    except (TypeError, ValueError):
        raise DdnhwError(f"setting 'layers' must be a list of (neurons, k) pairs, not "
                         f"{layers!r}") from None


def train(example, data, settings, seed, log):
    """A :class:`ddnhw.quant.lut.LutNet` (thermometer → table layers → popcount per class),
    DWN-style training. Settings: ``layers`` ``[(neurons, k), ...]``, ``levels`` (thermometer
    thresholds per feature), ``bits`` (input code bits), ``tau``, ``epochs``, ``lr``."""
    import torch
    from ddnhw.quant.lut import LutConfig, export_lut, train_lut

    xtr, ytr, xte, yte = data
    cfg = LutConfig(layers=_layers(settings), levels=int(settings["levels"]),
                    encoding=str(settings.get("encoding", "distributive")),
                    in_bits=int(settings["bits"]), tau=float(settings["tau"]),
                    epochs=int(settings["epochs"]), lr=float(settings["lr"]), seed=seed)
    r = train_lut(xtr, ytr, xte, yte, cfg, log=log)
    meta = {"example": example.name, "dataset": example.dataset, "seed": int(seed),
            "float_accuracy": r.accuracy}
    graph = export_lut(r.model, meta=meta)

    def int_forward(x):
        with torch.no_grad():
            return r.model.int_forward(torch.as_tensor(np.asarray(x, np.int64))).numpy()
    # the trained network computes bits in training too: its accuracy is the float one
    return Trained(graph, r.accuracy, r.accuracy, r.seconds, r.model, int_forward,
                   {"layers": [list(layer) for layer in cfg.layers], "levels": cfg.levels})
