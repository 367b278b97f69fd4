"""Model factories and training of the examples, one per model kind (``trainer(example, data,
settings, seed, log) -> Trained``, see :class:`ddnhw.flow.Example`): QAT through
:mod:`ddnhw.quant`, the export to the IR, and the PyTorch integer mode the pipeline compares
with golden. Classes are counted from the training labels; inputs are the data set's
``(N, features)``."""
from __future__ import annotations

import numpy as np

from ddnhw.flow import Trained

__all__ = ["mlp", "cnn", "seq", "mlp_regressor"]


def _meta(example, seed, float_accuracy, **extra):
    return {"example": example.name, "dataset": example.dataset, "seed": int(seed),
            "float_accuracy": float_accuracy, **extra}


def _int_forward(model, layout=None):
    """``model.int_forward`` on NumPy integer inputs; ``layout``: a permutation of the graph's
    input axes into the model's."""
    import torch

    def forward(x):
        t = torch.as_tensor(np.asarray(x, np.int64))
        return model.int_forward(t if layout is None else t.permute(*layout)).numpy()
    return forward


def _classes(y):
    return int(np.max(y)) + 1


def _optional(settings, bits, epochs):
    """The optional settings every trainer reads: ``in_bits`` (default ``bits``), ``qat_epochs``
    (default ``epochs``), ``distill`` (weight of distillation from the float model in the QAT
    loss, default 0), ``temperature`` (4), ``input_norm`` (float training on standardized
    inputs, folded into the first layer before QAT; default False) and, when given, ``batch``
    (minibatch size), ``lr`` and ``qat_lr`` (peak learning rates of the float and QAT phases;
    default: the training config's)."""
    return dict(in_bits=settings.get("in_bits") or bits,
                qat_epochs=settings.get("qat_epochs") or epochs,
                distill=settings.get("distill") or 0.0,
                temperature=settings.get("temperature") or 4.0,
                input_norm=bool(settings.get("input_norm", False)),
                **{k: settings[k] for k in ("batch", "lr", "qat_lr")
                   if settings.get(k) is not None})


def mlp(example, data, settings, seed, log):
    """Multilayer perceptron ``features → hidden → classes``. Settings: ``hidden``, ``bits``
    (inputs, weights and activations), ``prune`` (fraction of the first layer's weights set to
    zero), ``epochs`` (float, then as many QAT)."""
    from ddnhw.quant import export_mlp
    from ddnhw.quant.train import TrainConfig, train_mlp

    xtr, ytr, xte, yte = data
    bits, epochs = settings["bits"], settings["epochs"]
    sizes = (int(xtr.shape[1]), int(settings["hidden"]), _classes(ytr))
    cfg = TrainConfig(sizes=sizes, w_bits=bits, a_bits=bits, float_epochs=epochs,
                      prune=settings["prune"], seed=seed, **_optional(settings, bits, epochs))
    r = train_mlp(xtr, ytr, xte, yte, cfg, log=log)
    graph = export_mlp(r.model, meta=_meta(example, seed, r.float_accuracy))
    return Trained(graph, r.float_accuracy, r.quant_accuracy, r.seconds, r.model,
                   _int_forward(r.model), {"sizes": list(sizes)}, r.float_model)


def cnn(example, data, settings, seed, log):
    """Convolutional network of :class:`ddnhw.quant.cnn.QuantCNN` layer specs. Settings:
    ``layers``, ``in_shape`` (C, H, W: how a row of features is an image; a 1-D signal is
    ``(C, 1, L)``), ``channels`` (optional: the first layer's output channels), ``bits``,
    ``epochs``, optional ``out_per_channel`` (per-channel exponents in the output layer),
    ``w_bits``/``a_bits`` (weights/activations, default ``bits``), ``act_calibration``
    (``"p999"``, the default, or ``"mse"``: :meth:`ddnhw.quant.cnn.QuantCNN.calibrate`),
    ``freeze_exponents`` (``"max"``/``"mse"``: QAT with the weight exponents fixed,
    :func:`ddnhw.quant.quantizers.freeze_weight_exponents`; default: recomputed each step)."""
    from ddnhw.quant.cnn import CNNConfig, export_cnn, train_cnn

    xtr, ytr, xte, yte = data
    layers = [dict(spec) for spec in settings["layers"]]
    if settings.get("channels") is not None:
        layers[0]["out"] = int(settings["channels"])
    bits, epochs = settings["bits"], settings["epochs"]
    cfg = CNNConfig(layers=layers, in_shape=tuple(settings["in_shape"]),
                    w_bits=settings.get("w_bits") or bits, a_bits=settings.get("a_bits") or bits,
                    float_epochs=epochs, seed=seed,
                    out_per_channel=bool(settings.get("out_per_channel", False)),
                    act_calibration=settings.get("act_calibration") or "p999",
                    freeze_exponents=settings.get("freeze_exponents") or None,
                    **_optional(settings, bits, epochs))
    r = train_cnn(xtr, ytr, xte, yte, cfg, log=log)
    graph = export_cnn(r.model, meta=_meta(example, seed, r.float_accuracy))
    return Trained(graph, r.float_accuracy, r.quant_accuracy, r.seconds, r.model,
                   _int_forward(r.model, (0, 3, 1, 2)), {"layers": layers}, r.float_model)


def seq(example, data, settings, seed, log):
    """Recurrent sequence classifier (:class:`ddnhw.quant.rnn.QuantSeqClassifier`): a row of
    features is ``steps`` time steps of ``input_size`` values. Settings: ``cell`` (a
    recurrent cell of :mod:`ddnhw.quant.rnn`), ``steps``, ``input_size``, ``hidden``,
    ``bits`` (inputs and weights), ``epochs``; optional ``return_sequences`` (the classifier
    reads every step's state, ``steps * hidden`` features, not only the last) and
    ``state_bits`` (the state's width, default 8)."""
    from ddnhw.quant.rnn import SeqConfig, export_seq, train_seq

    xtr, ytr, xte, yte = data
    extra = {k: settings[k] for k in ("return_sequences", "state_bits")
             if settings.get(k) is not None}
    cfg = SeqConfig(cell=settings["cell"], input_size=settings["input_size"],
                    hidden=settings["hidden"], n_classes=_classes(ytr), steps=settings["steps"],
                    w_bits=settings["bits"], float_epochs=settings["epochs"], seed=seed,
                    **extra, **_optional(settings, settings["bits"], settings["epochs"]))
    r = train_seq(xtr, ytr, xte, yte, cfg, log=log)
    graph = export_seq(r.model, meta=_meta(example, seed, r.float_accuracy))
    return Trained(graph, r.float_accuracy, r.quant_accuracy, r.seconds, r.model,
                   _int_forward(r.model), {"n_classes": _classes(ytr)}, r.float_model)


def mlp_regressor(example, data, settings, seed, log):
    """Multilayer perceptron ``features → hidden → 1`` on real targets ``y`` (MSE loss).
    Settings as :func:`mlp`, and ``target`` ``(lo, hi)``: the targets' range, mapped to
    [0, 1] for training; the model file's meta (``task`` ``regression``, ``target_offset``,
    ``target_scale``) maps the output back (:mod:`ddnhw.flow.evaluate`). The scores are
    RMSEs in the target's units."""
    from ddnhw.quant import export_mlp
    from ddnhw.quant.train import TrainConfig, train_mlp_regressor

    xtr, ytr, xte, yte = data
    lo, hi = (float(v) for v in settings["target"])
    bits, epochs = settings["bits"], settings["epochs"]
    sizes = (int(xtr.shape[1]), int(settings["hidden"]), 1)
    opt = _optional(settings, bits, epochs)
    opt.pop("distill"), opt.pop("temperature")   # regression: MSE, no distillation
    cfg = TrainConfig(sizes=sizes, w_bits=bits, a_bits=bits, float_epochs=epochs,
                      prune=settings["prune"], seed=seed, **opt)
    r = train_mlp_regressor(xtr, (ytr - lo) / (hi - lo), xte, (yte - lo) / (hi - lo), cfg,
                            log=log)
    scale = hi - lo
    meta = _meta(example, seed, None, float_rmse=r.float_accuracy * scale, task="regression",
                 target_offset=lo, target_scale=scale)
    graph = export_mlp(r.model, meta=meta)
    return Trained(graph, r.float_accuracy * scale, r.quant_accuracy * scale, r.seconds,
                   r.model, _int_forward(r.model), {"sizes": list(sizes)}, r.float_model)
