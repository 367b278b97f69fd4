"""Logic-domain networks: learned lookup-table neurons, trained in PyTorch.

The method is that of Differentiable Weightless Neural Networks (DWN: Bacellar et al., ICML
2024), reimplemented here from the paper's description:

- **Encoder**: a *distributive thermometer*: per input feature ``T`` thresholds at the
  quantiles ``1/(T+1) .. T/(T+1)`` of the training data's integer input codes (so each bit
  splits the data evenly); bit ``f*T + t`` is ``x[f] >= thresholds[f, t]``. Fixed after it is
  fitted (no gradient reaches the integer inputs).
- **Table layers**: every neuron reads ``k`` bits (2..6) of the layer before, chosen once at
  random from the layer's seed so that every input bit is read about equally often (fixed
  sparse connectivity; learned connectivity is not implemented). Its truth table has ``2**k``
  real-valued entries during training; the neuron outputs ``entry > 0`` of the entry its input
  bits address, so training and inference compute the same bits.
- **Gradients**: the addressed entry gets the output's gradient (straight-through), and each
  input bit the *extended finite difference* (EFD) of DWN: the change of the output when that
  bit flips, extended over every table entry ``a'`` and weighted by ``1 / (1 + Hamming
  distance)`` between ``a'`` and the current address on the other ``k - 1`` bits:
  ``d y / d x_i = sum_a' (2 a'_i - 1) H(T[a']) / (1 + |a'_{-i} xor a_{-i}|)``.
  That is what lets several table layers train end to end.
- **Aggregation**: the last layer's bits split into ``classes`` equal groups (consecutive
  neurons); a class's score is its group's popcount; training minimises the cross entropy of
  ``popcount / tau``.

:meth:`LutNet.int_forward` is the integer mode (PyTorch, integer tensors) that must equal the
golden model (:mod:`ddnhw.ir.ops.lut`) exactly; :func:`export_lut` writes the IR graph.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ddnhw import DdnhwError
from ddnhw.ir import IntType
from ddnhw.ir.builder import lut_graph
from ddnhw.ir.ops.lut import MAX_FANIN

__all__ = ["LutLayer", "LutNet", "LutConfig", "LutResult", "train_lut", "export_lut",
           "thermometer_thresholds", "random_connections", "check_fanin", "input_codes"]

MIN_FANIN = 2


def check_fanin(k, where="lut layer"):
    """``k`` as an int; a :class:`DdnhwError` naming ``where`` unless it is 2..6."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) \
            or not MIN_FANIN <= k <= MAX_FANIN:
        raise DdnhwError(f"{where}: fan-in k = {k!r} is out of range: a table neuron reads "
                         f"{MIN_FANIN} to {MAX_FANIN} bits (a {MAX_FANIN}-input table is "
                         f"{1 << MAX_FANIN} entries)")
    return int(k)


def input_codes(x, in_type: IntType) -> np.ndarray:
    """Real inputs to integer codes ``clip(floor(x * 2**frac + 0.5))`` (as the golden model's
    ``quantize_input``)."""
    q = np.floor(np.asarray(x, np.float64) * 2.0 ** in_type.frac + 0.5)
    return np.clip(q, in_type.min, in_type.max).astype(np.int64)


def thermometer_thresholds(codes, levels, in_type: IntType, encoding="distributive"
                           ) -> np.ndarray:
    """``encoding="uniform"``: ``levels`` thresholds evenly spaced over the input codes, the
    same for every feature. ``"distributive"`` (the default), a distributive thermometer: ``(F, levels)`` integer thresholds per feature at the quantiles
    ``(t+1)/(levels+1)`` of ``codes`` (N, F), each at least ``in_type.min + 1`` (a threshold at
    the minimum is a constant 1) and at most ``in_type.max``, non-decreasing."""
    levels = int(levels)
    if levels < 1:
        raise DdnhwError(f"thermometer levels must be >= 1, not {levels}")
    codes = np.asarray(codes)
    if encoding == "uniform":
        span = in_type.max - in_type.min + 1
        th = in_type.min + np.ceil(np.arange(1, levels + 1) * span / (levels + 1))
        return np.tile(np.clip(th, in_type.min + 1, in_type.max).astype(np.int64),
                       (codes.shape[1], 1))
    if encoding != "distributive":
        raise DdnhwError(f"thermometer encoding {encoding!r} is unknown: choose "
                         f"'distributive' or 'uniform'")
    q = np.quantile(np.asarray(codes, np.float64), np.arange(1, levels + 1) / (levels + 1),
                    axis=0, method="higher").T                     # (F, levels)
    th = np.clip(np.ceil(q), in_type.min + 1, in_type.max).astype(np.int64)
    return np.maximum.accumulate(th, axis=1)


def random_connections(m, n, k, rng) -> np.ndarray:
    """``(n, k)`` input indices into ``m`` bits: ``k`` distinct bits per neuron, every bit read
    about equally often (concatenated random permutations, a repeat within a neuron redrawn)."""
    if k > m:
        raise DdnhwError(f"lut layer: fan-in k = {k} exceeds its {m} input bits")
    reps = -(-n * k // m)
    idx = np.concatenate([rng.permutation(m) for _ in range(reps)])[:n * k].reshape(n, k)
    for j in range(n):
        row = idx[j]
        seen = set()
        for i in range(k):
            if int(row[i]) in seen:
                free = np.setdiff1d(np.arange(m), row)
                row[i] = rng.choice(free)
            seen.add(int(row[i]))
    return idx.astype(np.int64)


def _efd_weights(k):
    """``W[i, a, a']`` = ``(2 a'_i - 1) / (1 + Hamming(a', a) over the bits other than i)``."""
    size = 1 << k
    a = np.arange(size)
    bits = (a[:, None] >> np.arange(k)) & 1                     # (size, k)
    w = np.zeros((k, size, size))
    for i in range(k):
        mask = np.ones(k, bool)
        mask[i] = False
        ham = (bits[:, None, mask] != bits[None, :, mask]).sum(-1)   # (a, a')
        w[i] = (2 * bits[None, :, i] - 1) / (1.0 + ham)
    return torch.tensor(w, dtype=torch.float32)


class _LutEFD(torch.autograd.Function):
    """Table lookup forward; straight-through to the addressed entries and EFD to the input
    bits backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, table, inputs, weights):
        n, size = table.shape
        k = inputs.shape[1]
        addr = (x[:, inputs].long() << torch.arange(k)).sum(-1)
        flat = addr + torch.arange(n).mul(size)[None]
        ctx.save_for_backward(flat, table, inputs, weights)
        ctx.m = x.shape[1]
        return (table.reshape(-1)[flat] > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        flat, table, inputs, weights = ctx.saved_tensors
        n, size = table.shape
        k = inputs.shape[1]
        grad_table = torch.zeros(n * size, dtype=g.dtype).index_add_(
            0, flat.reshape(-1), g.reshape(-1)).reshape(n, size)
        grad_x = None
        if ctx.needs_input_grad[0]:
            v = torch.einsum("iab,nb->nai", weights, (table > 0).to(g.dtype))   # (n, size, k)
            gb = g[..., None] * v.reshape(n * size, k)[flat]                   # (B, n, k)
            grad_x = torch.zeros(g.shape[0], ctx.m, dtype=g.dtype).index_add_(
                1, inputs.reshape(-1), gb.reshape(g.shape[0], -1))
        return grad_x, grad_table, None, None


class LutLayer(nn.Module):
    """``n`` table neurons of fan-in ``k`` over ``m`` input bits (connections from ``rng``)."""

    def __init__(self, m, n, k, rng, name="lut"):
        super().__init__()
        self.name = name
        k = check_fanin(k, f"layer {name!r}")
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise DdnhwError(f"layer {name!r}: needs at least one neuron, not {n!r}")
        self.m, self.n, self.k = int(m), int(n), k
        self.register_buffer("inputs", torch.tensor(random_connections(m, n, k, rng)))
        gen = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
        self.table = nn.Parameter(torch.rand(n, 1 << k, generator=gen) * 2 - 1)
        self.register_buffer("efd", _efd_weights(k), persistent=False)

    def forward(self, x):
        return _LutEFD.apply(x, self.table, self.inputs, self.efd)

    def int_table(self) -> torch.Tensor:
        """The truth table as int64 0/1 ``(n, 2**k)``."""
        return (self.table.detach() > 0).long()

    def int_forward(self, bits):
        """Integer mode: int64 bits ``(B, m)`` → int64 bits ``(B, n)``."""
        addr = (bits[:, self.inputs] << torch.arange(self.k)).sum(-1)
        return torch.gather(self.int_table().expand(bits.shape[0], -1, -1), 2,
                            addr[..., None])[..., 0]


class LutNet(nn.Module):
    """Thermometer encoder → table layers → popcount per class group.

    ``thresholds``: ``(F, T)`` integer thresholds on the input codes of ``in_type``;
    ``layers``: ``[(neurons, k), ...]``; the last layer's neurons are split into ``classes``
    consecutive groups of ``neurons // classes`` (any remainder is read by no class);
    ``tau``: the softmax temperature of the scores in training."""

    def __init__(self, thresholds, in_type: IntType, layers, classes, tau=1.0, seed=0):
        super().__init__()
        th = np.asarray(thresholds, np.int64)
        if th.ndim != 2:
            raise DdnhwError(f"thresholds must be (features, levels), not shape {th.shape}")
        self.in_type, self.classes, self.tau = in_type, int(classes), float(tau)
        self.register_buffer("thresholds", torch.tensor(th))
        rng = np.random.default_rng(seed)
        m, mods = th.size, []
        if not layers:
            raise DdnhwError("a LUT network needs at least one table layer")
        for j, (n, k) in enumerate(layers):
            mods.append(LutLayer(m, n, k, rng, name=f"lut{j}"))
            m = int(n)
        self.layers = nn.ModuleList(mods)
        per = m // self.classes
        if per < 1:
            raise DdnhwError(f"layer 'lut{len(mods) - 1}': {m} neurons cannot make "
                             f"{self.classes} class groups")
        groups = np.full(m, -1, np.int64)
        groups[:per * self.classes] = np.arange(per * self.classes) // per
        self.register_buffer("groups", torch.tensor(groups))

    def _onehot(self, dtype):
        return (self.groups[:, None] == torch.arange(self.classes)[None]).to(dtype)

    def encode(self, codes):
        """Float bits ``(B, F*T)`` of integer-valued codes ``(B, F)``."""
        return (codes[:, :, None] >= self.thresholds[None]).float().reshape(len(codes), -1)

    def forward(self, codes):
        """Scores ``popcount / tau`` ``(B, classes)`` of codes ``(B, F)`` (float tensors)."""
        h = self.encode(codes)
        for layer in self.layers:
            h = layer(h)
        return h @ self._onehot(h.dtype) / self.tau

    def int_forward(self, x):
        """Integer mode: int64 codes ``(B, F)`` → int64 popcounts ``(B, classes)``."""
        h = (x[:, :, None] >= self.thresholds[None]).long().reshape(len(x), -1)
        for layer in self.layers:
            h = layer.int_forward(h)
        return h @ self._onehot(torch.int64)


@dataclass
class LutConfig:
    """``layers``: ``[(neurons, k), ...]``; ``levels``: thermometer thresholds per feature;
    ``in_bits``: input code bits (binary point ``in_bits``: codes of [0, 1) inputs)."""
    layers: tuple = ((600, 6), (300, 6))
    levels: int = 3
    in_bits: int = 4
    tau: float = 1.0
    encoding: str = "distributive"
    epochs: int = 30
    lr: float = 0.01
    batch: int = 32
    seed: int = 0
    extra: dict = field(default_factory=dict)


@dataclass
class LutResult:
    model: LutNet
    accuracy: float          # the trained network's test accuracy (its bits are the inference)
    seconds: float
    history: list


def _accuracy(model, codes, y):
    with torch.no_grad():
        pred = torch.argmax(model.int_forward(torch.as_tensor(codes)), dim=1).numpy()
    return float(np.mean(pred == np.asarray(y)))


def train_lut(xtr, ytr, xte, yte, cfg: LutConfig = LutConfig(), log=None) -> LutResult:
    """Fit the thermometer on ``xtr`` (real inputs in [0, 1]), then train the table layers with
    Adam on the cross entropy of the group popcounts; returns the model after the last epoch."""
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    in_type = IntType(False, int(cfg.in_bits), int(cfg.in_bits))
    ctr, cte = input_codes(xtr, in_type), input_codes(xte, in_type)
    classes = int(max(np.max(ytr), np.max(yte))) + 1
    th = thermometer_thresholds(ctr, cfg.levels, in_type, cfg.encoding)
    model = LutNet(th, in_type, cfg.layers, classes, cfg.tau, seed=cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, cfg.epochs))
    xt, yt = torch.tensor(ctr, dtype=torch.float32), torch.tensor(np.asarray(ytr), dtype=torch.long)
    gen = torch.Generator().manual_seed(cfg.seed)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for ep in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for s in range(0, len(xt), cfg.batch):
            b = perm[s:s + cfg.batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[b]), yt[b])
            loss.backward()
            opt.step()
            with torch.no_grad():
                for layer in model.layers:
                    layer.table.clamp_(-1, 1)
            total += float(loss.detach()) * len(b)
        sched.step()
        acc = _accuracy(model, cte, yte)
        history.append({"epoch": ep + 1, "loss": total / len(xt), "test_accuracy": acc})
        if log is not None and (ep + 1) % max(1, cfg.epochs // 5) == 0:
            log(f"lut epoch {ep + 1}/{cfg.epochs}: loss {total / len(xt):.4f}, "
                f"test accuracy {acc:.4f}")
    return LutResult(model, _accuracy(model, cte, yte), time.perf_counter() - t0, history)


def export_lut(model: LutNet, meta=None):
    """The IR graph (``thermometer → lut ... → popcount``) of a trained :class:`LutNet`."""
    layers = [(layer.inputs.numpy(), layer.int_table().numpy()) for layer in model.layers]
    info = {"kind": "lut", "layers": [[layer.n, layer.k] for layer in model.layers],
            "levels": int(model.thresholds.shape[1]), "in_bits": model.in_type.bits}
    info.update(meta or {})
    return lut_graph(model.in_type, model.thresholds.numpy(), layers, model.groups.numpy(),
                     model.classes, meta=info)
