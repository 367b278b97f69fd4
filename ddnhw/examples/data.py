"""Data set loaders of the examples: ``load(seed) -> (x_train, y_train, x_test, y_test)``, ``x``
float ``(N, features)`` in [0, 1] (see :class:`ddnhw.flow.Example`). The data sets themselves
(embedded or generated, no downloads) are in :mod:`ddnhw.datasets`."""
from __future__ import annotations

from ddnhw.datasets import load_digits_split, load_mnist1d, make_waveforms

__all__ = ["digits", "waveforms", "SIGNAL_LENGTH", "mnist1d", "MNIST1D_LENGTH",
           "signal_periods", "PERIODS"]

SIGNAL_LENGTH = 32


def digits(seed=0):
    """scikit-learn's digits, 64 pixels per image, the one stratified split of every digits
    example (the same for every ``seed``: the split is seeded on its own)."""
    return load_digits_split()


def waveforms(seed=0):
    """The generated noisy sine/square/sawtooth signals of :func:`ddnhw.datasets.make_waveforms`,
    :data:`SIGNAL_LENGTH` samples each, generated from ``seed``."""
    return make_waveforms(length=SIGNAL_LENGTH, seed=seed)


MNIST1D_LENGTH = 40
PERIODS = (1.0, 4.0)      # the frequency range of the generated signals, periods per window


def mnist1d(seed=0):
    """MNIST-1D (:func:`ddnhw.datasets.load_mnist1d`): the package's data set (its seed 42,
    the same for every ``seed``), 4,000 train / 1,000 test sequences of
    :data:`MNIST1D_LENGTH` samples in [0, 1]."""
    return load_mnist1d()


def signal_periods(seed=0):
    """The signals of :func:`waveforms` with their frequency (periods per window, float in
    :data:`PERIODS`) as the target: a regression task."""
    return make_waveforms(length=SIGNAL_LENGTH, seed=seed, target="periods")
