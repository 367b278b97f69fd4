"""Mixed-precision search: train per-layer bit-width candidates, estimate their LUTs with the
hardware resource model, and keep the Pareto front of accuracy against LUTs."""
from __future__ import annotations

import itertools

import numpy as np

from .schemes import ActSpec, WeightSpec, export_scheme_mlp

__all__ = ["candidates", "channel_bits_by_importance", "channel_candidates", "estimate_luts",
           "pareto_front", "search"]


def candidates(n_layers, w_bits=(2, 3, 4), a_bits=(2, 3, 4), realize="mult", limit=None):
    """Per-layer specs ``(weights, acts)``: every combination of weight bits per layer and one
    activation width for all hidden layers (``limit``: keep an evenly spaced subset)."""
    out = []
    for ws in itertools.product(w_bits, repeat=n_layers):
        for a in a_bits:
            out.append(([WeightSpec(bits=b) for b in ws],
                        [ActSpec(bits=a, realize=realize)] * (n_layers - 1)))
    if limit and len(out) > limit:
        keep = np.linspace(0, len(out) - 1, limit).round().astype(int)
        out = [out[k] for k in sorted(set(keep))]
    return out


def channel_bits_by_importance(layers, k, bits, low_bits, fraction):
    """Per-output-channel bit widths of layer ``k`` of an MLP (``layers``: its linear layers):
    the ``fraction`` of channels of least importance get ``low_bits``, the others ``bits``.
    A hidden channel's importance is the size of its weights times the size of the weights that
    read it: ``max|W_k[c, :]| * max|W_{k+1}[:, c]|`` (the last layer: ``max|W_k[c, :]|``)."""
    w = np.abs(layers[k].weight.detach().numpy())
    imp = w.max(axis=1)
    if k + 1 < len(layers):
        imp = imp * np.abs(layers[k + 1].weight.detach().numpy()).max(axis=0)
    low = np.argsort(imp, kind="stable")[:int(round(fraction * len(imp)))]
    cb = np.full(len(imp), bits)
    cb[low] = low_bits
    return tuple(int(b) for b in cb)


def channel_candidates(float_model, bits=4, low_bits=2, fractions=(0.25, 0.5, 0.75),
                       out_bits=(3, 4), a_bits=4, realize="mult"):
    """Per-channel mixed precision in the first (hidden) layer of a 2-layer MLP: for each
    ``fraction``, that share of its channels (the least important, see
    :func:`channel_bits_by_importance`) at ``low_bits`` and the rest at ``bits``; the output
    layer at each of ``out_bits``."""
    out = []
    for f in fractions:
        cb = channel_bits_by_importance(float_model.layers, 0, bits, low_bits, f)
        for ob in out_bits:
            out.append(([WeightSpec(bits=bits, channel_bits=cb), WeightSpec(bits=ob)],
                        [ActSpec(bits=a_bits, realize=realize)]))
    return out


def estimate_luts(graph, family="ice40") -> dict:
    """The lowering's resource estimate of the fully unrolled network (sum over layers)."""
    from ddnhw.lower import plan_network
    net = plan_network(graph, family=family)     # estimated only: no component built
    tot = {}
    for layer in net.layers:
        for k, v in layer["estimate"].items():
            tot[k] = tot.get(k, 0) + int(v)
    tot["latency_cycles"], tot["ii_cycles"] = int(net.latency), int(net.ii)
    return tot


def pareto_front(rows, acc="accuracy", cost="luts"):
    """Rows not dominated by another (higher-or-equal accuracy at lower-or-equal cost, one of
    them strictly), sorted by cost."""
    front = []
    for r in sorted(rows, key=lambda r: (r[cost], -r[acc])):
        if not front or r[acc] > front[-1][acc]:
            front.append(r)
    return front


def _wlabel(s):
    out = f"{s.kind[0] if s.kind != 'uniform' else ''}{s.bits}"
    if s.channel_bits is not None:   # e.g. 4(8x2): 8 channels at 2 bits, the others at 4
        low = [b for b in s.channel_bits if b != s.bits]
        if low:
            out += f"({len(low)}x{min(low)})"
    return out


def label(wspecs, aspecs):
    w = "/".join(_wlabel(s) for s in wspecs)
    a = "/".join(str(s.bits) for s in aspecs)
    return f"w{w} a{a}"


def search(float_model, data, cands, cfg_kw=None, family="ice40", log=None, make=None,
           export=export_scheme_mlp):
    """Train every candidate from ``float_model``; returns ``(rows, models)``. Each row:
    ``label``, ``w_bits``, ``a_bits``, ``accuracy`` (golden model on the test split),
    ``ptq_accuracy``, ``luts``, ``ffs``, ``dsps``; ``models[i]`` is row ``i``'s graph.
    ``make(weights, acts)``: the scheme model of a candidate (default: a ``SchemeMLP`` from
    ``float_model``), ``export``: its exporter; image data ``(N, C, H, W)`` goes to the golden
    model as NHWC."""
    from ddnhw import golden
    from .qat import SchemeConfig, train_scheme
    xtr, ytr, xte, yte = data
    x_gold = np.moveaxis(np.asarray(xte), 1, -1) if np.ndim(xte) == 4 else xte
    rows, graphs = [], []
    for k, (ws, acts) in enumerate(cands):
        cfg = SchemeConfig(weights=ws, acts=acts, **(cfg_kw or {}))
        model, met = train_scheme(float_model, xtr, ytr, xte, yte, cfg,
                                  model=make(ws, acts) if make else None)
        g = export(model, meta={"dataset": "sklearn-digits",
                                "float_accuracy": met["float_accuracy"]})
        acc = float(np.mean(golden.classify(g, golden.quantize_input(g, x_gold)) == yte))
        est = estimate_luts(g, family)
        row = {"index": k, "label": label(ws, acts), "w_bits": [s.bits for s in ws],
               "channel_bits": [list(s.channel_bits) if s.channel_bits else None for s in ws],
               "a_bits": [s.bits for s in acts], "accuracy": acc,
               "ptq_accuracy": met["ptq_accuracy"], "float_accuracy": met["float_accuracy"],
               "luts": est.get("luts", 0), "ffs": est.get("ffs", 0), "dsps": est.get("dsps", 0)}
        rows.append(row)
        graphs.append(g)
        if log:
            log(f"[{k + 1}/{len(cands)}] {row['label']}: accuracy {acc:.4f}, "
                f"~{row['luts']} LUTs")
    return rows, graphs
