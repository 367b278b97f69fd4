"""Residual connections: a tensor that feeds a branch of blocks and, through a skip FIFO, the
``add`` node at the branch's end (a fork that rejoins). This module finds them in a graph and
sizes the skip FIFO; :class:`~ddnhw.lower.network.Network` builds them and
:class:`~ddnhw.passes.skip_fifo.SkipFifoSizing` writes the depth into the add node.

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
smallest :class:`~ddnhw.hw.StreamFIFO`); the ``skip_fifos={add node: depth}`` lowering option
overrides it (0: no FIFO, valid when ``lead == 0``).
"""
from __future__ import annotations

import numpy as np

from ddnhw.hw.protocol import spec_of
from ddnhw.hw.window import ChainSpec, CollectorSpec, SlidingWindowSpec

__all__ = ["residual_branches", "branch_need", "branch_lead", "skip_fifo_depth"]


def _consumers(graph):
    cons = {t: [] for t in graph.tensors}
    for n in graph.nodes:
        for k, t in enumerate(n.inputs):
            cons[t].append((n, k))
    return cons


def residual_branches(graph):
    """``[{"add", "skip" (input index), "fork" (tensor), "main" (node list)}]`` per join node
    (a node with two inputs: an ``add``); ``[]`` for a chain. ``ValueError`` naming the node
    for any other topology (a join that is no residual connection, a tensor that feeds
    several nodes without rejoining)."""
    cons = _consumers(graph)
    prod = {t: n for n in graph.nodes for t in n.outputs}
    out = []
    for add in (n for n in graph.nodes if len(n.inputs) > 1):
        found = None
        for skip in (1, 0):
            fork, t, main = add.inputs[skip], add.inputs[1 - skip], []
            while (t != fork and t in prod and len(prod[t].inputs) == 1
                   and len(cons[t]) == 1):
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

