"""Training: float pre-training, activation calibration, magnitude pruning, then QAT fine-tuning."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .modules import QuantMLP


@dataclass
class TrainConfig:
    sizes: tuple = (64, 16, 10)
    in_bits: int = 4
    w_bits: int = 4
    a_bits: int = 4
    float_epochs: int = 120
    qat_epochs: int = 120
    batch: int = 64
    lr: float = 1e-2
    qat_lr: float = 3e-3
    weight_decay: float = 1e-4
    prune: float = 0.0          # fraction of the first layer's weights set to zero by magnitude
    seed: int = 0


@dataclass
class TrainResult:
    model: QuantMLP
    float_accuracy: float
    quant_accuracy: float
    seconds: float
    history: list = field(default_factory=list)


def _epochs(model, x, y, epochs, lr, wd, batch, gen, log, tag, loss=None):
    """AdamW with cosine decay; ``loss(logits, labels, inputs)`` defaults to cross-entropy."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs))
    ce = nn.CrossEntropyLoss()
    lossf = loss or (lambda logits, labels, _: ce(logits, labels))
    n = len(x)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        tot = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            err = lossf(model(x[idx]), y[idx], x[idx])
            err.backward()
            opt.step()
            tot += err.item() * len(idx)
        sched.step()
        if log and (ep + 1) % max(1, epochs // 4) == 0:
            log(f"{tag} epoch {ep + 1}/{epochs} loss {tot / n:.4f}")


def accuracy(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train_mlp(xtr, ytr, xte, yte, cfg: TrainConfig = TrainConfig(), log=None) -> TrainResult:
    """Train a :class:`QuantMLP`; returns it calibrated, with float and quantized test accuracy.

    The quantized accuracy here is from the fake-quantized float forward; the golden model gives
    the same predictions (tested).
    """
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    xtr_t, ytr_t = torch.as_tensor(xtr), torch.as_tensor(ytr)
    xte_t, yte_t = torch.as_tensor(xte), torch.as_tensor(yte)
    model = QuantMLP(cfg.sizes, cfg.in_bits, cfg.w_bits, cfg.a_bits)
    return float_then_qat(model, xtr_t, ytr_t, xte_t, yte_t, cfg, gen, log, t0,
                          prepare=lambda m: _prune(m, cfg.prune))


def _prune(model, frac):
    if frac > 0:
        fc = model.layers[0]
        with torch.no_grad():
            k = int(frac * fc.weight.numel())
            if k > 0:
                thr = fc.weight.abs().flatten().kthvalue(k).values
                fc.mask.copy_((fc.weight.abs() > thr).float())


def float_then_qat(model, xtr_t, ytr_t, xte_t, yte_t, cfg, gen, log, t0, prepare=None,
                   calibrate=True) -> TrainResult:
    """The training schedule shared by the MLP, CNN and sequence trainers: ``cfg.float_epochs``
    of float training, ``prepare(model)`` (pruning, BN folding), then ``cfg.qat_epochs`` of QAT
    (calibrated before and after when ``calibrate``); float and quantized test accuracy."""
    model.set_quantize(False)
    _epochs(model, xtr_t, ytr_t, cfg.float_epochs, cfg.lr, cfg.weight_decay, cfg.batch, gen, log,
            "float")
    float_acc = accuracy(model, xte_t, yte_t)
    if prepare is not None:
        prepare(model)
    model.set_quantize(True)
    if calibrate:
        model.calibrate(xtr_t)
    _epochs(model, xtr_t, ytr_t, cfg.qat_epochs, cfg.qat_lr, 0.0, cfg.batch, gen, log, "qat")
    if calibrate:
        model.calibrate(xtr_t)
    quant_acc = accuracy(model, xte_t, yte_t)
    return TrainResult(model, float_acc, quant_acc, time.perf_counter() - t0)
