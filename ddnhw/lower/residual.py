"""Residual connections in the network top: a tensor that feeds a branch of blocks and, through
a skip FIFO, the ``add`` node at the branch's end (a fork that rejoins).

Supported topology: every ``add`` node has one input that is a forked tensor ``t`` (the skip,
an identity path) and one produced by a chain of single-input nodes starting at ``t`` (the main
branch); ``t`` feeds exactly that chain and that add. Everything else is a linear chain.

Skip FIFO depth. The :class:`~ddnhw.hw.join.Fork` passes an input beat on once both branches
took it, and the add consumes one beat of each branch together, so while the main branch
produces nothing the skip FIFO fills with the beats the main branch absorbed. Let ``need(o)``
be the number of input beats the main branch must have taken before it can emit its ``o``-th
output beat (``o = 1, 2, ...`` within an image; composed exactly from its blocks: a sliding
window with kernel ``KH``, stride ``S``, padding ``P`` over ``H x W`` pixels emits output row
``oy`` once ``min(oy * S - P + KH, H)`` whole input rows are in; per-beat blocks need beat
``o`` for output ``o``). Then the skip FIFO of depth ``D`` never deadlocks the branch iff

    D >= lead = max_o (need(o) - o)

(when it holds ``D`` beats and the main branch has taken ``j + D + 1`` beats after emitting
``j`` outputs, output ``j + 1`` needs at most that many). ``lead`` is the beats the branch
absorbs before its first output beat less one, or more where a later row needs more. The depth
chosen by default is ``lead + in flight`` (``in flight``: the pipeline registers of the
branch's per-beat blocks, the beats it buffers while running at full rate), at least 2 (the
smallest :class:`~ddnhw.hw.StreamFIFO`); ``skip_fifos={add node: depth}`` overrides it (0: no
FIFO, valid when ``lead == 0``).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import data, wiring

from ddnhw.hw import StreamFIFOSpec
from ddnhw.hw._types import int_shape
from ddnhw.hw.join import ForkSpec
from ddnhw.hw.protocol import spec_of
from ddnhw.hw.window import ChainSpec, CollectorSpec, SlidingWindowSpec
from .estimate import RESOURCES, estimate_block
from .registry import fusions, lower_spec

__all__ = ["has_residuals", "residual_branches", "branch_need", "branch_lead",
           "skip_fifo_depth", "setup_residual", "elaborate_residual"]


def has_residuals(graph) -> bool:
    return any(n.op == "add" for n in graph.nodes)


def _consumers(graph):
    cons = {t: [] for t in graph.tensors}
    for n in graph.nodes:
        for k, t in enumerate(n.inputs):
            cons[t].append((n, k))
    return cons


def residual_branches(graph):
    """``[{"add", "skip" (input index), "fork" (tensor), "main" (node list)}]`` per add node;
    ``ValueError`` naming the node for any other topology."""
    cons = _consumers(graph)
    prod = {t: n for n in graph.nodes for t in n.outputs}
    out = []
    for add in (n for n in graph.nodes if n.op == "add"):
        found = None
        for skip in (1, 0):
            fork, t, main = add.inputs[skip], add.inputs[1 - skip], []
            while t != fork and t in prod and prod[t].op != "add" and len(cons[t]) == 1:
                main.insert(0, prod[t])
                t = prod[t].inputs[0]
            if t == fork and main and len(cons[fork]) == 2:
                found = {"add": add, "skip": skip, "fork": fork, "main": main}
                break
        if found is None:
            raise ValueError(f"node {add.name!r}: only residual adds are supported in hardware "
                             f"(one input a tensor that feeds the add and one chain of "
                             f"single-input nodes ending in the other input); inputs "
                             f"{add.inputs}")
        out.append(found)
    for t, c in cons.items():
        if len(c) > 1 and t not in {b["fork"] for b in out}:
            raise ValueError(f"tensor {t!r} feeds {', '.join(n.name for n, _ in c)}: a tensor "
                             f"may feed several nodes only as a residual fork")
    return out


def _need(block):
    """Input beats needed per output beat of one image (1-based counts), None: one per one."""
    block = spec_of(block)
    if isinstance(block, SlidingWindowSpec):
        oy = np.repeat(np.arange(block.out_h), block.out_w)
        return np.minimum(oy * block.stride - block.padding + block.kh,
                          block.height) * block.width
    if isinstance(block, CollectorSpec):
        return np.array([block.beats])
    if isinstance(block, ChainSpec):
        return branch_need(block.children)
    return None


def branch_need(blocks):
    """``need(o)`` (see the module docstring) of blocks in a row, per output beat of one
    image; None when every block emits one beat per input beat."""
    need = None
    for b in blocks:
        n = _need(b)
        if n is None:
            continue
        need = n if need is None else need[n - 1]
    return need


def branch_lead(blocks) -> int:
    """``max_o (need(o) - o)``: the smallest deadlock-free skip FIFO depth."""
    need = branch_need(blocks)
    if need is None:
        return 0
    return int(max(0, np.max(need - np.arange(1, len(need) + 1))))


def _in_flight(block):
    block = spec_of(block)
    if isinstance(block, ChainSpec):
        return sum(_in_flight(b) for b in block.children)
    if isinstance(block, SlidingWindowSpec):
        return 1                       # its output register
    return min(int(block.latency), 2) if hasattr(block, "pe") else int(block.latency)


def skip_fifo_depth(blocks) -> int:
    """Default skip FIFO depth for a main branch of ``blocks``: ``lead + in flight``, >= 2."""
    return max(2, branch_lead(blocks) + sum(_in_flight(b) for b in blocks))


def _entry(graph, n, block, family, **extra):
    e = {"name": n.name, "op": n.op, "block": block.component.__name__,
         "latency": int(block.latency), "ii": int(block.ii),
         "in_lanes": int(graph.tensors[n.inputs[0]].shape[-1]),
         "out_lanes": int(graph.tensors[n.outputs[0]].shape[-1]),
         "estimate": estimate_block(block, family)}
    e.update(extra)
    return e


def setup_residual(net, graph, folding=None, fifos="auto", skip_fifos=None, family="ice40",
                   **options):
    """Fill ``net`` (a :class:`~ddnhw.lower.network.NetworkSpec`) for a graph with residual
    adds: ``blocks``/``names`` (specs), ``edges``, ``latency`` (longest path), ``ii``,
    ``layers``. ``fifos``: ``"auto"``/``"none"`` (rate FIFOs between single-consumer
    blocks, as for chains); ``skip_fifos``: ``{add node name: depth}`` overrides."""
    branches = residual_branches(graph)
    if fifos not in ("auto", "none"):
        raise ValueError(f"fifos must be 'auto' or 'none' for a graph with residual adds, not "
                         f"{fifos!r}")
    skip_fifos = dict(skip_fifos or {})
    adds = {b["add"].name for b in branches}
    for k, v in skip_fifos.items():
        if k not in adds:
            raise ValueError(f"skip_fifos names {k!r}, which is not an add node (have: "
                             f"{', '.join(sorted(adds))})")
        if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v == 1:
            raise ValueError(f"skip_fifos[{k!r}] must be 0 or a depth >= 2, not {v!r}")
    opts = dict(options, folding=folding)
    fused = fusions(graph, **opts)
    fused_into = {r.name: d for d, r in fused.items()}
    blocks = {n.name: lower_spec(graph, n, fused=fused.get(n.name), **opts)
              for n in graph.nodes if n.name not in fused_into}
    net.blocks_by_node = blocks
    src = {graph.inputs[0]: None}           # tensor -> the block that emits it
    for n in graph.nodes:
        src[n.outputs[0]] = fused_into.get(n.name, n.name)
    cons = _consumers(graph)
    order, edges, layers, lat = [], [], [], {graph.inputs[0]: 0}
    net.forks, net.skips = {}, {}
    by_fork = {b["fork"]: b for b in branches}
    by_add = {b["add"].name: b for b in branches}

    def port(t):
        """The stream (block name, port attribute) that carries tensor t to its one consumer."""
        return ("", "i") if src[t] is None else (src[t], "o")

    for n in graph.nodes:
        if n.name in fused_into:
            host = blocks[fused_into[n.name]]
            layers.append({"name": n.name, "op": n.op, "block": host.component.__name__,
                           "fused_into": fused_into[n.name], "latency": 0, "ii": int(host.ii),
                           "in_lanes": int(graph.tensors[n.inputs[0]].shape[-1]),
                           "out_lanes": int(graph.tensors[n.outputs[0]].shape[-1]),
                           "estimate": dict.fromkeys(RESOURCES, 0)})
            lat[n.outputs[0]] = lat[n.inputs[0]]
            continue
        b = blocks[n.name]
        order.append((n.name, b))
        if n.op == "add":
            br = by_add[n.name]
            layers.append(_entry(graph, n, b, family, shift0=int(n.attrs["shift0"]),
                                 shift1=int(n.attrs["shift1"]), skip_input=br["skip"]))
        else:
            extra = {}
            if n.op == "dense":
                extra = {"folded": hasattr(b, "pe"), "pe": int(getattr(b, "pe", b.n_out)),
                         "simd": int(getattr(b, "simd", b.n_in))}
                if n.name in fused:
                    extra["fuses"] = fused[n.name].name
            layers.append(_entry(graph, n, b, family, **extra))
        lat[n.outputs[0]] = max(lat[t] for t in n.inputs) + int(b.latency)
        for k, t in enumerate(n.inputs):
            dst = (n.name, f"i{k}" if n.op == "add" else "i")
            if t in by_fork:
                br = by_fork[t]
                fname = f"{src[t] or 'input'}_fork"
                if fname not in net.forks:
                    fk = ForkSpec(blocks[src[t]].out_shape if src[t] else
                                  data.ArrayLayout(int_shape(graph.tensors[t].dtype),
                                                   graph.tensors[t].shape[-1]), 2)
                    net.forks[fname] = fk
                    order.append((fname, fk))
                    edges.append((port(t), (fname, "i")))
                    layers.insert(len(layers) - 1, {
                        "name": fname, "op": "fork", "block": "Fork", "after": src[t] or "input",
                        "tensor": t, "consumers": [br["main"][0].name, br["add"].name],
                        "latency": 0, "ii": 1, "in_lanes": int(graph.tensors[t].shape[-1]),
                        "out_lanes": int(graph.tensors[t].shape[-1]),
                        "estimate": estimate_block(fk, family)})
                if n.op == "add":       # the skip: fork.o1 -> FIFO -> add
                    main_blocks = [blocks[m.name] for m in br["main"] if m.name in blocks]
                    lead = branch_lead(main_blocks)
                    depth = skip_fifos.get(n.name, skip_fifo_depth(main_blocks))
                    if depth == 0:
                        edges.append(((fname, "o1"), dst))
                        continue
                    f = StreamFIFOSpec(net.forks[fname].out_shape[1], depth)
                    sname = f"{n.name}_skip"
                    net.skips[sname] = f
                    order.append((sname, f))
                    edges += [((fname, "o1"), (sname, "i")), ((sname, "o"), dst)]
                    lat[n.outputs[0]] = max(lat[n.outputs[0]],
                                            lat[t] + f.latency + int(b.latency))
                    layers.insert(len(layers) - 1, {
                        "name": sname, "op": "fifo", "block": f.component.__name__,
                        "after": fname, "depth": depth, "lead": lead, "latency": f.latency,
                        "ii": f.ii, "in_lanes": int(graph.tensors[t].shape[-1]),
                        "out_lanes": int(graph.tensors[t].shape[-1]),
                        "estimate": estimate_block(f, family)})
                else:
                    edges.append(((fname, "o0"), dst))
                continue
            edges.append((port(t), dst))
    # rate FIFOs between single-consumer blocks whose consumer is slower (as for chains)
    if fifos == "auto":
        from .network import fifo_depth
        by_name = dict(order)
        for k, ((a, pa), (c, pc)) in enumerate(list(edges)):
            if a in blocks and c in blocks and pa == "o":
                d = fifo_depth(by_name[a].ii, by_name[c].ii)
                if d:
                    f = StreamFIFOSpec(by_name[a].out_shape, d)
                    order.append((f"{a}_fifo", f))
                    edges[k] = ((a, "o"), (f"{a}_fifo", "i"))
                    edges.append(((f"{a}_fifo", "o"), (c, pc)))
                    i = next(j for j, e in enumerate(layers) if e["name"] == a) + 1
                    layers.insert(i, {"name": f"{a}_fifo", "op": "fifo", "block": "StreamFIFO",
                                      "after": a, "depth": d, "latency": f.latency, "ii": f.ii,
                                      "in_lanes": layers[i - 1]["out_lanes"],
                                      "out_lanes": layers[i - 1]["out_lanes"],
                                      "estimate": estimate_block(f, family)})
    edges.append((port(graph.outputs[0]), ("", "o")))
    net.names, net.blocks = [k for k, _ in order], [b for _, b in order]
    net.edges = edges
    net.layers = layers
    net.latency = int(lat[graph.outputs[0]])
    net.ii = max(int(b.ii) for b in net.blocks)


def elaborate_residual(net):
    m = Module()
    by_name = dict(zip(net.names, net.blocks))
    for name, b in zip(net.names, net.blocks):
        m.submodules[name] = b

    def get(name, attr):
        if name == "":
            return wiring.flipped(getattr(net, attr))
        return getattr(by_name[name], attr)

    for (a, pa), (b, pb) in net.edges:
        wiring.connect(m, get(a, pa), get(b, pb))
    return m
