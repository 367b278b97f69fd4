"""Network top (a chain of blocks), deterministic Verilog and manifest generation."""
from __future__ import annotations

import hashlib
import json
import os
from ddnhw.atomic import write_text

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import data, wiring

from ddnhw.hw import StreamFIFOSpec
from ddnhw.hw._types import int_shape
from ddnhw.hw.protocol import BlockSpec, ChainModel, SpecComponent, cost_features
from ddnhw.ir.ops import RECURRENT_OPS
from .estimate import RESOURCES, estimate_block
from .registry import fusions, lower_spec
from .residual import elaborate_residual, has_residuals, setup_residual
from .timing import chain_latency_ii

__all__ = ["Network", "NetworkSpec", "build_network", "plan_network", "generate", "graph_sha256",
           "fifo_depth", "FIFO_MAX_DEPTH"]

# deepest FIFO the schedule asks for: beyond this a burst is absorbed by the producer's stall
# (the throughput is the bottleneck II at any depth); each beat costs a whole vector of bits
FIFO_MAX_DEPTH = 4


def fifo_depth(ii_producer, ii_consumer, max_depth=FIFO_MAX_DEPTH) -> int:
    """Depth of the FIFO between two blocks (0: none) from their initiation intervals.

    A linear chain of blocks that each hold one output vector and stall together runs at the
    largest II with no FIFO at all (no layer waits on anything but the bottleneck), and cannot
    deadlock. A FIFO helps only where the producer is faster (``ii_producer < ii_consumer``):
    it holds the ``ceil(ii_consumer / ii_producer)`` vectors the producer can finish during one
    consumer interval, so a burst at the network's input proceeds at the producer's rate
    instead of the consumer's (capped at ``max_depth``, at least the 2 beats, or 3 for a
    producer of II 1, at which the FIFO itself keeps the producer's rate). A slower producer
    gets none: the consumer would wait for it whatever the depth."""
    if ii_producer >= ii_consumer:
        return 0
    need = -(-ii_consumer // ii_producer)
    return max(3 if ii_producer == 1 else 2, min(max_depth, need))


def graph_sha256(graph) -> str:
    """Hash of the graph's structure, types and every array attribute (canonical order)."""
    h = hashlib.sha256()
    h.update(json.dumps(graph.to_json(), sort_keys=True).encode())
    for n in graph.nodes:
        for k in sorted(n.attrs):
            v = n.attrs[k]
            if isinstance(v, np.ndarray):
                a = np.ascontiguousarray(v, dtype="<i8")
                h.update(f"{n.name}/{k}{a.shape}".encode())
                h.update(a.tobytes())
    return h.hexdigest()


class NetworkSpec(BlockSpec):
    """The plan of a :class:`Network` (the block protocol, :mod:`ddnhw.hw.protocol`): every
    attribute :class:`Network` documents, with the blocks as specs (``blocks``, ``fifos``;
    residual graphs: also ``forks``, ``skips``, ``blocks_by_node``, ``edges``), known without
    creating any component; :meth:`build` is the :class:`Network`."""

    def __init__(self, graph, **options):
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise ValueError(f"graph must have one input and one output, has inputs "
                             f"{graph.inputs} and outputs {graph.outputs}")
        if not graph.nodes:
            raise ValueError("graph has no nodes")
        residual = has_residuals(graph)     # a DAG: see ddnhw.lower.residual
        cur = graph.inputs[0]
        for n in [] if residual else graph.nodes:
            if n.inputs != [cur] or len(n.outputs) != 1:
                raise ValueError(f"node {n.name!r}: only linear chains are supported (expects "
                                 f"input {cur!r}, has {n.inputs})")
            cur = n.outputs[0]
        if cur != graph.outputs[0] and not residual:
            raise ValueError(f"graph output {graph.outputs[0]!r} is not the chain's end {cur!r}")
        recurrent = {n.name for n in graph.nodes if n.op in RECURRENT_OPS}
        seq_out = any(n.op in RECURRENT_OPS and n.outputs == [graph.outputs[0]]
                      for n in graph.nodes)
        for t in (graph.input, graph.output):   # an image input streams one pixel per beat,
            if len(t.shape) != 1 and not (t is graph.input and len(t.shape) in (2, 3)) \
                    and not (t is graph.output and len(t.shape) == 2 and seq_out):
                raise ValueError(f"tensor {t.name!r}: only 1-D tensors (and an (H, W, C) image "
                                 f"or (T, I) sequence input, or a (T, H) rnn/gru output) "
                                 f"supported, shape {t.shape}")  # a sequence one step per beat
        folding = options.get("folding")
        if folding is not None:
            if not isinstance(folding, dict):
                raise TypeError(f"folding must be a dict {{layer: (pe, simd)}}, not {folding!r}")
            dense = {n.name for n in graph.nodes if n.op in ("dense", "conv2d")} | recurrent
            for k, v in folding.items():
                if k not in dense:
                    raise ValueError(f"folding names {k!r}, which is not a dense layer "
                                     f"(have: {', '.join(sorted(dense))})")
                if v is not None and (not isinstance(v, (tuple, list)) or len(v) != 2):
                    raise ValueError(f"folding[{k!r}] must be (pe, simd), not {v!r}")
        lanes = options.get("gate_lanes")
        if lanes is not None:
            if not isinstance(lanes, dict):
                raise TypeError(f"gate_lanes must be a dict {{layer: lanes}}, not {lanes!r}")
            for k in lanes:
                if k not in recurrent:
                    raise ValueError(f"gate_lanes names {k!r}, which is not an rnn/gru layer "
                                     f"(have: {', '.join(sorted(recurrent)) or 'none'})")
        self.graph = graph
        ti, to = graph.input, graph.output
        self.in_shape = data.ArrayLayout(int_shape(ti.dtype), ti.shape[-1])
        self.out_shape = data.ArrayLayout(int_shape(to.dtype), to.shape[-1])
        self.edges = None
        if residual:
            setup_residual(self, graph, **options)
            return
        fused = fusions(graph, **options)
        fused_into = {r.name: d for d, r in fused.items()}
        self.names = [n.name for n in graph.nodes if n.name not in fused_into]
        self.blocks = [lower_spec(graph, n, fused=fused.get(n.name), **options)
                       for n in graph.nodes if n.name not in fused_into]
        by_name = dict(zip(self.names, self.blocks))
        fifos = self._plan_fifos(options.get("fifos", "auto"))
        self.fifos = {}
        for name, depth in fifos.items():
            self.fifos[name] = StreamFIFOSpec(by_name[name].out_shape, depth)
        order = []
        for name, b in zip(self.names, self.blocks):
            order.append((name, b))
            if name in self.fifos:
                order.append((f"{name}_fifo", self.fifos[name]))
        self.names, self.blocks = [n for n, _ in order], [b for _, b in order]
        # first input beat to first output beat: stepped through the blocks' handshake
        # control (a flatten waits for a whole feature map, a folded conv stalls its input)
        # and cycles per input in the steady state of back-to-back inputs
        self.latency, self.ii = chain_latency_ii(
            self.blocks, int(np.prod(graph.input.shape[:-1])),
            beats_per_output=int(np.prod(graph.output.shape[:-1])))
        self.layers = []
        family = options.get("family", "ice40")
        for n in graph.nodes:
            b = by_name.get(n.name)
            if b is None:     # computed inside the folded layer before it
                host = by_name[fused_into[n.name]]
                self.layers.append({
                    "name": n.name, "op": n.op, "block": host.component.__name__,
                    "fused_into": fused_into[n.name], "latency": 0, "ii": int(host.ii),
                    "in_lanes": int(graph.tensors[n.inputs[0]].shape[-1]),
                    "out_lanes": int(graph.tensors[n.outputs[0]].shape[-1]),
                    "estimate": dict.fromkeys(RESOURCES, 0)})
                continue
            self.layers.append({
                "name": n.name, "op": n.op, "block": b.component.__name__,
                "latency": int(b.latency), "ii": int(b.ii),
                "in_lanes": int(graph.tensors[n.inputs[0]].shape[-1]),
                "out_lanes": int(graph.tensors[n.outputs[0]].shape[-1]),
                "estimate": estimate_block(b, family),
            })
            if n.op in ("dense", "conv2d"):
                mac = b.children[-1] if n.op == "conv2d" else b   # a conv: window, then MAC
                self.layers[-1].update({"folded": hasattr(mac, "pe"),
                                        "pe": int(getattr(mac, "pe", mac.n_out)),
                                        "simd": int(getattr(mac, "simd", mac.n_in))})
                if n.name in fused:
                    self.layers[-1]["fuses"] = fused[n.name].name
            if n.op in RECURRENT_OPS:
                e = b.engine
                self.layers[-1].update({"folded": b.fold is not None,
                                        "pe": int(getattr(e, "pe", e.n_out)),
                                        "simd": int(getattr(e, "simd", e.n_in)),
                                        "gate_lanes": b.gate_lanes, "steps": b.steps,
                                        "step_cycles": b.step_cycles})
        layers, self.layers = self.layers, []
        for k, layer in enumerate(layers):   # a FIFO entry after its producer's last entry
            self.layers.append(layer)
            host = layer.get("fused_into", layer["name"])
            nxt = layers[k + 1] if k + 1 < len(layers) else {}
            if host in self.fifos and nxt.get("fused_into") != host:
                f = self.fifos[host]
                self.layers.append({
                    "name": f"{host}_fifo", "op": "fifo", "block": f.component.__name__,
                    "after": host, "depth": f.depth, "latency": f.latency, "ii": f.ii,
                    "in_lanes": layer["out_lanes"], "out_lanes": layer["out_lanes"],
                    "estimate": estimate_block(f, family)})

    def _plan_fifos(self, fifos):
        """``{producer block name: depth}`` for the ``fifos`` option."""
        if fifos == "none":
            return {}
        if fifos == "auto":
            out = {}
            ops = {n.name: n.op for n in self.graph.nodes}
            for (name, a), b in zip(zip(self.names, self.blocks), self.blocks[1:]):
                d = fifo_depth(a.ii, b.ii)
                # none after a flatten: its beat is a whole feature map (a wide register
                # per FIFO word), and it already holds one map while the consumer is busy
                if d and ops.get(name) != "flatten":
                    out[name] = d
            return out
        if not isinstance(fifos, dict):
            raise TypeError(f"fifos must be 'auto', 'none' or {{layer: depth}}, not {fifos!r}")
        for k, v in fifos.items():
            if k not in self.names[:-1]:
                raise ValueError(f"fifos names {k!r}, which is not a block followed by another "
                                 f"(have: {', '.join(self.names[:-1])})")
            if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v == 1:
                raise ValueError(f"fifos[{k!r}] must be 0 or a depth >= 2, not {v!r}")
        return {k: v for k, v in fifos.items() if v}

    def cycle_model(self):
        if self.edges is not None:
            raise NotImplementedError("a network with residual adds has no cycle model")
        return ChainModel(b.cycle_model() for b in self.blocks)

    def features(self):
        """Nothing of its own: the sum of its blocks' (``parts``)."""
        return cost_features(parts=self.blocks)


class Network(SpecComponent, spec=NetworkSpec):
    """A linear chain of blocks lowered from the graph's nodes, in graph order.

    Ports ``i``/``o`` are streams of ``ArrayLayout(elem, lanes)`` with lanes = the tensor's
    shape and elem the tensor's :class:`IntType` shape. ``latency``: cycles from an input's first
    beat to its output's first beat with the input always valid and the output always ready
    (:func:`~ddnhw.lower.timing.chain_timing`; the sum of the layers' latencies for blocks it
    has no model of), ``ii`` the cycles per input in the steady state (the same way; else the
    largest layer II). ``layers`` lists per-layer dicts
    (name, op, block, latency, ii, in_lanes, out_lanes, estimate; dense layers also folded,
    pe, simd).

    ``options``: ``regs_every``, ``dense_style`` (unrolled layers), ``folding`` (``{layer
    name: (pe, simd)}``: those dense layers become :class:`~ddnhw.hw.FoldedDense`),
    ``fuse_requant`` (default True: a folded layer computes the requant node that follows it
    with its PE lanes; that node's layer entry then has ``fused_into``), ``family``
    (``"ice40"``/``"ecp5"``: which calibration the resource estimates use), ``fifos``
    (``"auto"``, the default: a :class:`~ddnhw.hw.StreamFIFO` after every block whose consumer
    is slower, of depth :func:`fifo_depth`, except after a flatten; ``"none"``; or
    ``{producer layer name: depth}``).
    A FIFO's layer entry has ``op`` ``"fifo"``, ``depth``, ``after`` (the producer layer).

    A graph with ``add`` nodes (residual connections) becomes a DAG of blocks instead: a
    :class:`~ddnhw.hw.join.Fork` where a tensor feeds a branch and an add, a skip
    :class:`~ddnhw.hw.StreamFIFO` sized from the branch (``skip_fifos`` option, see
    :mod:`ddnhw.lower.residual`) and an :class:`~ddnhw.hw.join.AlignedAdd`; ``latency`` is
    then the longest path's, and ``layers`` has ``fork`` and skip ``fifo`` entries too.

    The plan (every attribute but the components) is ``spec``, a :class:`NetworkSpec`
    (:func:`plan_network`): ``blocks``, ``fifos``, ``forks``, ``skips``, ``blocks_by_node`` are
    the components built from it.
    """

    def _setup(self):
        spec = self.spec
        built = {id(b): b.build() for b in spec.blocks}
        # the components (the spec holds their specs under the same names)
        object.__setattr__(self, "blocks", [built[id(b)] for b in spec.blocks])
        for name in ("fifos", "forks", "skips", "blocks_by_node"):
            if hasattr(spec, name):
                object.__setattr__(self, name, {k: built[id(v)]
                                                for k, v in getattr(spec, name).items()})
        super()._setup()

    def elaborate(self, platform):
        if self.edges is not None:
            return elaborate_residual(self)
        m = Module()
        for name, b in zip(self.names, self.blocks):
            m.submodules[name] = b
        wiring.connect(m, wiring.flipped(self.i), self.blocks[0].i)
        for a, b in zip(self.blocks, self.blocks[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, self.blocks[-1].o, wiring.flipped(self.o))
        return m


def build_network(graph, **options) -> Network:
    """Lower every node of a linear graph and chain the blocks. ``options``: ``regs_every``,
    ``dense_style``, ``folding`` (passed to the factories), ``family`` (see :class:`Network`)."""
    return Network(graph, **options)


def plan_network(graph, **options) -> NetworkSpec:
    """The :class:`NetworkSpec` of :func:`build_network` (layers, latency, II, estimates)
    without creating any component."""
    return NetworkSpec(graph, **options)


def _write_atomic(path, text):
    write_text(path, text)


def _port(tensor, prefix):
    t = tensor.dtype
    return {"tensor": tensor.name, "lanes": int(tensor.shape[-1]), "bits": int(t.bits),
            "signed": bool(t.signed), "frac": int(t.frac),
            "ports": {"payload": f"{prefix}__payload", "valid": f"{prefix}__valid",
                      "ready": f"{prefix}__ready"},
            **({"shape": list(tensor.shape), "beats": int(np.prod(tensor.shape[:-1]))}
               if len(tensor.shape) > 1 else {})}


def _jsonable(v):
    """Option values as JSON reads them back (tuples -> lists, sorted dict keys)."""
    if isinstance(v, dict):
        return {str(k): _jsonable(v[k]) for k in sorted(v)}
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    return v


def generate(graph, outdir, name="ddnhw_top", **options) -> dict:
    """Write ``<outdir>/<name>.v`` and ``<outdir>/manifest.json``; return the manifest.

    Same graph and options -> byte-identical files. Both files are written atomically.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"top name must be a Verilog identifier, not {name!r}")
    top = build_network(graph, **options)
    text = verilog.convert(top, name=name, emit_src=False)
    os.makedirs(outdir, exist_ok=True)
    vfile = f"{name}.v"
    manifest = {
        "top": name,
        "verilog": vfile,
        "clock": "clk", "reset": "rst",
        "input": _port(graph.input, "i"),
        "output": _port(graph.output, "o"),
        "latency_cycles": int(top.latency),
        "ii_cycles": int(top.ii),
        "layers": top.layers,
        "estimate": {k: sum(l["estimate"].get(k, 0) for l in top.layers) for k in RESOURCES},
        "options": {k: _jsonable(options[k]) for k in sorted(options)},
        "graph_sha256": graph_sha256(graph),
    }
    _write_atomic(os.path.join(outdir, vfile), text)
    _write_atomic(os.path.join(outdir, "manifest.json"),
                  json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
