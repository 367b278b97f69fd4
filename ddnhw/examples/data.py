"""Data set loaders of the examples: ``load(seed) -> (x_train, y_train, x_test, y_test)``, ``x``
float ``(N, features)`` in [0, 1] (see :class:`ddnhw.flow.Example`). The data sets themselves
(embedded or generated, no downloads) are in :mod:`ddnhw.datasets`."""
from __future__ import annotations

from ddnhw.datasets import load_digits_split, make_waveforms

__all__ = ["digits", "waveforms", "SIGNAL_LENGTH"]

SIGNAL_LENGTH = 32


def digits(seed=0):
    """scikit-learn's digits, 64 pixels per image, the one stratified split of every digits
    example (the same for every ``seed``: the split is seeded on its own)."""
    return load_digits_split()


def waveforms(seed=0):
    """The generated noisy sine/square/sawtooth signals of :func:`ddnhw.datasets.make_waveforms`,
    :data:`SIGNAL_LENGTH` samples each, generated from ``seed``."""
    return make_waveforms(length=SIGNAL_LENGTH, seed=seed)
