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


def make_waveforms(n=1800, length=32, noise=0.15, test_fraction=0.2, seed=0, target="shape"):
    """A generated signal-classification task (no downloads): ``n`` noisy waveforms of
    ``length`` samples, class 0 sine, 1 square, 2 sawtooth, each of random frequency (1 to 4
    periods per window), phase and amplitude (0.6 to 1), plus Gaussian noise of std ``noise``;
    scaled to [0, 1]. Returns ``(x_train, y_train, x_test, y_test)``, ``x`` float32
    ``(N, length)``, balanced classes, seeded. ``target="periods"``: ``y`` is each signal's
    frequency in periods per window (float32, 1 to 4; a regression task) instead of its
    class, with the very same signals."""
    if target not in ("shape", "periods"):
        raise DdnhwError(f"make_waveforms: target={target!r} (use 'shape' or 'periods')")
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
    if target == "periods":
        y = periods.astype(np.float32)
        return x[:k], y[:k], x[k:], y[k:]
    return x[:k], y[:k].astype(np.int64), x[k:], y[k:].astype(np.int64)


# -- MNIST-1D ----------------------------------------------------------------------------------

MNIST1D_SEED = 42          # the seed of the data set the MNIST-1D paper and package ship
MNIST1D_RANGE = 4.0        # the standardized samples are mapped from [-4, 4] to [0, 1]


def _cache_dir():
    import os
    from pathlib import Path
    base = os.environ.get("DDNHW_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "ddnhw")
    return Path(base)


def _make_mnist1d(seed):
    """The raw MNIST-1D arrays of ``mnist1d.data.make_dataset`` with the package's default
    arguments (5,000 sequences of 40 samples, 80 % train) and ``seed``. The package seeds the
    global ``random`` and ``numpy.random`` generators; their states are restored afterwards."""
    import random
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DdnhwError("the mnist1d package is needed for the MNIST-1D data set: "
                         "pip install 'ddnhw[data]'") from None
    args = get_dataset_args()
    args.seed = int(seed)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {"x": np.asarray(d["x"], np.float64), "y": np.asarray(d["y"], np.int64),
            "x_test": np.asarray(d["x_test"], np.float64),
            "y_test": np.asarray(d["y_test"], np.int64)}


_MNIST1D = {}


def load_mnist1d_raw(seed=MNIST1D_SEED, cache=True):
    """MNIST-1D (Greydanus & Kobak) generated locally by the ``mnist1d`` package from its
    seeded templates, nothing downloaded: ``{"x", "y", "x_test", "y_test"}``, 4,000 train and
    1,000 test sequences of 40 standardized samples (float64), labels 0..9.

    The arrays are cached in memory and, with ``cache``, in ``$DDNHW_CACHE`` (default
    ``~/.cache/ddnhw``) as ``mnist1d-<seed>.npz``, written atomically; a cache file that does
    not load is regenerated."""
    seed = int(seed)
    if seed in _MNIST1D:
        return _MNIST1D[seed]
    path = _cache_dir() / f"mnist1d-{seed}.npz"
    d = None
    if cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                d = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except (OSError, ValueError, KeyError):
            d = None
    if d is None:
        d = _make_mnist1d(seed)
        if cache:
            try:
                import io
                from ddnhw.atomic import write_bytes
                path.parent.mkdir(parents=True, exist_ok=True)
                buf = io.BytesIO()
                np.savez(buf, **d)
                write_bytes(path, buf.getvalue())
            except (OSError, DdnhwError):
                pass    # a read-only home: generate again next time
    _MNIST1D[seed] = d
    return d


def load_mnist1d(seed=MNIST1D_SEED):
    """``(x_train, y_train, x_test, y_test)`` of MNIST-1D (:func:`load_mnist1d_raw`), the
    standardized samples mapped from [-4, 4] to [0, 1] (clipped; 0.1 % of the samples lie
    outside), float32 ``(N, 40)``."""
    d = load_mnist1d_raw(seed)

    def scale(x):
        return np.clip((x + MNIST1D_RANGE) / (2 * MNIST1D_RANGE), 0.0, 1.0).astype(np.float32)
    return scale(d["x"]), d["y"].copy(), scale(d["x_test"]), d["y_test"].copy()
