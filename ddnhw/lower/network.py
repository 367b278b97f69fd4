"""Network top: the blocks of a graph (a chain, or a DAG with residual connections) wired by
streams, its manifest entries, and deterministic Verilog + manifest generation."""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring

from ddnhw.atomic import write_text
from ddnhw.hw import ForkSpec, StreamFIFOSpec
from ddnhw.hw import int_shape
import ddnhw.hw.dense_rtl as dense_rtl
from ddnhw.hw.protocol import BlockSpec, ChainModel, SpecComponent, cost_features
from ddnhw.passes.base import block_outputs, fused_into, hw_of, run_passes
from .estimate import OPTIONAL_RESOURCES, RESOURCES, estimate_block
from .options import LowerOptions
from .registry import BlockCache, lowering, recurrent
from .residual import branch_lead, residual_branches
from .stream import stream_flatten
from .timing import chain_latency_ii

__all__ = ["Network", "NetworkSpec", "build_network", "plan_network", "generate",
           "graph_sha256", "network_estimate", "layer_entry"]


def graph_sha256(graph, hw=True) -> str:
    """Hash of the graph's structure, types and every array attribute (canonical order).
    ``hw=False``: without the nodes' ``hw`` annotations (how the graph is built, not what it
    computes), so a model and the same model with a folding written into it hash the same."""
    h = hashlib.sha256()
    js = graph.to_json()
    if not hw:
        for n in js["nodes"]:
            n["attrs"].pop("hw", None)
    h.update(json.dumps(js, sort_keys=True).encode())
    for n in graph.nodes:
        for k in sorted(n.attrs):
            v = n.attrs[k]
            if isinstance(v, np.ndarray):
                a = np.ascontiguousarray(v, dtype="<i8")
                h.update(f"{n.name}/{k}{a.shape}".encode())
                h.update(a.tobytes())
    return h.hexdigest()


def layer_entry(graph, node, block, family, **extra) -> dict:
    """The manifest entry of ``node`` built as ``block``: ``name``, ``op``, ``block`` (its
    class), ``latency``, ``ii``, ``in_lanes``, ``out_lanes``, ``estimate``, what the op's
    lowering describes (e.g. ``folded``/``pe``/``simd`` for every layer with a MAC),
    ``fuses`` (the requant node a folded layer computes), then ``extra``."""
    e = {"name": node.name, "op": node.op, "block": block.component.__name__,
         "latency": int(block.latency), "ii": int(block.ii),
         "in_lanes": int(graph.tensors[node.inputs[0]].shape[-1]),
         "out_lanes": int(graph.tensors[node.outputs[0]].shape[-1]),
         "estimate": estimate_block(block, family)}
    describe = lowering(node.op).describe
    if describe is not None:
        e.update(describe(graph, node, block))
    if hw_of(node).get("fuse_requant") is not None:
        e["fuses"] = hw_of(node)["fuse_requant"]
    e.update(extra)
    return e


def _fused_entry(graph, node, host_name, host) -> dict:
    """The entry of a requant node computed inside the folded block ``host``."""
    return {"name": node.name, "op": node.op, "block": host.component.__name__,
            "fused_into": host_name, "latency": 0, "ii": int(host.ii),
            "in_lanes": int(graph.tensors[node.inputs[0]].shape[-1]),
            "out_lanes": int(graph.tensors[node.outputs[0]].shape[-1]),
            "estimate": dict.fromkeys(RESOURCES, 0)}


def _aux_entry(name, op, block, lanes, family, **extra) -> dict:
    """The entry of a block no node has (a fork or a FIFO)."""
    return {"name": name, "op": op, "block": block.component.__name__, **extra,
            "latency": int(block.latency), "ii": int(block.ii), "in_lanes": int(lanes),
            "out_lanes": int(lanes), "estimate": estimate_block(block, family)}


def _check_io(graph):
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"graph must have one input and one output, has inputs "
                         f"{graph.inputs} and outputs {graph.outputs}")
    if not graph.nodes:
        raise ValueError("graph has no nodes")
    seq_out = any(recurrent(n.op) and n.outputs == [graph.outputs[0]] for n in graph.nodes)
    for t in (graph.input, graph.output):   # an image input streams one pixel per beat,
        if len(t.shape) != 1 and not (t is graph.input and len(t.shape) in (2, 3)) \
                and not (t is graph.output and len(t.shape) == 2 and seq_out):
            raise ValueError(f"tensor {t.name!r}: only 1-D tensors (and an (H, W, C) image "
                             f"or (T, I) sequence input, or a (T, H) rnn/gru output) "
                             f"supported, shape {t.shape}")  # a sequence one step per beat
    known = set(graph.inputs)
    for n in graph.nodes:
        for t in n.inputs:
            if t not in known:
                raise ValueError(f"node {n.name!r}: input {t!r} is not produced before it")
        known.update(n.outputs)
    if graph.outputs[0] not in known:
        raise ValueError(f"graph output {graph.outputs[0]!r} is never produced")
    cons = {t: 0 for t in graph.tensors}
    for n in graph.nodes:
        if len(n.outputs) != 1:
            raise ValueError(f"node {n.name!r}: a block has one output, node has {n.outputs}")
        for t in n.inputs:
            cons[t] += 1
    for n in graph.nodes:
        if not cons[n.outputs[0]] and n.outputs[0] != graph.outputs[0]:
            raise ValueError(f"node {n.name!r}: its output {n.outputs[0]!r} is neither read "
                             f"nor the graph output")


class NetworkSpec(BlockSpec):
    """The plan of a :class:`Network` (the block protocol, :mod:`ddnhw.hw.protocol`): every
    attribute the network documents, with its blocks as specs, known without creating any
    component; :meth:`build` is the :class:`Network`. Arguments: as :class:`Network`."""

    def __init__(self, graph, options=None, **kw):
        self.options = opts = LowerOptions.of(options, **kw)
        _check_io(graph)
        self.graph = graph
        cache = BlockCache(opts)
        # imported here: ddnhw.passes imports this package's registry (one direction at load)
        from ddnhw.passes.pipeline import lowering_passes
        g, _ = run_passes(graph, lowering_passes(opts, cache))
        self.annotated = g
        self._assemble(g, cache)
        ti, to = g.input, g.output
        self.in_shape = data.ArrayLayout(int_shape(ti.dtype), ti.shape[-1])
        self.out_shape = data.ArrayLayout(int_shape(to.dtype), to.shape[-1])

    def _assemble(self, g, cache):
        branches = residual_branches(g)
        fused = fused_into(g)
        streamed = stream_flatten(g)     # flattens their dense layer takes pixel by pixel
        family = self.options.family
        self.blocks_by_node = {n.name: cache(g, n) for n in g.nodes
                               if n.name not in fused and n.name not in streamed}
        port = {g.inputs[0]: ("", "i")}       # tensor -> the stream (block, port) carrying it
        fork_of = {b["fork"]: b for b in branches}
        skip_of = {b["add"].name: b for b in branches}
        order, layers, edges = [], [], []
        forks = {}

        def add_block(name, block, entry, inputs):
            order.append((name, block))
            layers.append(entry)
            edges.extend((src, (name, p)) for src, p in inputs)

        def rate_fifo(host):
            depth = hw_of(g.node(host)).get("fifo_after")
            if depth:
                b = self.blocks_by_node[host]
                f = StreamFIFOSpec(b.out_shape, depth)
                t = block_outputs(g)[host]
                add_block(f"{host}_fifo", f, _aux_entry(
                    f"{host}_fifo", "fifo", f, g.tensors[t].shape[-1], family, after=host,
                    depth=depth), [((host, "o"), "i")])
                port[t] = (f"{host}_fifo", "o")

        for n in g.nodes:
            if n.name in streamed:    # no block: its input stream goes to the dense block
                layers.append(_fused_entry(g, n, streamed[n.name],
                                           self.blocks_by_node[streamed[n.name]]))
                port[n.outputs[0]] = port[n.inputs[0]]
                continue
            if n.name in fused:
                host = fused[n.name]
                layers.append(_fused_entry(g, n, host, self.blocks_by_node[host]))
                port[n.outputs[0]] = (host, "o")
                rate_fifo(host)
                continue
            b = self.blocks_by_node[n.name]
            inputs = []
            for k, t in enumerate(n.inputs):
                dst = "i" if len(n.inputs) == 1 else f"i{k}"
                if t not in fork_of:
                    inputs.append((port[t], dst))
                    continue
                br = fork_of[t]
                fname = f"{port[t][0] or 'input'}_fork"
                if fname not in forks:
                    shape = (self.blocks_by_node[port[t][0]].out_shape if port[t][0] else
                             data.ArrayLayout(int_shape(g.tensors[t].dtype),
                                              g.tensors[t].shape[-1]))
                    forks[fname] = ForkSpec(shape, 2)
                    add_block(fname, forks[fname], _aux_entry(
                        fname, "fork", forks[fname], g.tensors[t].shape[-1], family,
                        after=port[t][0] or "input", tensor=t,
                        consumers=[br["main"][0].name, br["add"].name]), [(port[t], "i")])
                if n is not br["add"]:
                    inputs.append(((fname, "o0"), dst))
                    continue
                depth = hw_of(n).get("skip_fifo", 0)
                if not depth:
                    inputs.append(((fname, "o1"), dst))
                    continue
                main = [self.blocks_by_node[m.name] for m in br["main"] if m.name not in fused]
                f = StreamFIFOSpec(forks[fname].out_shape[1], depth)
                add_block(f"{n.name}_skip", f, _aux_entry(
                    f"{n.name}_skip", "fifo", f, g.tensors[t].shape[-1], family, after=fname,
                    depth=depth, lead=branch_lead(main)), [((fname, "o1"), "i")])
                inputs.append(((f"{n.name}_skip", "o"), dst))
            extra = {"skip_input": skip_of[n.name]["skip"]} if n.name in skip_of else {}
            add_block(n.name, b, layer_entry(g, n, b, family, **extra), inputs)
            port[n.outputs[0]] = (n.name, "o")
            if not hw_of(n).get("fuse_requant"):
                rate_fifo(n.name)
        edges.append((port[g.outputs[0]], ("", "o")))
        self.names, self.blocks = [k for k, _ in order], [b for _, b in order]
        self.edges, self.layers = edges, layers
        # a block whose weights are loaded after reset (SPRAM): the network's ``w`` stream
        loads = [(k, b) for k, b in order if getattr(b, "load_shape", None) is not None]
        if len(loads) > 1:
            raise ValueError(f"only one block may load its weights, not {[k for k, _ in loads]}")
        self.load = loads[0] if loads else None
        self.load_shape = loads[0][1].load_shape if loads else None
        self.dag = bool(branches)
        self.latency, self.ii = self._timing(g)

    def _timing(self, graph):
        """``(latency, ii)``: see :class:`Network`."""
        if not self.dag:
            # first input beat to first output beat: stepped through the blocks' handshake
            # control (a flatten waits for a whole feature map, a folded conv stalls its
            # input) and cycles per input in the steady state of back-to-back inputs
            return chain_latency_ii(self.blocks, int(np.prod(graph.input.shape[:-1])),
                                    beats_per_output=int(np.prod(graph.output.shape[:-1])))
        by_name = dict(zip(self.names, self.blocks))
        done = {"": 0}                   # block -> cycles from the input to its output
        for (a, _), (b, _) in self.edges:
            if b:
                done[b] = max(done.get(b, 0), done[a] + int(by_name[b].latency))
        last = self.edges[-1][0][0]
        return int(done[last]), max(int(b.ii) for b in self.blocks)

    def ports(self):
        ports = super().ports()
        if self.load_shape is not None:
            ports["w"] = wiring.In(stream.Signature(self.load_shape))
        return ports

    def cycle_model(self):
        """The blocks' models in a row (a chain); a network with residual adds has none."""
        if self.dag:
            raise NotImplementedError("a network with residual adds has no cycle model")
        return ChainModel(b.cycle_model() for b in self.blocks)

    def features(self):
        """Nothing of its own: the sum of its blocks' (``parts``)."""
        return cost_features(parts=self.blocks)


class Network(SpecComponent, spec=NetworkSpec):
    """The blocks lowered from a graph's nodes, wired by streams: a chain, or a DAG where the
    graph has residual connections (:mod:`ddnhw.lower.residual`).

    Ports ``i``/``o`` are streams of ``ArrayLayout(elem, lanes)`` with lanes = the tensor's
    last dimension and elem the tensor's :class:`IntType` shape (an image or sequence input
    streams one pixel or step per beat).

    ``options``: a :class:`~ddnhw.lower.options.LowerOptions`, or its fields as keywords (an
    unknown keyword raises naming it). The graph's hardware decisions come from its nodes'
    ``hw`` annotations (:mod:`ddnhw.passes`: folding, requant fusion, XNOR, FIFO depths);
    before building, the network runs :func:`~ddnhw.passes.pipeline.lowering_passes` for
    ``options`` to a fixed point (the explicit ``folding``/``gate_lanes``/``skip_fifos``/
    ``fifos`` options override the annotations). ``annotated``: that annotated graph.

    Blocks: one per node (a requant node fused into the folded layer before it has none), a
    :class:`~ddnhw.hw.StreamFIFO` ``<node>_fifo`` after a node with ``hw.fifo_after``, and per
    residual connection a :class:`~ddnhw.hw.join.Fork` ``<producer>_fork`` (``input_fork`` for
    the graph input) whose ``o0`` feeds the main branch and ``o1`` the add, through the skip
    FIFO ``<add>_skip`` of depth ``hw.skip_fifo`` (none at depth 0). ``blocks``/``names`` in
    that order; ``blocks_by_node``: ``{node name: block}``.

    ``latency``: cycles from an input's first beat to its output's first beat with the input
    always valid and the output always ready: for a chain stepped through the blocks' cycle
    models (:func:`~ddnhw.lower.timing.chain_timing`), for a DAG the longest path. ``ii``:
    cycles per input in the steady state (the same way; for a DAG the largest block II).
    ``layers``: the manifest entries, one per node
    (:func:`layer_entry`; a fused requant's has ``fused_into``, an add's ``skip_input``), fork
    (``op`` ``"fork"``, ``after``, ``tensor``, ``consumers``) and FIFO (``op`` ``"fifo"``,
    ``after``, ``depth``; a skip FIFO also ``lead``, :func:`~ddnhw.lower.residual.branch_lead`)
    in graph order, a FIFO after its producer's entries.

    The plan (every attribute but the components ``blocks`` and ``blocks_by_node``) is
    ``spec``, a :class:`NetworkSpec` (:func:`plan_network`); the blocks' components are built
    with the network.
    """

    def _setup(self):
        spec = self.spec
        built = {id(b): b.build() for b in spec.blocks}     # the components of the plan
        object.__setattr__(self, "blocks", [built[id(b)] for b in spec.blocks])
        object.__setattr__(self, "blocks_by_node", {k: built[id(v)] for k, v in
                                                    spec.blocks_by_node.items()})
        super()._setup()

    def elaborate(self, platform):
        m = Module()
        by_name = {}
        for name, b in zip(self.names, self.blocks):
            m.submodules[name] = by_name[name] = b

        def get(name, attr):
            return wiring.flipped(getattr(self, attr)) if name == "" else \
                getattr(by_name[name], attr)

        for (a, pa), (b, pb) in self.edges:
            wiring.connect(m, get(a, pa), get(b, pb))
        if self.load is not None:
            wiring.connect(m, wiring.flipped(self.w), by_name[self.load[0]].w)
        return m


def build_network(graph, options=None, **kw) -> Network:
    """The :class:`Network` of ``graph``: ``options`` a
    :class:`~ddnhw.lower.options.LowerOptions` and/or its fields as keywords (an unknown
    keyword raises :class:`~ddnhw.lower.options.LowerOptionError` naming it)."""
    return Network(graph, options, **kw)


def plan_network(graph, options=None, **kw) -> NetworkSpec:
    """The :class:`NetworkSpec` of :func:`build_network` (layers, latency, II, estimates)
    without creating any component."""
    return NetworkSpec(graph, options, **kw)


def network_estimate(graph, options=None, **kw) -> dict:
    """``{"luts", "ffs", "dsps", "brams"}``: the summed layer estimates of the graph's network
    (:func:`plan_network`: nothing is built)."""
    net = plan_network(graph, options, **kw)
    return _sum_estimates(net.layers)


def _sum_estimates(layers) -> dict:
    """The layers' estimates summed: every resource of RESOURCES, and SPRAM where used."""
    keys = RESOURCES + tuple(k for k in OPTIONAL_RESOURCES
                             if any(layer["estimate"].get(k) for layer in layers))
    return {k: sum(layer["estimate"].get(k, 0) for layer in layers) for k in keys}


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


def generate(graph, outdir, name="ddnhw_top", options=None, **kw) -> dict:
    """Write ``<outdir>/<name>.v`` and ``<outdir>/manifest.json``; return the manifest.

    ``options``/``kw``: as :func:`build_network`; the manifest's ``options`` records the
    keywords given (and every field of ``options`` that differs from the default).
    ``graph_sha256`` hashes what ``graph`` computes (not its ``hw`` annotations: the layers
    say how it is built), as the board's IDENT does. Same
    graph and options -> byte-identical files. Both files are written atomically.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"top name must be a Verilog identifier, not {name!r}")
    top = build_network(graph, options, **kw)
    given = dict(kw)
    if options is not None:
        default = LowerOptions()
        given = {**{f: getattr(options, f) for f in LowerOptions.names()
                    if getattr(options, f) != getattr(default, f)}, **given}
    text = dense_rtl.convert(top, name=name, emit_src=False)
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
        "estimate": _sum_estimates(top.layers),
        "options": {k: _jsonable(given[k]) for k in sorted(given)},
        "graph_sha256": graph_sha256(graph, hw=False),
    }
    if top.load is not None:     # weights loaded after reset: the words the w stream sends
        spec = top.load[1]
        manifest["load"] = {"port": "w", "layer": top.load[0], "width": int(spec.load_width),
                            "words": int(spec.load_words), "file": f"{name}_load.hex"}
        hexw = -(-spec.load_width // 4)
        write_text(os.path.join(outdir, f"{name}_load.hex"),
                   "".join(f"{w:0{hexw}x}\n" for w in spec.w_init))
    write_text(os.path.join(outdir, vfile), text)
    write_text(os.path.join(outdir, "manifest.json"),
               json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
