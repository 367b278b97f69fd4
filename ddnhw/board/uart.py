"""UART receiver and transmitter (8N1) with stream ports.

Both take ``divisor``: clock cycles per bit (``round(clock_hz / baud)``, at least 4; see
:func:`baud_divisor`). 12 MHz / 115200 baud gives 104 (0.16 % error): no PLL is needed for
the link at the default baud rate on any supported board.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx", "baud_divisor"]

MAX_BAUD_ERROR = 0.02


def baud_divisor(clock_hz, baud):
    """Cycles per bit for ``baud`` at ``clock_hz``; ValueError if the error exceeds 2 %."""
    if not (isinstance(baud, (int, float)) and baud > 0):
        raise ValueError(f"baud must be a positive number, not {baud!r}")
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise ValueError(f"baud {baud} is too fast for a {clock_hz / 1e6:g} MHz clock "
                         f"(needs at least 4 cycles per bit)")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"baud {baud} at {clock_hz / 1e6:g} MHz: divisor {divisor} is "
                         f"{100 * error:.1f} % off (more than {100 * MAX_BAUD_ERROR:.0f} %)")
    return divisor


def _check_divisor(divisor):
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 4:
        raise ValueError(f"divisor must be an int >= 4 (cycles per bit), not {divisor!r}")


class _Clocked(wiring.Component):
    """A UART half timed by ``divisor`` clock cycles per bit (checked at once)."""

    def __init__(self, divisor):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()


class UARTRx(_Clocked):
    """8N1 receiver.

    ``rx`` is the (asynchronous) pin, idle high; it is synchronized here. Each byte whose stop
    bit is high appears on ``o`` for one cycle (``o`` is always ready: bytes are never held).
    A byte with a low stop bit is dropped and pulses ``frame_error``; reception restarts once
    the line is high again. The byte appears about 9.5 bit times after its start edge.
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8, always_ready=True))
    frame_error: Out(1)

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bits = Signal(range(10))
        shreg = Signal(8)
        m.d.sync += self.o.valid.eq(0)
        m.d.sync += self.frame_error.eq(0)
        m.d.comb += self.o.payload.eq(shreg)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):            # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), timer.eq(self.divisor - 1),
                                 bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):
                    m.d.sync += self.o.valid.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += self.frame_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTx(_Clocked):
    """8N1 transmitter: takes a byte from ``i`` when idle and drives ``tx`` (idle high).

    ``i.ready`` is high while the transmitter is idle; a byte takes ``10 * divisor`` cycles.
    """

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shreg = Signal(10, init=0x3FF)   # stop, data[7:0], start; shifted out LSB first
        bits = Signal(range(11))
        m.d.comb += [self.tx.eq(shreg[0]), self.i.ready.eq(bits == 0)]
        with m.If(bits == 0):
            with m.If(self.i.valid):
                m.d.sync += [shreg.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                             bits.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [shreg.eq(Cat(shreg[1:], Const(1, 1))), bits.eq(bits - 1),
                         timer.eq(self.divisor - 1)]
        return m
