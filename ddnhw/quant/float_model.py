"""The float model beside the integer graph in a model file.

A trainer keeps the float model it had before quantization-aware training (its weights before
pruning, BN folding and QAT). :func:`attach` stores it in the model file (``.npz``) next to the
graph, as ``__float__/<parameter>`` float arrays and a ``__float__`` JSON entry naming the
model kind and its constructor arguments; :func:`ddnhw.ir.load_graph` ignores these entries,
so the graph, its hash and its Verilog do not change. :func:`load` rebuilds the float PyTorch
model, :func:`predict` runs it on real inputs (``ddnhw evaluate``).
"""
from __future__ import annotations

import json
import os

import numpy as np

from ddnhw import DdnhwError

__all__ = ["KEY", "describe", "attach", "load", "predict"]

KEY = "__float__"


def describe(model) -> dict:
    """``{"kind", "args"}``: how to rebuild ``model`` (a QuantMLP, QuantCNN or
    QuantSeqClassifier, float or not)."""
    from .cnn import QuantCNN
    from .modules import QuantMLP
    from .rnn import QuantSeqClassifier
    if isinstance(model, QuantMLP):
        return {"kind": "mlp", "args": {"sizes": list(model.sizes)}}
    if isinstance(model, QuantCNN):
        bn = any(type(m).__name__ == "BatchNorm2d" for m in model.modules())
        return {"kind": "cnn", "args": {"layers": model.spec, "in_shape": list(model.in_shape),
                                        "bn": bn}}
    if isinstance(model, QuantSeqClassifier):
        return {"kind": "seq", "args": dict(model.config)}
    raise DdnhwError(f"float model: cannot store a {type(model).__name__} (QuantMLP, QuantCNN "
                     f"or QuantSeqClassifier)")


def attach(path, model) -> None:
    """Add ``model``'s float parameters to the model file ``path`` (rewritten atomically)."""
    from ddnhw.atomic import atomic_open
    path = os.fspath(path)
    desc = describe(model)
    state = model.state_dict()
    with np.load(path, allow_pickle=False) as z:
        files = {k: z[k] for k in z.files if not k.startswith(KEY)}
    for k, v in state.items():
        files[f"{KEY}/{k}"] = v.detach().cpu().numpy()
    desc["state"] = sorted(state)
    files[KEY] = np.array(json.dumps(desc, sort_keys=True))
    with atomic_open(path, "wb") as f:
        np.savez(f, **files)


def _build(desc):
    from .cnn import QuantCNN
    from .modules import QuantMLP
    from .rnn import QuantSeqClassifier
    kind, args = desc["kind"], desc["args"]
    if kind == "mlp":
        return QuantMLP(tuple(args["sizes"]))
    if kind == "cnn":
        return QuantCNN(args["layers"], tuple(args["in_shape"]), bn=bool(args["bn"]))
    if kind == "seq":
        return QuantSeqClassifier(**args)
    raise DdnhwError(f"float model of kind {kind!r} is not known (mlp, cnn, seq)")


def load(path):
    """The float PyTorch model stored in model file ``path`` (eval mode, quantization off), or
    None when the file carries none. A malformed entry raises :class:`DdnhwError` naming the
    file."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if KEY not in z.files:
                return None
            desc = json.loads(str(z[KEY]))
            arrays = {k[len(KEY) + 1:]: z[k] for k in z.files if k.startswith(KEY + "/")}
    except (OSError, ValueError, json.JSONDecodeError) as e:
        raise DdnhwError(f"{path}: cannot read its float model: {e}") from None
    import torch
    try:
        model = _build(desc)
        if "inp.norm" in arrays:     # float training on normalized inputs
            model.inp.norm = torch.zeros(arrays["inp.norm"].shape)
        model.load_state_dict({k: torch.as_tensor(v) for k, v in arrays.items()})
    except (KeyError, TypeError, RuntimeError) as e:
        raise DdnhwError(f"{path}: malformed float model: {type(e).__name__}: {e}") from None
    model.set_quantize(False)
    model.eval()
    model.float_kind = desc["kind"]
    return model


def predict(model, x) -> np.ndarray:
    """The float model's outputs (logits or values) on real inputs ``x`` ``(N, features)``
    in [0, 1]."""
    import torch
    x = torch.as_tensor(np.asarray(x, np.float32))
    if getattr(model, "float_kind", None) == "cnn":
        x = x.reshape((-1,) + tuple(model.in_shape))
    else:
        x = x.reshape(len(x), -1)
    with torch.no_grad():
        return model(x).double().numpy()
