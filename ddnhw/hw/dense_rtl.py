"""The datapath of an unrolled :class:`~ddnhw.hw.Dense` written as Verilog text directly.

Amaranth builds a netlist bit by bit: for the thousands of adders of an unrolled layer that
takes seconds (and its Verilog back end then runs yosys over the whole netlist). The adder
graph of a :class:`~ddnhw.hw.dense.DenseSpec` is already planned to the bit (every node's
exact range, shift and pipeline stage), so this module prints it as one Verilog module: one
``wire`` per node, one clock-enabled register per delayed value, the same structure as
``Dense.elaborate`` builds (the same narrow adders, the same split of shifted additions),
with ``keep`` on every bit of every adder output (:func:`_keep_bits`: why one-bit wires).

While :func:`verilog_datapaths` is active (the RTL generator and the board build use it), a
``Dense`` elaborates its valid/ready control in Amaranth and instantiates this module for the
datapath; without it (the Amaranth simulator, formal proofs) it elaborates the datapath in
Amaranth (never synthesized: every Verilog the flow writes comes from here). Both are checked
against the golden model (tests/hw/test_dense_rtl.py), and this one also after yosys' iCE40
and ECP5 mapping, in the cell models (tests/hw/test_dense_gate.py).

Arithmetic is modular: every operand is sign- or zero-extended (or truncated) to the
result's width, which holds the exact result range, so two's complement wrap-around is exact.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib

from ._types import shape_for

__all__ = ["verilog_datapaths", "active_datapaths", "dense_module", "convert"]

_ACTIVE = contextvars.ContextVar("ddnhw_dense_verilog", default=None)


@contextlib.contextmanager
def verilog_datapaths():
    """Within the block, unrolled Dense datapaths are Verilog modules; yields the dict
    ``{module name: Verilog text}`` that elaboration fills (add the texts to the design)."""
    mods = {}
    token = _ACTIVE.set(mods)
    try:
        yield mods
    finally:
        _ACTIVE.reset(token)


def active_datapaths():
    """The dict of :func:`verilog_datapaths` in effect, or None."""
    return _ACTIVE.get()


def _w(n):
    s = shape_for(n.lo, n.hi)
    return s.width, s.signed


def _bits(name, w, signed, lo, width):
    """Bits ``lo .. lo + width - 1`` of the value of ``name`` (an identifier of ``w`` bits),
    as if sign- (``signed``) or zero-extended without end: ``(name >> lo)`` in ``width``
    bits."""
    parts = []
    top = min(lo + width, w) - 1           # highest bit taken from name itself
    if lo <= top:
        if lo == 0 and top == w - 1:
            parts.append(name)
        elif lo == top:
            parts.append(f"{name}[{lo}]")
        else:
            parts.append(f"{name}[{top}:{lo}]")
        have = top - lo + 1
    else:
        have = 0
    fill = width - have
    if fill:
        if signed:
            sign = f"{name}[{w - 1}]" if w > 1 else f"{name}"
            parts.insert(0, f"{{{fill}{{{sign}}}}}")
        else:
            parts.insert(0, f"{fill}'d0")
    return parts[0] if len(parts) == 1 else "{" + ", ".join(parts) + "}"


def _ext(name, w, signed, width):
    """``name`` (``w`` bits, ``signed``) sign/zero-extended or truncated to ``width`` bits."""
    return _bits(name, w, signed, 0, width)


def _shl(name, w, signed, d, width):
    """``name << d`` in ``width`` bits."""
    if d == 0:
        return _ext(name, w, signed, width)
    if width <= d:
        return f"{width}'d0"
    return f"{{{_ext(name, w, signed, width - d)}, {d}'d0}}"


def _keep_bits(name, width):
    """A ``(* keep *)`` one-bit wire on every bit of the adder output ``name``: it stops yosys'
    ``alumacc`` from merging the planned adders into its own adder trees (more LUTs).

    Not ``keep`` on the vector itself: yosys 0.70's LUT mapping (abc9, and abc) loses the
    logic of a kept multi-bit wire whose bits mix logic with bits that are only copies of an
    input of the mapped logic (a port, a flip-flop or carry-chain output; e.g. the low bit of
    ``const - x``, or ``{sum, x[0]}``): the wire's old connection survives with those logic
    bits set to ``x``, the LUTs that drove them lose the driver conflict, and the mapped
    netlist computes wrong values (tests/hw/test_dense_gate.py). A one-bit kept wire cannot
    mix the two."""
    return ("  (* keep *) wire " + ", ".join(f"{name}_k{b} = {name}[{b}]" for b in range(width))
            + ";")


def _const(v, width):
    return f"{width}'d{v % (1 << width)}"


def dense_body(spec) -> str:
    """Ports and body of the datapath module of ``spec`` (a DenseSpec), without its name."""
    in_w = spec.in_type.bits
    out_w = spec.out_type.bits
    lines = [f"  input clk,", f"  input ce,",
             f"  input [{spec.n_in * in_w - 1}:0] x,",
             f"  output [{spec.n_out * out_w - 1}:0] y", ");"]
    decl, assign, regs = [], [], []
    names = {}        # uid -> wire name in its own stage
    delayed = {}      # (uid, k) -> register name
    in_signed = spec.in_type.signed

    def value(n, stage):
        """``(name, width, signed)`` of ``n`` usable in ``stage``."""
        w, s = _w(n)
        if n.kind == "const":
            if n.uid not in names:
                names[n.uid] = f"c{n.uid}"
                decl.append(f"  wire [{w - 1}:0] c{n.uid} = {_const(n.lo, w)};")
            return names[n.uid], w, s
        if n.kind == "in":
            w, s = in_w, in_signed
        k = stage - spec.stage(n)
        v = names[n.uid]
        for j in range(1, k + 1):
            key = (n.uid, j)
            if key not in delayed:
                r = f"n{n.uid}_d{j}"
                decl.append(f"  reg [{w - 1}:0] {r};")
                regs.append(f"    {r} <= {v};")
                delayed[key] = r
            v = delayed[key]
        return v, w, s

    for n in spec.walk():
        if n.kind == "const":
            continue
        if n.kind == "in":
            j = n.extra["index"]
            names[n.uid] = f"x{j}"
            decl.append(f"  wire [{in_w - 1}:0] x{j} = x[{(j + 1) * in_w - 1}:{j * in_w}];")
            continue
        st = spec.stage(n)
        W, S = _w(n)
        args = [value(a, st) for a in n.args]
        name = f"n{n.uid}"
        decl.append(f"  wire [{W - 1}:0] {name};")
        if n.kind in ("add", "sub") and (n.extra["d"] == 0 or
                                         (n.kind == "sub" and n.args[0].shift > n.args[1].shift)):
            decl.append(_keep_bits(name, W))
        if n.kind == "shl":
            expr = _ext(*args[0], W)
        elif n.kind == "mul":
            a = args[0]
            expr = f"{_ext(*a, W)} * {_const(n.extra['w'], W)}"
        elif n.kind in ("add", "sub"):
            (p, pw, ps), (q, qw, qs) = args
            pn, qn = n.args
            d = n.extra["d"]
            op = "+" if n.kind == "add" else "-"
            if n.kind == "sub" and pn.shift > qn.shift:
                # (a << d) - b
                expr = f"{_shl(p, pw, ps, d, W)} - {_ext(q, qw, qs, W)}"
            elif d == 0:
                expr = f"{_ext(p, pw, ps, W)} {op} {_ext(q, qw, qs, W)}"
            else:
                if n.kind == "add":
                    hlo, hhi = (pn.lo >> d) + qn.lo, (pn.hi >> d) + qn.hi
                else:
                    hlo, hhi = (pn.lo >> d) - qn.hi, (pn.hi >> d) - qn.lo
                hs = shape_for(hlo, hhi)
                h = f"n{n.uid}_h"
                decl.append(f"  wire [{hs.width - 1}:0] {h};")
                decl.append(_keep_bits(h, hs.width))
                assign.append(f"  assign {h} = {_bits(p, pw, ps, d, hs.width)} {op} "
                              f"{_ext(q, qw, qs, hs.width)};")
                expr = (_ext(p, pw, ps, W) if W <= d else
                        f"{{{_ext(h, hs.width, hs.signed, W - d)}, {_ext(p, pw, ps, d)}}}")
        else:  # pragma: no cover
            raise AssertionError(n.kind)
        assign.append(f"  assign {name} = {expr};")
        names[n.uid] = name

    outs = []
    for k, r in enumerate(spec.roots):
        v, w, s = value(r, spec.latency + 1)
        outs.append(f"  assign y[{(k + 1) * out_w - 1}:{k * out_w}] = "
                    f"{_shl(v, w, s, r.shift, out_w)};")
    body = lines + decl + assign + outs
    if regs:
        body += ["  always @(posedge clk)", "    if (ce) begin"] + \
                [f"  {r}" for r in regs] + ["    end"]
    return "\n".join(body) + "\nendmodule\n"


def dense_module(spec):
    """``(module name, Verilog text)`` of ``spec``'s datapath; the name hashes the text, so
    equal datapaths share one module."""
    body = dense_body(spec)
    name = "ddnhw_dense_" + hashlib.sha256(body.encode()).hexdigest()[:16]
    return name, f"module {name} (\n{body}"


def convert(top, name, **kw) -> str:
    """``amaranth.back.verilog.convert(top, name=name, **kw)`` with the unrolled Dense
    datapaths as Verilog modules (:func:`verilog_datapaths`), appended in name order."""
    from amaranth.back import verilog
    with verilog_datapaths() as mods:
        text = verilog.convert(top, name=name, **kw)
    return text + "".join(mods[k] for k in sorted(mods))
