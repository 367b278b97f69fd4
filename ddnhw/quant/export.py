"""Export of a trained QAT model to the integer IR."""
from __future__ import annotations

import numpy as np

from ddnhw import DdnhwError
from ddnhw.ir import Graph, IntType, mlp_graph


def export_mlp(model, meta=None) -> Graph:
    """The IR graph of a calibrated :class:`~ddnhw.quant.modules.QuantMLP`."""
    for k, act in enumerate(model.acts):
        if act.frac is None:
            raise DdnhwError(f"layer relu{k}: activation scale not calibrated; "
                             f"call model.calibrate(x) before export")
    frac = model.inp.frac
    layers = []
    for k, layer in enumerate(model.layers):
        for name, arr in (("weight", layer.weight), ("bias", layer.bias)):
            if not np.all(np.isfinite(arr.detach().numpy())):
                raise DdnhwError(f"layer {layer.name}: {name} contains NaN or Inf")
        last = k == len(model.layers) - 1
        # the last layer's outputs share one scale (per-channel exponents are folded into its
        # integer weights), else the graph's output type could not state their real value
        w, b, e = layer.int_params_common(frac) if last else layer.int_params(frac)
        w, b, e = w.numpy(), b.numpy(), e.numpy()
        spec = {"name": layer.name, "weight": w, "bias": b,
                "weight_frac": int(-e[0]) if np.all(e == e[0]) else 0}
        if k < len(model.acts):
            act = model.acts[k]
            t = e + act.frac - frac
            spec["requant"] = {"multiplier": np.where(t > 0, 2 ** np.maximum(t, 0), 1),
                               "shift": np.maximum(-t, 0), "lo": 0, "hi": (1 << act.bits) - 1,
                               "out_type": IntType(False, act.bits, act.frac)}
            frac = act.frac
        layers.append(spec)
    in_type = IntType(False, model.inp.bits, model.inp.frac)
    info = {"kind": "mlp", "sizes": list(model.sizes), "in_bits": model.inp.bits,
            "w_bits": model.layers[0].w_bits,
            "a_bits": model.acts[0].bits if len(model.acts) else None}
    info.update(meta or {})
    return mlp_graph(in_type, layers, meta=info)
