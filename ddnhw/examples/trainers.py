"""Model factories and training of the examples, one per model kind (``trainer(example, data,
settings, seed, log) -> Trained``, see :class:`ddnhw.flow.Example`): QAT through
:mod:`ddnhw.quant`, the export to the IR, and the PyTorch integer mode the pipeline compares
with golden. Classes are counted from the training labels; inputs are the data set's
``(N, features)``."""
from __future__ import annotations

import numpy as np

from ddnhw.flow import Trained

__all__ = ["mlp", "cnn", "seq"]


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


def mlp(example, data, settings, seed, log):
    """Multilayer perceptron ``features → hidden → classes``. Settings: ``hidden``, ``bits``
    (inputs, weights and activations), ``prune`` (fraction of the first layer's weights set to
    zero), ``epochs`` (float, then as many QAT)."""
    from ddnhw.quant import export_mlp
    from ddnhw.quant.train import TrainConfig, train_mlp

    xtr, ytr, xte, yte = data
    bits, epochs = settings["bits"], settings["epochs"]
    sizes = (int(xtr.shape[1]), int(settings["hidden"]), _classes(ytr))
    cfg = TrainConfig(sizes=sizes, in_bits=bits, w_bits=bits, a_bits=bits, float_epochs=epochs,
                      qat_epochs=epochs, prune=settings["prune"], seed=seed)
    r = train_mlp(xtr, ytr, xte, yte, cfg, log=log)
    graph = export_mlp(r.model, meta=_meta(example, seed, r.float_accuracy))
    return Trained(graph, r.float_accuracy, r.quant_accuracy, r.seconds, r.model,
                   _int_forward(r.model), {"sizes": list(sizes)})


def cnn(example, data, settings, seed, log):
    """Convolutional network of :class:`ddnhw.quant.cnn.QuantCNN` layer specs. Settings:
    ``layers``, ``in_shape`` (C, H, W: how a row of features is an image; a 1-D signal is
    ``(C, 1, L)``), ``channels`` (optional: the first layer's output channels), ``bits``,
    ``epochs``."""
    from ddnhw.quant.cnn import CNNConfig, export_cnn, train_cnn

    xtr, ytr, xte, yte = data
    layers = [dict(spec) for spec in settings["layers"]]
    if settings.get("channels") is not None:
        layers[0]["out"] = int(settings["channels"])
    bits, epochs = settings["bits"], settings["epochs"]
    cfg = CNNConfig(layers=layers, in_shape=tuple(settings["in_shape"]), in_bits=bits,
                    w_bits=bits, a_bits=bits, float_epochs=epochs, qat_epochs=epochs, seed=seed)
    r = train_cnn(xtr, ytr, xte, yte, cfg, log=log)
    graph = export_cnn(r.model, meta=_meta(example, seed, r.float_accuracy))
    return Trained(graph, r.float_accuracy, r.quant_accuracy, r.seconds, r.model,
                   _int_forward(r.model, (0, 3, 1, 2)), {"layers": layers})


def seq(example, data, settings, seed, log):
    """Recurrent sequence classifier (:class:`ddnhw.quant.rnn.QuantSeqClassifier`): a row of
    features is ``steps`` time steps of ``input_size`` values. Settings: ``cell`` (a
    recurrent cell of :mod:`ddnhw.quant.rnn`), ``steps``, ``input_size``, ``hidden``,
    ``bits`` (inputs and weights), ``epochs``."""
    from ddnhw.quant.rnn import SeqConfig, export_seq, train_seq

    xtr, ytr, xte, yte = data
    cfg = SeqConfig(cell=settings["cell"], input_size=settings["input_size"],
                    hidden=settings["hidden"], n_classes=_classes(ytr), steps=settings["steps"],
                    in_bits=settings["bits"], w_bits=settings["bits"],
                    float_epochs=settings["epochs"], qat_epochs=settings["epochs"], seed=seed)
    r = train_seq(xtr, ytr, xte, yte, cfg, log=log)
    graph = export_seq(r.model, meta=_meta(example, seed, r.float_accuracy))
    return Trained(graph, r.float_accuracy, r.quant_accuracy, r.seconds, r.model,
                   _int_forward(r.model), {"n_classes": _classes(ytr)})
