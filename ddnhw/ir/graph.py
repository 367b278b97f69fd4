"""The IR graph: tensors with exact integer types, and nodes in topological order.

Ops and their attributes (all integer arrays are ``int64``):

``dense``    y[n, o] = bias[o] + sum_i weight[o, i] * x[n, i]
             attrs: ``weight`` (out, in), ``bias`` (out,)
``requant``  y[n, c] = clip(round_shift(x[n, c] * multiplier[c], shift[c]), lo, hi)
             attrs: ``multiplier`` (C,), ``shift`` (C,) >= 0, ``lo``, ``hi``, ``rounding``
             (ReLU is ``lo = 0``; rounding is defined once in ``ddnhw.golden.fixedpoint``;
             on an image tensor the channel is the last axis)

Images are NHWC: an image tensor has shape ``(H, W, C)`` (the batch axis is implicit).

``conv2d``   y[n, oy, ox, o] = bias[o] + sum_{ky, kx, c} weight[o, ky, kx, c]
                               * xp[n, oy*stride + ky, ox*stride + kx, g(o)*Cg + c]
             where ``xp`` is ``x`` zero-padded by ``padding`` on each side of H and W (integer
             zero), ``Cg = C / groups`` and ``g(o) = o // (O / groups)``; dilation is 1.
             attrs: ``weight`` (O, KH, KW, Cg), ``bias`` (O,), ``stride``, ``padding``,
             ``groups`` (1: dense; C: depthwise)
``maxpool2d`` y[n, oy, ox, c] = max over the ``KH`` x ``KW`` window at
             (oy*stride, ox*stride) (no padding); attrs: ``kernel`` (an int: square, or a
             pair ``[KH, KW]``; ``[1, k]`` pools a one-row image, a 1-D signal), ``stride``
``avgpool2d`` y[n, oy, ox, c] = round_shift(sum of the window, log2(KH*KW)): integer
             mean, rounded half up; ``KH*KW`` must be a power of two; attrs: ``kernel``,
             ``stride`` (as maxpool2d). Output type = input type.
``flatten``  y[n, :] = x[n].reshape(-1) (row-major: H, W, C order); no attrs
``add``      y = (x0 << shift0) + (x1 << shift1): elementwise sum of two tensors of the same
             shape (a residual connection); attrs ``shift0``, ``shift1`` (ints >= 0) align the
             binary points: ``frac(y) == frac(x0) + shift0 == frac(x1) + shift1`` and one shift
             is 0 (``frac(y)`` is the larger input frac). Exact: no rounding, no clipping; the
             output type must hold the sum's whole range. Inputs ``[x0, x1]`` in that order.

``rnn``, ``gru`` recurrent layers over a sequence tensor ``(T, I)`` (T beats of I lanes); the
             hidden state lives in the layer; lookup-table sigmoid/tanh. Exact semantics and
             attributes: :mod:`ddnhw.ir.recurrent`.

A model file is one ``.npz``: the key ``__graph__`` holds the JSON structure, and each array
attribute is stored under ``<node name>/<attr>``.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .types import IntType
from ddnhw import DdnhwError
from ddnhw.atomic import atomic_open

FORMAT = "ddnhw-ir"
VERSION = 1
OPS = ("dense", "requant", "conv2d", "maxpool2d", "avgpool2d", "flatten", "rnn", "gru", "add")
# number of input tensors per op (every op has one output)
ARITY = {"add": 2}
ROUNDING_MODES = ("half_up",)


class IRError(DdnhwError, ValueError):
    """Malformed graph or model file; the message names the node, tensor or file."""


@dataclass
class Tensor:
    name: str
    shape: tuple
    dtype: IntType


@dataclass
class Node:
    name: str
    op: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)


@dataclass
class Graph:
    tensors: dict = field(default_factory=dict)
    nodes: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    # -- construction ------------------------------------------------------------------------
    def add_tensor(self, name, shape, dtype: IntType) -> Tensor:
        if name in self.tensors:
            raise IRError(f"tensor {name!r} defined twice")
        t = Tensor(name, tuple(int(s) for s in shape), dtype)
        self.tensors[name] = t
        return t

    def add_node(self, name, op, inputs, outputs, **attrs) -> Node:
        if any(n.name == name for n in self.nodes):
            raise IRError(f"node {name!r} defined twice")
        node = Node(name, op, list(inputs), list(outputs), dict(attrs))
        self.nodes.append(node)
        return node

    def node(self, name) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def producer(self, tensor):
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    @property
    def input(self) -> Tensor:
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> Tensor:
        return self.tensors[self.outputs[0]]

    # -- checking ----------------------------------------------------------------------------
    def check(self):
        """Check structure and that every node's output type holds its worst-case range."""
        from .ops import infer_range  # local: ops imports graph for IRError

        known = set(self.inputs)
        for name in self.inputs + self.outputs:
            if name not in self.tensors:
                raise IRError(f"graph input/output {name!r} has no tensor")
        for n in self.nodes:
            if n.op not in OPS:
                raise IRError(f"node {n.name!r}: unsupported op {n.op!r} (supported: {', '.join(OPS)})")
            arity = ARITY.get(n.op, 1)
            if len(n.inputs) != arity or len(n.outputs) != 1:
                raise IRError(f"node {n.name!r}: {n.op} takes {arity} input(s) and 1 output, has "
                              f"inputs {n.inputs} and outputs {n.outputs}")
            for t in n.inputs:
                if t not in known:
                    raise IRError(f"node {n.name!r}: input {t!r} is not produced before it")
            for t in n.outputs:
                if t not in self.tensors:
                    raise IRError(f"node {n.name!r}: output {t!r} has no tensor")
                known.add(t)
            lo, hi = infer_range(self, n)
            out = self.tensors[n.outputs[0]]
            if not out.dtype.contains(int(np.min(lo)), int(np.max(hi))):
                raise IRError(f"node {n.name!r}: output type {out.dtype} cannot hold its range "
                              f"[{int(np.min(lo))}, {int(np.max(hi))}]")
        for t in self.outputs:
            if t not in known:
                raise IRError(f"graph output {t!r} is never produced")
        return self

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_json(self) -> dict:
        nodes = []
        for n in self.nodes:
            scal = {k: v for k, v in n.attrs.items() if not isinstance(v, np.ndarray)}
            arrs = sorted(k for k, v in n.attrs.items() if isinstance(v, np.ndarray))
            nodes.append({"name": n.name, "op": n.op, "inputs": n.inputs, "outputs": n.outputs,
                          "attrs": scal, "arrays": arrs})
        return {"format": FORMAT, "version": VERSION, "meta": self.meta,
                "inputs": self.inputs, "outputs": self.outputs,
                "tensors": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype.to_json()}
                            for t in self.tensors.values()],
                "nodes": nodes}


def save_graph(graph: Graph, path) -> None:
    """Write the graph atomically (temporary file, then rename)."""
    path = os.fspath(path)
    arrays = {"__graph__": np.array(json.dumps(graph.to_json(), sort_keys=True))}
    for n in graph.nodes:
        for k, v in n.attrs.items():
            if isinstance(v, np.ndarray):
                arrays[f"{n.name}/{k}"] = np.asarray(v, dtype=np.int64)
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def load_graph(path) -> Graph:
    """Read and check a model file; any defect raises :class:`IRError` naming the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise IRError(f"{path}: model file does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise IRError(f"{path}: not a ddnhw model file (.npz): {e}") from None
    if "__graph__" not in files:
        raise IRError(f"{path}: not a ddnhw model file (no __graph__ entry)")
    try:
        js = json.loads(str(files["__graph__"]))
        if js.get("format") != FORMAT:
            raise IRError(f"{path}: format is {js.get('format')!r}, expected {FORMAT!r}")
        if js.get("version") != VERSION:
            raise IRError(f"{path}: IR version {js.get('version')!r} is not supported "
                          f"(expected {VERSION})")
        g = Graph(meta=js.get("meta", {}), inputs=list(js["inputs"]), outputs=list(js["outputs"]))
        for t in js["tensors"]:
            g.add_tensor(t["name"], t["shape"], IntType.from_json(t["dtype"]))
        for n in js["nodes"]:
            attrs = dict(n.get("attrs", {}))
            for k in n.get("arrays", []):
                key = f"{n['name']}/{k}"
                if key not in files:
                    raise IRError(f"{path}: node {n['name']!r} lacks array {k!r}")
                arr = files[key]
                if arr.dtype.kind not in "iu":
                    raise IRError(f"{path}: node {n['name']!r} array {k!r} is {arr.dtype}, "
                                  f"not integer")
                attrs[k] = arr.astype(np.int64)
            g.add_node(n["name"], n["op"], n["inputs"], n["outputs"], **attrs)
    except IRError:
        raise
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise IRError(f"{path}: malformed model file: {type(e).__name__}: {e}") from None
    try:
        g.check()
    except IRError as e:
        raise IRError(f"{path}: {e}") from None
    return g
