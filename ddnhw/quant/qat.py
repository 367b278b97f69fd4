"""Training of :class:`~ddnhw.quant.schemes.SchemeMLP` models: a shared float pre-training,
PTQ calibration as the starting point, then QAT with optional knowledge distillation from
the float model and magnitude pruning."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from .modules import QuantMLP
from .schemes import ActSpec, SchemeMLP, WeightSpec
from .train import _epochs, accuracy, kd_loss

__all__ = ["SchemeConfig", "pretrain_float", "train_scheme", "prune_"]


@dataclass
class SchemeConfig:
    weights: object = WeightSpec()      # one spec, or one per layer
    acts: object = ActSpec()            # one spec, or one per hidden layer
    in_bits: int = 4
    qat_epochs: int = 60
    qat_lr: float = 3e-3
    batch: int = 64
    distill: float = 0.0                # weight of the KD loss (0: cross-entropy only)
    temperature: float = 4.0
    prune: float = 0.0                  # fraction of every layer's weights zeroed by magnitude
    seed: int = 0


def pretrain_float(xtr, ytr, sizes=(64, 16, 10), epochs=120, lr=1e-2, wd=1e-4, batch=64,
                   seed=0, log=None):
    """The float model every scheme starts from (a :class:`QuantMLP` in float mode)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = QuantMLP(sizes)
    model.set_quantize(False)
    _epochs(model, torch.as_tensor(xtr), torch.as_tensor(ytr), epochs, lr, wd, batch, gen,
            log, "float")
    return model


def prune_(model, fraction):
    """Zero the smallest-magnitude ``fraction`` of each layer's weights (mask buffers)."""
    for fc in model.layers:
        with torch.no_grad():
            k = int(fraction * fc.weight.numel())
            if k > 0:
                thr = (fc.weight * fc.mask).abs().flatten().kthvalue(k).values
                fc.mask.mul_((fc.weight.abs() > thr).float())


def train_scheme(float_model, xtr, ytr, xte, yte, cfg: SchemeConfig = SchemeConfig(), log=None,
                 model=None):
    """QAT of a :class:`SchemeMLP` from ``float_model``. Returns ``(model, metrics)`` with the
    float, PTQ (calibration only) and QAT test accuracies (fake-quantized forward, which equals
    the integer model exactly). ``model``: the scheme model to train (default: a
    :class:`SchemeMLP` from ``float_model`` and ``cfg``; e.g. a
    :class:`~ddnhw.quant.scheme_cnn.SchemeCNN`, with ``x`` shaped as ``float_model`` takes it)."""
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    xtr_t, ytr_t = torch.as_tensor(xtr), torch.as_tensor(ytr)
    xte_t, yte_t = torch.as_tensor(xte), torch.as_tensor(yte)
    teacher = copy.deepcopy(float_model).eval()
    teacher.set_quantize(False)
    if model is None:
        model = SchemeMLP.from_float(float_model, in_bits=cfg.in_bits, weights=cfg.weights,
                                     acts=cfg.acts)
    if cfg.prune > 0:
        prune_(model, cfg.prune)
    float_acc = accuracy(teacher, xte_t, yte_t)
    model.calibrate(xtr_t)
    ptq_acc = accuracy(model, xte_t, yte_t)
    gen = torch.Generator().manual_seed(cfg.seed)
    _epochs(model, xtr_t, ytr_t, cfg.qat_epochs, cfg.qat_lr, 0.0, cfg.batch, gen, log, "qat",
            loss=kd_loss(teacher, cfg.distill, cfg.temperature))
    qat_acc = accuracy(model, xte_t, yte_t)
    return model, {"float_accuracy": float_acc, "ptq_accuracy": ptq_acc,
                   "quant_accuracy": qat_acc, "train_seconds": time.perf_counter() - t0}
