"""Build IR graphs from integer parameters: MLP chains, and seeded random ones for tests."""
from __future__ import annotations

import numpy as np

from .graph import Graph
from .ops import dense_acc_type
from .types import IntType


def mlp_graph(in_type: IntType, layers, meta=None) -> Graph:
    """A chain of ``dense`` (+ optional ``requant``) nodes.

    ``layers`` is a list of dicts with ``weight`` (out, in), ``bias`` (out,), and optionally
    ``requant``: dict(multiplier, shift, lo, hi, out_type). The accumulator type of each dense
    node is the narrowest that holds its worst case for the actual weights.
    """
    g = Graph(meta=dict(meta or {}))
    n_in = np.asarray(layers[0]["weight"]).shape[1]
    g.add_tensor("x", (n_in,), in_type)
    g.inputs = ["x"]
    cur, cur_type = "x", in_type
    for k, layer in enumerate(layers):
        w = np.asarray(layer["weight"], dtype=np.int64)
        b = np.asarray(layer["bias"], dtype=np.int64)
        name = layer.get("name", f"fc{k}")
        acc = dense_acc_type(w, b, cur_type)
        acc = IntType(acc.signed, acc.bits, cur_type.frac + int(layer.get("weight_frac", 0)))
        g.add_tensor(f"{name}_acc", (w.shape[0],), acc)
        g.add_node(name, "dense", [cur], [f"{name}_acc"], weight=w, bias=b)
        cur, cur_type = f"{name}_acc", acc
        rq = layer.get("requant")
        if rq is not None:
            c = w.shape[0]
            out_type = rq["out_type"]
            g.add_tensor(f"{name}_act", (c,), out_type)
            g.add_node(f"{name}_rq", "requant", [cur], [f"{name}_act"],
                       multiplier=np.broadcast_to(np.asarray(rq["multiplier"], np.int64), (c,)).copy(),
                       shift=np.broadcast_to(np.asarray(rq["shift"], np.int64), (c,)).copy(),
                       lo=int(rq["lo"]), hi=int(rq["hi"]), rounding="half_up")
            cur, cur_type = f"{name}_act", out_type
    g.outputs = [cur]
    return g.check()


def random_mlp(seed: int, sizes=(16, 8, 4), in_bits=4, w_bits=4, a_bits=4,
               zero_frac=0.3, in_signed=False) -> Graph:
    """A seeded random MLP with extreme and zero weights, ReLU requant between layers."""
    rng = np.random.default_rng(seed)
    in_type = IntType(in_signed, in_bits)
    layers = []
    wmax = (1 << (w_bits - 1)) - 1
    for k in range(len(sizes) - 1):
        w = rng.integers(-wmax, wmax + 1, size=(sizes[k + 1], sizes[k]))
        w[rng.random(w.shape) < zero_frac] = 0
        w[0, 0] = wmax
        if w.shape[1] > 1:
            w[0, 1] = -wmax
        b = rng.integers(-4 * wmax, 4 * wmax + 1, size=sizes[k + 1])
        layer = {"weight": w, "bias": b}
        if k < len(sizes) - 2:
            c = sizes[k + 1]
            layer["requant"] = {"multiplier": rng.integers(1, 4, size=c),
                                "shift": rng.integers(0, 5, size=c),
                                "lo": 0, "hi": (1 << a_bits) - 1,
                                "out_type": IntType(False, a_bits)}
        layers.append(layer)
    return mlp_graph(in_type, layers, meta={"name": f"random_mlp_{seed}"})


def chain_graph(in_type: IntType, in_shape, layers, meta=None) -> Graph:
    """A chain of nodes of any op, with tensor shapes and types inferred.

    ``layers``: dicts with ``op`` (default ``dense``) and ``name``; ``dense``/``conv2d`` take
    ``weight``, ``bias``, optional ``weight_frac`` and ``requant`` (as in :func:`mlp_graph`);
    ``conv2d`` also ``stride`` (1), ``padding`` (0), ``groups`` (1); ``maxpool2d``/``avgpool2d``
    take ``kernel`` (an int or ``[kh, kw]``) and ``stride`` (default: the kernel's larger side);
    ``flatten`` takes nothing. Images are
    NHWC, ``in_shape`` is ``(H, W, C)`` for an image input. Accumulator types are the narrowest
    that hold the worst case for the actual weights.

    ``residual`` takes ``body`` (a list of layers as these, applied to the layer's input; it
    must keep the shape) and an optional ``requant``: the body's output ``x0`` and the layer's
    input ``x1`` meet in an ``add`` node ``<name>_add`` with the shifts that align their binary
    points (the input forks: a residual connection), then ``<name>_rq``.
    """
    g = Graph(meta=dict(meta or {}))
    g.add_tensor("x", tuple(in_shape), in_type)
    g.inputs = ["x"]
    cur, _, _ = _append_layers(g, "x", in_type, tuple(int(s) for s in in_shape), layers)
    g.outputs = [cur]
    return g.check()


def _append_requant(g, name, cur, shape, rq):
    """Append ``<name>_rq`` (per-channel ``rq`` as in :func:`mlp_graph`) after ``cur``."""
    c = shape[-1]
    g.add_tensor(f"{name}_act", shape, rq["out_type"])
    g.add_node(f"{name}_rq", "requant", [cur], [f"{name}_act"],
               multiplier=np.broadcast_to(np.asarray(rq["multiplier"], np.int64), (c,)).copy(),
               shift=np.broadcast_to(np.asarray(rq["shift"], np.int64), (c,)).copy(),
               lo=int(rq["lo"]), hi=int(rq["hi"]), rounding="half_up")
    return f"{name}_act", rq["out_type"]


def _append_layers(g, cur, cur_type, shape, layers, prefix=""):
    """Append the nodes of ``layers`` (see :func:`chain_graph`) after tensor ``cur``; returns
    the last tensor's ``(name, type, shape)``."""
    from .ops import add_type, conv_out_size, conv_range

    for k, layer in enumerate(layers):
        op = layer.get("op", "dense")
        name = layer.get("name", f"{prefix}{op}{k}")
        if op in ("dense", "conv2d"):
            w = np.asarray(layer["weight"], dtype=np.int64)
            b = np.asarray(layer["bias"], dtype=np.int64)
            attrs = {"weight": w, "bias": b}
            if op == "dense":
                acc = dense_acc_type(w, b, cur_type)
                out_shape = (w.shape[0],)
            else:
                attrs.update(stride=int(layer.get("stride", 1)),
                             padding=int(layer.get("padding", 0)),
                             groups=int(layer.get("groups", 1)))
                lo, hi = conv_range(type("N", (), {"attrs": attrs})(), cur_type)
                acc = IntType.for_range(int(min(lo)), int(max(hi)))
                p, s = attrs["padding"], attrs["stride"]
                out_shape = (conv_out_size(shape[0], w.shape[1], s, p),
                             conv_out_size(shape[1], w.shape[2], s, p), w.shape[0])
            acc = IntType(acc.signed, acc.bits, cur_type.frac + int(layer.get("weight_frac", 0)))
            g.add_tensor(f"{name}_acc", out_shape, acc)
            g.add_node(name, op, [cur], [f"{name}_acc"], **attrs)
            cur, cur_type, shape = f"{name}_acc", acc, out_shape
            if layer.get("requant") is not None:
                cur, cur_type = _append_requant(g, name, cur, shape, layer["requant"])
        elif op in ("maxpool2d", "avgpool2d"):
            kk = layer["kernel"]     # an int, or [kh, kw] (1-D pooling: [1, k])
            kh, kw = (int(kk[0]), int(kk[1])) if isinstance(kk, (list, tuple)) else (kk, kk)
            kk = [kh, kw] if isinstance(kk, (list, tuple)) else int(kk)
            st = int(layer.get("stride", max(kh, kw)))
            shape = (conv_out_size(shape[0], kh, st, 0), conv_out_size(shape[1], kw, st, 0),
                     shape[2])
            g.add_tensor(f"{name}_out", shape, cur_type)
            g.add_node(name, op, [cur], [f"{name}_out"], kernel=kk, stride=st)
            cur = f"{name}_out"
        elif op == "flatten":
            shape = (int(np.prod(shape)),)
            g.add_tensor(f"{name}_out", shape, cur_type)
            g.add_node(name, op, [cur], [f"{name}_out"])
            cur = f"{name}_out"
        elif op == "residual":
            main, main_type, main_shape = _append_layers(g, cur, cur_type, shape, layer["body"],
                                                         prefix=f"{name}_")
            if tuple(main_shape) != tuple(shape):
                raise ValueError(f"layer {name!r}: the residual body maps shape {shape} to "
                                 f"{main_shape}; the add needs them equal")
            s0, s1, sum_type = add_type(main_type, cur_type)
            g.add_tensor(f"{name}_sum", shape, sum_type)
            g.add_node(f"{name}_add", "add", [main, cur], [f"{name}_sum"], shift0=s0, shift1=s1)
            cur, cur_type = f"{name}_sum", sum_type
            if layer.get("requant") is not None:
                cur, cur_type = _append_requant(g, name, cur, shape, layer["requant"])
        else:
            raise ValueError(f"layer {name!r}: unknown op {op!r}")
    return cur, cur_type, shape


def random_cnn(seed: int, in_shape=(6, 6, 2), channels=3, kernel=3, stride=1, padding=1,
               depthwise=False, pool="max", pool_kernel=2, n_out=4, in_bits=4, w_bits=4,
               a_bits=4, zero_frac=0.3) -> Graph:
    """A seeded random ``conv2d → requant (ReLU) → pool → flatten → dense`` chain.

    ``depthwise``: the conv has ``groups = C`` (and ``channels`` is ignored: ``O = C``);
    ``pool``: ``"max"``, ``"avg"`` or None.
    """
    rng = np.random.default_rng(seed)
    wmax = (1 << (w_bits - 1)) - 1
    c = in_shape[2]
    o, cg, groups = (c, 1, c) if depthwise else (channels, c, 1)
    w = rng.integers(-wmax, wmax + 1, size=(o, kernel, kernel, cg))
    w[rng.random(w.shape) < zero_frac] = 0
    w.flat[0] = wmax
    layers = [{"op": "conv2d", "name": "conv0", "weight": w, "groups": groups,
               "bias": rng.integers(-4 * wmax, 4 * wmax + 1, size=o),
               "stride": stride, "padding": padding,
               "requant": {"multiplier": rng.integers(1, 4, size=o),
                           "shift": rng.integers(1, 5, size=o), "lo": 0,
                           "hi": (1 << a_bits) - 1, "out_type": IntType(False, a_bits)}}]
    if pool:
        layers.append({"op": f"{pool}pool2d", "name": "pool0", "kernel": pool_kernel})
    layers.append({"op": "flatten", "name": "flat"})
    g = chain_graph(IntType(False, in_bits), in_shape, layers)   # for the flattened size
    n_in = g.output.shape[0]
    wd = rng.integers(-wmax, wmax + 1, size=(n_out, n_in))
    wd[rng.random(wd.shape) < zero_frac] = 0
    layers.append({"op": "dense", "name": "fc", "weight": wd,
                   "bias": rng.integers(-4 * wmax, 4 * wmax + 1, size=n_out)})
    return chain_graph(IntType(False, in_bits), in_shape, layers,
                       meta={"name": f"random_cnn_{seed}"})


def random_residual_cnn(seed: int, in_shape=(5, 5, 2), kernel=3, convs=2, stem=0, n_out=3,
                        in_bits=4, w_bits=4, a_bits=4, zero_frac=0.3) -> Graph:
    """A seeded random residual CNN: [``stem`` channels: conv2d (same padding) -> ReLU] ->
    residual block (``convs`` same-padded conv2d, ReLU requant between them; the block input
    added to the last conv's accumulator, binary points aligned; ReLU requant) -> flatten ->
    dense. Without a stem the graph input itself forks."""
    rng = np.random.default_rng(seed)
    wmax = (1 << (w_bits - 1)) - 1
    act = IntType(False, a_bits, int(rng.integers(0, 4)))

    def conv(name, cin, cout, rq=True):
        w = rng.integers(-wmax, wmax + 1, size=(cout, kernel, kernel, cin))
        w[rng.random(w.shape) < zero_frac] = 0
        w.flat[0] = wmax
        layer = {"op": "conv2d", "name": name, "weight": w, "padding": kernel // 2,
                 "bias": rng.integers(-4 * wmax, 4 * wmax + 1, size=cout),
                 "weight_frac": int(rng.integers(0, 3))}
        if rq:
            layer["requant"] = {"multiplier": rng.integers(1, 4, size=cout),
                                "shift": rng.integers(1, 6, size=cout), "lo": 0,
                                "hi": (1 << a_bits) - 1, "out_type": act}
        return layer

    c = in_shape[2]
    layers = []
    if stem:
        layers.append(conv("stem", c, stem))
        c = stem
    body = [conv(f"res_conv{k}", c, c, rq=k < convs - 1) for k in range(convs)]
    layers.append({"op": "residual", "name": "res", "body": body,
                   "requant": {"multiplier": rng.integers(1, 4, size=c),
                               "shift": rng.integers(2, 8, size=c), "lo": 0,
                               "hi": (1 << a_bits) - 1, "out_type": act}})
    layers.append({"op": "flatten", "name": "flat"})
    n_in = int(np.prod(in_shape[:2])) * c
    wd = rng.integers(-wmax, wmax + 1, size=(n_out, n_in))
    wd[rng.random(wd.shape) < zero_frac] = 0
    layers.append({"op": "dense", "name": "fc", "weight": wd,
                   "bias": rng.integers(-4 * wmax, 4 * wmax + 1, size=n_out)})
    return chain_graph(IntType(False, in_bits, int(rng.integers(0, 5))), in_shape, layers,
                       meta={"name": f"random_residual_cnn_{seed}"})
