"""Embedded data sets (no downloads): scikit-learn's digits (1797 images of 8x8 pixels, 0..16)."""
from __future__ import annotations

import numpy as np

from ddnhw import DdnhwError


def load_digits_split(test_fraction=0.2, seed=0):
    """``(x_train, y_train, x_test, y_test)`` with pixels scaled to [0, 1] (float32, N x 64).

    The split is stratified and seeded, so it is the same everywhere.
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise DdnhwError("scikit-learn is needed for the digits data set: "
                         "pip install 'ddnhw[train]'") from None
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                          stratify=y)
    return xtr, ytr, xte, yte


WAVEFORMS = ("sine", "square", "sawtooth")


def make_waveforms(n=1800, length=32, noise=0.15, test_fraction=0.2, seed=0):
    """A generated signal-classification task (no downloads): ``n`` noisy waveforms of
    ``length`` samples, class 0 sine, 1 square, 2 sawtooth, each of random frequency (1 to 4
    periods per window), phase and amplitude (0.6 to 1), plus Gaussian noise of std ``noise``;
    scaled to [0, 1]. Returns ``(x_train, y_train, x_test, y_test)``, ``x`` float32
    ``(N, length)``, balanced classes, seeded."""
    if n < 3 or length < 2:
        raise DdnhwError(f"make_waveforms: n={n} and length={length} too small")
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(WAVEFORMS)
    rng.shuffle(y)
    periods = rng.uniform(1.0, 4.0, n)
    phase = rng.uniform(0.0, 1.0, n)
    amp = rng.uniform(0.6, 1.0, n)
    t = np.arange(length) / length
    cyc = (periods[:, None] * t[None, :] + phase[:, None]) % 1.0
    sig = np.where(y[:, None] == 0, np.sin(2 * np.pi * cyc),
                   np.where(y[:, None] == 1, np.where(cyc < 0.5, 1.0, -1.0), 2 * cyc - 1))
    sig = amp[:, None] * sig + rng.normal(0.0, noise, (n, length))
    x = np.clip((sig + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)
    k = int(round(n * (1 - test_fraction)))
    return x[:k], y[:k].astype(np.int64), x[k:], y[k:].astype(np.int64)
