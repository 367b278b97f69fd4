"""Small stream cores for the board build tests."""

from amaranth.hdl import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


class PairwiseMul(wiring.Component):
    """``o[k] = i[2k] op i[2k+1]`` over ``lanes`` lanes, registered (latency 1, II 1).

    ``op`` is ``"add"`` or ``"mul"``.
    """

    def __init__(self, lanes, width, op="add"):
        self.lanes, self.op = lanes, op
        out_width = width + 1 if op == "add" else 2 * width
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(width), 2 * lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(out_width), lanes))),
        })
        self.latency, self.ii = 1, 1

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        with m.If(self.i.ready):
            m.d.sync += self.o.valid.eq(self.i.valid)
            for k in range(self.lanes):
                a, b = self.i.payload[2 * k], self.i.payload[2 * k + 1]
                m.d.sync += self.o.payload[k].eq(a + b if self.op == "add" else a * b)
        return m


def adder4():
    """A 4-lane int8 adder: the tiny design the synthesis tests build."""
    return PairwiseMul(4, 8, "add")
