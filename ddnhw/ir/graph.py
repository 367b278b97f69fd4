"""The IR graph: tensors with exact integer types, and nodes in topological order.

Images are NHWC: an image tensor has shape ``(H, W, C)`` (the batch axis is implicit); a
sequence tensor ``(T, I)`` (``T`` steps of ``I`` features). Every node has one output tensor.
The ops, their attributes and exact semantics are defined once each in :mod:`ddnhw.ir.ops`
(one module per op, registered in ``ddnhw.ir.ops.OPS``); :meth:`Graph.check` asks each node's
op to check it. Every node may carry ``hw``: a JSON dict of hardware annotations (saved with
the model; op checks and the golden model ignore it).

A model file is one ``.npz``: the key ``__graph__`` holds the JSON structure, and each array
attribute is stored under ``<node name>/<attr>``.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ddnhw.atomic import atomic_open

from .errors import IRError
from .ops import op_def
from .ops.base import HW_ATTR
from .types import IntType

FORMAT = "ddnhw-ir"
VERSION = 1


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
        """Check structure, every node's attributes (its op's check) and that every node's
        output type holds its worst-case range; returns the graph."""
        known = set(self.inputs)
        for name in self.inputs + self.outputs:
            if name not in self.tensors:
                raise IRError(f"graph input/output {name!r} has no tensor")
        for n in self.nodes:
            op = op_def(n)
            if len(n.inputs) != op.arity or len(n.outputs) != 1:
                raise IRError(f"node {n.name!r}: {n.op} takes {op.arity} input(s) and 1 output, "
                              f"has inputs {n.inputs} and outputs {n.outputs}")
            hw = n.attrs.get(HW_ATTR)
            if hw is not None and not isinstance(hw, dict):
                raise IRError(f"node {n.name!r}: attribute {HW_ATTR!r} (hardware annotations) "
                              f"must be a dict, not {type(hw).__name__}")
            for t in n.inputs:
                if t not in known:
                    raise IRError(f"node {n.name!r}: input {t!r} is not produced before it")
            for t in n.outputs:
                if t not in self.tensors:
                    raise IRError(f"node {n.name!r}: output {t!r} has no tensor")
                known.add(t)
            try:
                lo, hi = op.check(self, n)
            except IRError:
                raise
            except FIELD_ERRORS as e:   # an attribute of the wrong kind, e.g. from a damaged file
                raise IRError(f"node {n.name!r} ({n.op}): invalid attributes: "
                              f"{type(e).__name__}: {_short(str(e), 160)}") from None
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
            scal = {k: _json_value(v, n, k) for k, v in n.attrs.items()
                    if not isinstance(v, np.ndarray)}
            arrs = sorted(k for k, v in n.attrs.items() if isinstance(v, np.ndarray))
            nodes.append({"name": n.name, "op": n.op, "inputs": n.inputs, "outputs": n.outputs,
                          "attrs": scal, "arrays": arrs})
        return {"format": FORMAT, "version": VERSION, "meta": self.meta,
                "inputs": self.inputs, "outputs": self.outputs,
                "tensors": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype.to_json()}
                            for t in self.tensors.values()],
                "nodes": nodes}


def _json_value(v, node, key):
    """A scalar attribute as plain JSON (NumPy scalars to Python, tuples to lists, dicts with
    string keys, recursively); anything else raises :class:`IRError` naming node and key."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_json_value(e, node, key) for e in v]
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return {k: _json_value(e, node, key) for k, e in v.items()}
    raise IRError(f"node {node.name!r}: attribute {key!r} holds {type(v).__name__}, which a "
                  f"model file cannot store (JSON scalars, lists, dicts, or integer arrays)")


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


MODEL_FILE = ("a ddnhw model file is the .npz archive that `ddnhw train` or `ddnhw generate` "
              "writes")
# what a defect in a model file's fields can raise while it is read or checked
FIELD_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
                ZeroDivisionError, RecursionError, MemoryError, json.JSONDecodeError)


def load_graph(path) -> Graph:
    """Read and check a model file; any defect raises :class:`IRError` naming the file and,
    for a malformed structure, the field (``tensors[1].dtype.bits``, ``nodes[0].attrs``...)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise IRError(f"{path}: model file does not exist")
    if not zipfile.is_zipfile(path):
        raise IRError(f"{path}: not a ddnhw model file: not a .npz (zip) archive; {MODEL_FILE}")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {}
            for k in z.files:
                try:
                    files[k] = z[k]
                except ValueError as e:
                    why = ("holds Python objects (pickled data), which a model file never has"
                           if "pickle" in str(e) else str(e))
                    raise IRError(f"{path}: not a ddnhw model file: array {k!r} {why}") from None
    except IRError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, NotImplementedError,
            RuntimeError, MemoryError) as e:
        raise IRError(f"{path}: not a ddnhw model file (damaged .npz: {type(e).__name__}: "
                      f"{e}); {MODEL_FILE}") from None
    if "__graph__" not in files:
        raise IRError(f"{path}: not a ddnhw model file (no __graph__ entry); {MODEL_FILE}")
    where = "__graph__"
    try:
        js = json.loads(str(files["__graph__"]))
        if not isinstance(js, dict):
            raise IRError(f"{path}: __graph__ must be a JSON object, not {type(js).__name__}")
        if js.get("format") != FORMAT:
            raise IRError(f"{path}: format is {js.get('format')!r}, expected {FORMAT!r}")
        if js.get("version") != VERSION:
            raise IRError(f"{path}: IR version {js.get('version')!r} is not supported "
                          f"(expected {VERSION})")
        where = "meta"
        meta = js.get("meta", {})
        if not isinstance(meta, dict):
            raise TypeError(f"must be an object, not {type(meta).__name__}")
        g = Graph(meta=meta)
        for key in ("inputs", "outputs"):
            where = key
            v = js[key]
            if not isinstance(v, list) or not v or not all(isinstance(e, str) for e in v):
                raise TypeError(f"must be a list of tensor names, not {_short(v)}")
            setattr(g, key, list(v))
        where = "tensors"
        if not isinstance(js["tensors"], list):
            raise TypeError("must be a list")
        for i, t in enumerate(js["tensors"]):
            where = f"tensors[{i}]"
            _require(t, {"name": str, "shape": list, "dtype": dict})
            where = f"tensors[{i}].shape"
            if not all(_is_int(d) and 1 <= d <= 2**24 for d in t["shape"]) or \
                    len(t["shape"]) > 4:
                raise ValueError(f"must be 0 to 4 sizes from 1 to {2**24}, not "
                                 f"{_short(t['shape'])}")
            where = f"tensors[{i}].dtype"
            _require(t["dtype"], {"signed": bool, "bits": int})
            if not _is_int(t["dtype"].get("frac", 0)) or abs(t["dtype"].get("frac", 0)) > 4096:
                raise ValueError(f"frac must be an integer in -4096..4096, not "
                                 f"{_short(t['dtype'].get('frac'))}")
            g.add_tensor(t["name"], t["shape"], IntType.from_json(t["dtype"]))
        where = "nodes"
        if not isinstance(js["nodes"], list):
            raise TypeError("must be a list")
        for i, n in enumerate(js["nodes"]):
            where = f"nodes[{i}]"
            _require(n, {"name": str, "op": str, "inputs": list, "outputs": list})
            for key in ("inputs", "outputs"):
                if not all(isinstance(e, str) for e in n[key]):
                    raise TypeError(f"{key!r} must be a list of tensor names, not "
                                    f"{_short(n[key])}")
            where = f"nodes[{i}] ({n['name']!r}).attrs"
            attrs = n.get("attrs", {})
            if not isinstance(attrs, dict):
                raise TypeError(f"must be an object, not {type(attrs).__name__}")
            attrs = dict(attrs)
            where = f"nodes[{i}] ({n['name']!r}).arrays"
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
    except IRError as e:
        msg = str(e)
        raise IRError(msg if msg.startswith(path) else f"{path}: {msg}") from None
    except FIELD_ERRORS as e:
        raise IRError(f"{path}: malformed model file: field {where}: {type(e).__name__}: "
                      f"{_short(str(e), 160)}") from None
    try:
        g.check()
    except IRError as e:
        raise IRError(f"{path}: {e}") from None
    except FIELD_ERRORS as e:
        raise IRError(f"{path}: malformed model file: {type(e).__name__}: "
                      f"{_short(str(e), 160)}") from None
    return g


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _short(v, n=60) -> str:
    text = v if isinstance(v, str) else repr(v)
    return text if len(text) <= n else text[:n - 3] + "..."


def _require(obj, fields) -> None:
    """``obj`` is a dict with these fields of these types (ValueError/TypeError naming them)."""
    if not isinstance(obj, dict):
        raise TypeError(f"must be an object, not {type(obj).__name__}")
    for k, t in fields.items():
        if k not in obj:
            raise KeyError(k)
        v = obj[k]
        ok = _is_int(v) if t is int else isinstance(v, t)
        if not ok:
            raise TypeError(f"{k!r} must be {t.__name__}, not {_short(v)}")
