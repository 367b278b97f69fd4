"""A minimal board top for measuring the resources and timing of a stream core.

This is a measurement shim, not a product: it keeps every input and output of the core alive
with as little logic as possible, so that synthesis cannot optimize the core away.

- A shift register fed by one input pin (the UART rx pin) holds ``i.payload``, ``i.valid`` and
  ``o.ready``: every bit the core reads comes from a flip-flop.
- ``o.payload`` is captured into a shift register on each output handshake; otherwise that
  register shifts towards the UART tx pin (and an LED) and takes ``i.ready`` in at the top.

The core runs in the platform's default ``sync`` domain (board clock, no PLL), so the
register-to-register paths through the core are what nextpnr times.
"""

from amaranth.hdl import Cat, Elaboratable, Module, Shape, Signal, Value
from amaranth.lib import io, wiring

__all__ = ["MeasureTop", "payload_width"]


def payload_width(port):
    """Bit width of a stream port's payload."""
    return Shape.cast(port.payload.shape()).width


class MeasureTop(Elaboratable):
    """Board top around ``core``, a ``wiring.Component`` with stream ports ``i`` and ``o``.

    ``uart`` and ``led`` are the platform resource names used for the serial in/out pins and
    the monitor LED.
    """

    def __init__(self, core, *, uart="uart", led="led"):
        if not isinstance(core, wiring.Component):
            raise TypeError(f"core must be a wiring.Component, not {core!r}")
        for name in ("i", "o"):
            if name not in core.signature.members:
                raise TypeError(f"core {core!r} has no stream port {name!r}")
        self.core = core
        self.uart = uart
        self.led = led

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core

        w_in = payload_width(core.i)
        w_out = payload_width(core.o)
        # a core that loads its weights after reset (SPRAM): its w stream from the same pins
        w_load = payload_width(core.w) if "w" in core.signature.members else 0

        if platform is not None:
            uart = platform.request(self.uart, 0, dir="-")
            led = platform.request(self.led, 0, dir="-")
            m.submodules.rx_buffer = rx_buffer = io.Buffer("i", uart.rx)
            m.submodules.tx_buffer = tx_buffer = io.Buffer("o", uart.tx)
            m.submodules.led_buffer = led_buffer = io.Buffer("o", led)
            rx, tx, led_o = rx_buffer.i, tx_buffer.o, led_buffer.o
        else:  # simulation / plain elaboration
            rx, tx, led_o = Signal(), Signal(), Signal()
        self.rx, self.tx, self.led_o = rx, tx, led_o

        # In: payload bits, then i.valid, then o.ready; all shifted in from rx.
        shift_in = Signal(w_in + 2 + (w_load + 1 if w_load else 0))
        m.d.sync += shift_in.eq(Cat(rx, shift_in[:-1]))
        m.d.comb += [
            core.i.payload.eq(shift_in[:w_in]),
            core.i.valid.eq(shift_in[w_in]),
            core.o.ready.eq(shift_in[w_in + 1]),
        ]
        if w_load:
            m.d.comb += [core.w.payload.eq(shift_in[w_in + 2:w_in + 2 + w_load]),
                         core.w.valid.eq(shift_in[-1])]

        # Out: capture o.payload on a handshake, else shift towards tx with i.ready coming in.
        shift_out = Signal(w_out)
        with m.If(core.o.valid & core.o.ready):
            m.d.sync += shift_out.eq(Value.cast(core.o.payload))
        with m.Else():
            ready = core.i.ready ^ core.w.ready if w_load else core.i.ready
            m.d.sync += shift_out.eq(Cat(shift_out[1:], ready))
        m.d.comb += [tx.eq(shift_out[0]), led_o.eq(shift_out[0])]
        return m
