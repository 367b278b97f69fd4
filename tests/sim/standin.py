"""A stand-in DUT with the generator's port convention, for testing the cosim machinery alone.

``LaneMap`` computes ``y[k] = x[k] * a[k] + b[k]`` per lane in a 2-stage pipeline with one global
clock enable ``ce = ~o.valid | o.ready`` (``i.ready = ce``): the same stall discipline as the
generated networks.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def coefficients(lanes: int):
    a = np.array([(k % 7) - 3 for k in range(lanes)], np.int64)
    a[0] = -(1 << 3)  # an extreme negative multiplier
    b = np.array([k - 4 for k in range(lanes)], np.int64)
    return a, b


class LaneMap(wiring.Component):
    def __init__(self, lanes: int, in_bits: int, in_signed: bool):
        self.lanes, self.in_bits, self.in_signed = lanes, in_bits, in_signed
        self.out_bits = in_bits + 6
        super().__init__({
            "i": In(stream.Signature(unsigned(lanes * in_bits))),
            "o": Out(stream.Signature(unsigned(lanes * self.out_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        a, b = coefficients(self.lanes)
        ce = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(ce)
        v1 = Signal()
        with m.If(ce):
            m.d.sync += [v1.eq(self.i.valid), self.o.valid.eq(v1)]
        for k in range(self.lanes):
            w = self.in_bits
            raw = self.i.payload[k * w:(k + 1) * w]
            x = raw.as_signed() if self.in_signed else raw
            p = Signal(signed(self.out_bits), name=f"p{k}")
            y = self.o.payload[k * self.out_bits:(k + 1) * self.out_bits]
            with m.If(ce):
                m.d.sync += [p.eq(x * int(a[k])), y.eq(p + int(b[k]))]
        return m


def reference(x, lanes: int):
    a, b = coefficients(lanes)
    return np.asarray(x, np.int64) * a + b


def emit(outdir, name="standin", lanes=4, in_bits=4, in_signed=False):
    """Write ``<outdir>/<name>.v`` and ``manifest.json``; return (verilog path, manifest dict)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    c = LaneMap(lanes, in_bits, in_signed)
    path = outdir / f"{name}.v"
    path.write_text(verilog.convert(c, name=name, emit_src=False))
    manifest = {"top": name,
                "input": {"lanes": lanes, "bits": in_bits, "signed": in_signed},
                "output": {"lanes": lanes, "bits": c.out_bits, "signed": True},
                "latency": 2, "ii": 1}
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return path, manifest
