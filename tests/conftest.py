import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope="session")
def digits():
    from ddnhw.datasets import load_digits_split
    return load_digits_split()


@pytest.fixture(scope="session")
def trained_mlp(digits):
    """A small QAT MLP trained briefly on digits (shared by quant and flow tests)."""
    import torch
    from ddnhw.quant.train import TrainConfig, train_mlp
    torch.set_num_threads(1)
    xtr, ytr, xte, yte = digits
    cfg = TrainConfig(sizes=(64, 12, 10), float_epochs=25, qat_epochs=15, prune=0.3)
    return train_mlp(xtr, ytr, xte, yte, cfg)
