"""Training: float pre-training, activation calibration, magnitude pruning, then QAT fine-tuning."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ddnhw import DdnhwError
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
    distill: float = 0.0        # QAT loss: weight of distillation from the float model
    temperature: float = 4.0
    input_norm: bool = False    # float training on standardized inputs (set_input_norm)


@dataclass
class TrainResult:
    model: QuantMLP
    float_accuracy: float
    quant_accuracy: float
    seconds: float
    history: list = field(default_factory=list)
    float_model: object = None     # the float model before pruning/BN folding/QAT


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


def kd_loss(teacher, alpha, T):
    """``(1 - alpha) * CE + alpha * T**2 * KL(teacher || student)`` at temperature ``T``."""
    ce = nn.CrossEntropyLoss()

    def loss(logits, y, x):
        out = ce(logits, y)
        if alpha > 0:
            with torch.no_grad():
                t = teacher(x)
            kd = nn.functional.kl_div(nn.functional.log_softmax(logits / T, 1),
                                      nn.functional.softmax(t / T, 1),
                                      reduction="batchmean") * T ** 2
            out = (1 - alpha) * out + alpha * kd
        return out
    return loss


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
                   calibrate=True, loss=None, score=None) -> TrainResult:
    """The training schedule shared by the MLP, CNN and sequence trainers: ``cfg.float_epochs``
    of float training, ``prepare(model)`` (pruning, BN folding), then ``cfg.qat_epochs`` of QAT
    (calibrated before and after when ``calibrate``); float and quantized test accuracy.
    ``cfg.distill`` (default 0): the QAT loss is ``(1 - d) * CE + d * T**2 * KL`` against the
    float model's outputs at temperature ``cfg.temperature`` (knowledge distillation).
    ``loss(outputs, y, x)`` replaces cross-entropy and ``score(model, x, y)`` the accuracy
    (e.g. a regression model's MSE and RMSE).
    ``cfg.input_norm``: the float phase trains on standardized inputs (:func:`set_input_norm`),
    folded into the first layer before QAT."""
    score = score or accuracy
    if getattr(cfg, "input_norm", False):
        set_input_norm(model, xtr_t)
    model.set_quantize(False)
    _epochs(model, xtr_t, ytr_t, cfg.float_epochs, cfg.lr, cfg.weight_decay, cfg.batch, gen, log,
            "float", loss=loss)
    float_acc = score(model, xte_t, yte_t)
    float_model = copy.deepcopy(model).eval()
    fold_input_norm(model)
    if prepare is not None:
        prepare(model)
    model.set_quantize(True)
    if calibrate:
        model.calibrate(xtr_t)
    distill = float(getattr(cfg, "distill", 0.0) or 0.0)
    if distill > 0:
        if loss is not None:
            raise DdnhwError("distillation applies to classifiers (cross-entropy) only")
        loss = kd_loss(float_model, distill, float(getattr(cfg, "temperature", 4.0)))
    _epochs(model, xtr_t, ytr_t, cfg.qat_epochs, cfg.qat_lr, 0.0, cfg.batch, gen, log, "qat",
            loss=loss)
    if calibrate:
        model.calibrate(xtr_t)
    quant_acc = score(model, xte_t, yte_t)
    return TrainResult(model, float_acc, quant_acc, time.perf_counter() - t0,
                       float_model=float_model)


def train_mlp_regressor(xtr, ytr, xte, yte, cfg: TrainConfig = TrainConfig(), log=None
                        ) -> TrainResult:
    """Train a :class:`QuantMLP` with one output on real targets ``y`` (MSE loss); as
    :func:`train_mlp`, with the RMSE on the test split in place of the accuracies
    (``float_accuracy``/``quant_accuracy`` hold the float and fake-quantized RMSEs)."""
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    f32 = torch.float32
    xtr_t, ytr_t = torch.as_tensor(xtr, dtype=f32), torch.as_tensor(ytr, dtype=f32).reshape(-1)
    xte_t, yte_t = torch.as_tensor(xte, dtype=f32), torch.as_tensor(yte, dtype=f32).reshape(-1)
    if cfg.sizes[-1] != 1:
        raise DdnhwError(f"a regression MLP has one output, not sizes {cfg.sizes}")
    model = QuantMLP(cfg.sizes, cfg.in_bits, cfg.w_bits, cfg.a_bits)
    mse = nn.MSELoss()

    def rmse(m, x, y):
        m.eval()
        with torch.no_grad():
            return float(torch.sqrt(torch.mean((m(x)[:, 0] - y) ** 2)))
    return float_then_qat(model, xtr_t, ytr_t, xte_t, yte_t, cfg, gen, log, t0,
                          prepare=lambda m: _prune(m, cfg.prune),
                          loss=lambda out, y, _: mse(out[:, 0], y), score=rmse)


def set_input_norm(model, x) -> None:
    """Float training on normalized inputs: ``model.inp`` maps ``x`` to ``(x - mean) / std``
    (scalars over the training data ``x``) until :func:`fold_input_norm`. Inputs in [0, 1]
    with a small spread (e.g. standardized signals mapped from [-4, 4]) otherwise train
    poorly without BatchNorm."""
    x = torch.as_tensor(x, dtype=torch.float32)
    model.inp.norm = torch.tensor([float(x.mean()), max(float(x.std()), 1e-6)])


def fold_input_norm(model) -> None:
    """Fold ``model.inp``'s normalization into the first layer (QuantMLP's ``layers[0]``,
    QuantCNN's first convolution, without zero padding, or QuantSeqClassifier's ``rec`` input
    weights), exactly in real arithmetic, and drop it. No-op without one."""
    norm = model.inp.norm
    if not norm.numel():
        return
    m, sd = float(norm[0]), float(norm[1])
    with torch.no_grad():
        if hasattr(model, "rec"):       # QuantSeqClassifier: the recurrent layer's input part
            w, b = model.rec.weight_ih, model.rec.bias_ih
        elif hasattr(model, "body"):    # QuantCNN: the first conv (or linear) layer
            first = next(mod for mod in model.body if isinstance(mod, (nn.Conv2d, nn.Linear)))
            if isinstance(first, nn.Conv2d) and any(first.padding):
                raise DdnhwError(f"layer {first.name}: input normalization cannot be folded "
                                 f"into a zero-padded convolution")
            w, b = first.weight, first.bias
        else:
            w, b = model.layers[0].weight, model.layers[0].bias
        w.div_(sd)
        b.sub_(m * w.reshape(w.shape[0], -1).sum(1))
    model.inp.norm = torch.zeros(0)
