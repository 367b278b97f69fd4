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
