"""The board top: a network core behind a framed UART link (the product, not a shim).

:class:`UARTLink` holds the UART receiver/transmitter, the frame parser and the reply framer
described in :mod:`ddnhw.board.protocol` (and ``boards/PROTOCOL.md``) around the core.
:class:`BoardTop` connects it to a board's UART pins and LEDs.

Ports of :class:`UARTLink`: ``rx`` (pin, idle high), ``tx`` (pin, idle high), ``status``
(3 bits: 0 activity, lit while bytes arrive; 1 error, lit after a bad frame; 2 heartbeat).

Data path: a received ``INFER`` payload (``ceil(lanes * bits / 8)`` bytes) is shifted into the
payload register, checked (length, CRC) and presented from there on the core's ``i`` stream (a
frame that begins while the register still waits for the core is dropped with ``ERR_BUSY``); the frame's SEQ
enters a small FIFO at the input handshake and leaves it with the core's output, which the
reply framer sends as a ``RESULT`` frame. Replies leave in the order frames arrived (the core is
in order); a result has priority over pending ``ERROR`` and ``IDENT_REPLY`` frames. Everything
runs in the ``sync`` domain from the board clock: no PLL is needed (12 MHz / 115200 baud is a
divisor of 104, and the demo core meets 12 MHz on the iCE40UP5K).
"""

from amaranth.hdl import Array, Cat, Const, Elaboratable, Module, Mux, Shape, Signal, Value
from amaranth.lib import fifo, io, wiring
from amaranth.lib.wiring import In, Out

from . import protocol as P
from .uart import UARTRx, UARTTx, baud_divisor

__all__ = ["UARTLink", "BoardTop", "crc32_update", "DEFAULT_BAUD"]

DEFAULT_BAUD = 115200


CRC32_POLY = 0xEDB88320      # reflected IEEE 802.3 polynomial


def crc32_update(crc, byte):
    """The CRC-32 register (IEEE 802.3, reflected, no final XOR applied) ``crc`` after one more
    ``byte``, as a combinational Amaranth Value: eight shift-right steps of XOR gates.
    ``~register`` after the last byte is :func:`ddnhw.board.protocol.crc32` of the bytes when
    the register started at 0xFFFFFFFF."""
    bits = [crc[k] ^ byte[k] if k < 8 else crc[k] for k in range(32)]
    for _ in range(8):
        low = bits[0]
        bits = bits[1:] + [Const(0, 1)]
        bits = [b ^ low if (CRC32_POLY >> k) & 1 else b for k, b in enumerate(bits)]
    return Cat(*bits)


CRC32_INIT = 0xFFFFFFFF


def _width(port):
    return Shape.cast(port.payload.shape()).width


class UARTLink(wiring.Component):
    """``core`` (a ``wiring.Component`` with stream ports ``i``/``o``) behind the framed link.

    ``ident`` is the :class:`~ddnhw.board.protocol.Ident` the link answers (it must match the
    core's port widths). ``divisor`` is clock cycles per UART bit (>= 4). ``timeout_cycles``
    is the inter-byte timeout that ends a truncated frame. ``led_cycles`` is how long the
    activity/error LEDs stay lit after an event (and half the heartbeat period).
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    status: Out(3)

    def __init__(self, core, ident, *, divisor, timeout_cycles=None, led_cycles=1 << 20,
                 seq_depth=4):
        if not isinstance(core, wiring.Component):
            raise TypeError(f"core must be a wiring.Component, not {core!r}")
        for name in ("i", "o"):
            if name not in core.signature.members:
                raise TypeError(f"core {core!r} has no stream port {name!r}")
        if not isinstance(ident, P.Ident):
            raise TypeError(f"ident must be a protocol.Ident, not {ident!r}")
        self.in_w, self.out_w = _width(core.i), _width(core.o)
        if self.in_w != ident.in_lanes * ident.in_bits:
            raise ValueError(f"ident says {ident.in_lanes} x {ident.in_bits} input bits, the "
                             f"core takes {self.in_w}")
        if self.out_w != ident.out_lanes * ident.out_bits:
            raise ValueError(f"ident says {ident.out_lanes} x {ident.out_bits} output bits, "
                             f"the core gives {self.out_w}")
        if not isinstance(divisor, int) or divisor < 4:
            raise ValueError(f"divisor must be an int >= 4, not {divisor!r}")
        self.in_bytes = P.vector_bytes(ident.in_lanes, ident.in_bits)
        self.out_bytes = P.vector_bytes(ident.out_lanes, ident.out_bits)
        if max(self.in_bytes, self.out_bytes) > P.MAX_LEN:
            raise ValueError(f"vectors of {self.in_bytes}/{self.out_bytes} bytes exceed the "
                             f"protocol's {P.MAX_LEN}")
        self.core = core
        self.ident = ident
        self.divisor = divisor
        self.timeout_cycles = (64 * 10 * divisor) if timeout_cycles is None else timeout_cycles
        if self.timeout_cycles < 20 * divisor:
            raise ValueError(f"timeout_cycles {self.timeout_cycles} is shorter than two bytes")
        self.led_cycles = led_cycles
        self.seq_depth = seq_depth
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.uart_rx = urx = UARTRx(self.divisor)
        m.submodules.uart_tx = utx = UARTTx(self.divisor)
        m.submodules.seq_fifo = seqs = fifo.SyncFIFO(width=16, depth=self.seq_depth)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]

        ident_bytes = self.ident.to_bytes()
        sr_bytes = max(self.out_bytes, 1)
        ident_rom = Array(Const(b, 8) for b in reversed(ident_bytes))  # by bytes still to go

        # Shared state between parser and framer. The framer clears pending flags; the parser's
        # sets come later in this function, so a set wins over a clear in the same cycle.
        err_pending = Signal()
        err_code = Signal(8)
        err_seq = Signal(16)
        ident_pending = Signal()
        ident_seq = Signal(16)
        hold_valid = Signal()           # the payload register holds a vector for the core
        hold_seq = Signal(16)
        error_event = Signal()

        # -- core input: holding register -> core.i, SEQ -> FIFO -----------------------------
        shreg = Signal(8 * self.in_bytes)   # INFER payload, shifted in; the core's input
        m.d.comb += [core.i.payload.eq(shreg[:self.in_w]),
                     core.i.valid.eq(hold_valid & seqs.w_rdy),
                     seqs.w_data.eq(hold_seq), seqs.w_en.eq(core.i.valid & core.i.ready)]
        with m.If(core.i.valid & core.i.ready):
            m.d.sync += hold_valid.eq(0)

        # -- reply framer ----------------------------------------------------------------------
        t_type = Signal(8)
        t_seq = Signal(16)
        t_len = Signal(16)
        t_count = Signal(16)
        t_crc = Signal(32)
        t_sr = Signal(8 * sr_bytes)
        t_byte = Signal(8)
        m.d.comb += [utx.i.payload.eq(t_byte), seqs.r_en.eq(0), core.o.ready.eq(0)]
        sent = utx.i.valid & utx.i.ready
        with m.FSM(name="framer"):
            with m.State("IDLE"):
                with m.If(core.o.valid & seqs.r_rdy):
                    m.d.comb += [core.o.ready.eq(1), seqs.r_en.eq(1)]
                    m.d.sync += [t_type.eq(P.RESULT), t_seq.eq(seqs.r_data),
                                 t_len.eq(self.out_bytes), t_sr.eq(Value.cast(core.o.payload))]
                    m.next = "SOF"
                with m.Elif(err_pending):
                    m.d.sync += [err_pending.eq(0), t_type.eq(P.ERROR), t_seq.eq(err_seq),
                                 t_len.eq(1), t_sr.eq(err_code)]
                    m.next = "SOF"
                with m.Elif(ident_pending):
                    m.d.sync += [ident_pending.eq(0), t_type.eq(P.IDENT_REPLY),
                                 t_seq.eq(ident_seq), t_len.eq(len(ident_bytes))]
                    m.next = "SOF"
            with m.State("SOF"):
                m.d.comb += [utx.i.valid.eq(1), t_byte.eq(P.SOF)]
                with m.If(sent):
                    m.d.sync += t_crc.eq(CRC32_INIT)
                    m.next = "VER"
            for state, value, nxt in (("VER", P.VERSION, "TYPE"), ("TYPE", t_type, "SEQ0"),
                                      ("SEQ0", t_seq[:8], "SEQ1"), ("SEQ1", t_seq[8:], "LEN0"),
                                      ("LEN0", t_len[:8], "LEN1")):
                with m.State(state):
                    m.d.comb += [utx.i.valid.eq(1), t_byte.eq(value)]
                    with m.If(sent):
                        m.d.sync += t_crc.eq(crc32_update(t_crc, t_byte))
                        m.next = nxt
            with m.State("LEN1"):
                m.d.comb += [utx.i.valid.eq(1), t_byte.eq(t_len[8:])]
                with m.If(sent):
                    m.d.sync += [t_crc.eq(crc32_update(t_crc, t_byte)),
                                 t_count.eq(Mux(t_len == 0, P.CRC_BYTES - 1, t_len - 1))]
                    m.next = "PAYLOAD"
                    with m.If(t_len == 0):
                        m.next = "CRC"
            with m.State("PAYLOAD"):
                m.d.comb += [utx.i.valid.eq(1),
                             t_byte.eq(Mux(t_type == P.IDENT_REPLY,
                                           ident_rom[t_count[:len(ident_bytes).bit_length()]],
                                           t_sr[:8]))]
                with m.If(sent):
                    m.d.sync += [t_crc.eq(crc32_update(t_crc, t_byte)), t_sr.eq(t_sr >> 8),
                                 t_count.eq(t_count - 1)]
                    with m.If(t_count == 0):
                        m.d.sync += t_count.eq(P.CRC_BYTES - 1)
                        m.next = "CRC"
            with m.State("CRC"):             # ~register, least significant byte first
                m.d.comb += [utx.i.valid.eq(1), t_byte.eq(~t_crc[:8])]
                with m.If(sent):
                    m.d.sync += [t_crc.eq(t_crc >> 8), t_count.eq(t_count - 1)]
                    with m.If(t_count == 0):
                        m.next = "IDLE"

        # -- frame parser ------------------------------------------------------------------------
        byte = urx.o.payload
        got = urx.o.valid
        crc = Signal(32)
        crc_next = crc32_update(crc, byte)
        is_infer = Signal()
        seq = Signal(16)
        length_lo = Signal(8)
        count = Signal(16)
        busy_frame = Signal()           # the register was still taken when this frame began
        idle_timer = Signal(range(self.timeout_cycles + 1))
        raise_error = Signal()
        raise_code = Signal(8)

        with m.If(got):
            m.d.sync += idle_timer.eq(0)
        with m.Elif(idle_timer != self.timeout_cycles):
            m.d.sync += idle_timer.eq(idle_timer + 1)

        timed_out = idle_timer == self.timeout_cycles

        def on_timeout():  # the Elif after a state's `with m.If(got)`
            with m.Elif(timed_out):
                m.d.comb += [raise_error.eq(1), raise_code.eq(P.ERR_TIMEOUT)]
                m.next = "IDLE"

        with m.FSM(name="parser"):
            with m.State("IDLE"):
                with m.If(got & (byte == P.SOF)):
                    m.d.sync += [seq.eq(0), crc.eq(CRC32_INIT)]
                    m.next = "VER"
            with m.State("VER"):
                with m.If(got):
                    m.d.sync += crc.eq(crc_next)
                    with m.If(byte == P.VERSION):
                        m.next = "TYPE"
                    with m.Elif(byte == P.SOF):
                        m.d.sync += crc.eq(CRC32_INIT)   # a SOF where the VER belongs: restart
                    with m.Else():
                        m.d.comb += [raise_error.eq(1), raise_code.eq(P.ERR_VERSION)]
                        m.next = "IDLE"
                on_timeout()
            with m.State("TYPE"):
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), is_infer.eq(byte == P.INFER)]
                    with m.If((byte == P.INFER) | (byte == P.IDENT)):
                        m.next = "SEQ0"
                    with m.Else():
                        m.d.comb += [raise_error.eq(1), raise_code.eq(P.ERR_TYPE)]
                        m.next = "IDLE"
                on_timeout()
            with m.State("SEQ0"):
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), seq[:8].eq(byte)]
                    m.next = "SEQ1"
                on_timeout()
            with m.State("SEQ1"):
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), seq[8:].eq(byte)]
                    m.next = "LEN0"
                on_timeout()
            with m.State("LEN0"):
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), length_lo.eq(byte)]
                    m.next = "LEN1"
                on_timeout()
            with m.State("LEN1"):
                with m.If(got):
                    length = Cat(length_lo, byte)
                    expect = Signal(16)
                    m.d.comb += expect.eq(Mux(is_infer, self.in_bytes, 0))
                    m.d.sync += [crc.eq(crc_next),
                                 count.eq(Mux(is_infer, self.in_bytes - 1, P.CRC_BYTES - 1)),
                                 busy_frame.eq(hold_valid)]
                    with m.If(length != expect):
                        m.d.comb += [raise_error.eq(1), raise_code.eq(P.ERR_LENGTH)]
                        m.next = "IDLE"
                    with m.Elif(is_infer):
                        m.next = "PAYLOAD"
                    with m.Else():
                        m.next = "CRC"
                on_timeout()
            with m.State("PAYLOAD"):
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), count.eq(count - 1)]
                    with m.If(~busy_frame):
                        m.d.sync += shreg.eq(Cat(shreg[8:], byte))
                    with m.If(count == 0):
                        m.d.sync += count.eq(P.CRC_BYTES - 1)
                        m.next = "CRC"
                on_timeout()
            with m.State("CRC"):
                # the register run over the four CRC bytes too ends at the residue iff they match
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), count.eq(count - 1)]
                    with m.If(count == 0):
                        m.next = "IDLE"
                        with m.If(crc_next != P.CRC32_RESIDUE):
                            m.d.comb += [raise_error.eq(1), raise_code.eq(P.ERR_CRC)]
                        with m.Elif(~is_infer):
                            m.d.sync += [ident_pending.eq(1), ident_seq.eq(seq)]
                        with m.Elif(busy_frame):
                            m.d.comb += [raise_error.eq(1), raise_code.eq(P.ERR_BUSY)]
                        with m.Else():
                            m.d.sync += [hold_valid.eq(1), hold_seq.eq(seq)]
                on_timeout()

        with m.If(raise_error):
            m.d.sync += [err_pending.eq(1), err_code.eq(raise_code), err_seq.eq(seq)]
        m.d.comb += error_event.eq(raise_error | urx.frame_error)

        # -- status LEDs: one prescaler; activity/error stay lit for 1-2 of its periods --------
        period = max(2, self.led_cycles)
        prescale = Signal(range(period))
        tick = prescale == period - 1
        m.d.sync += prescale.eq(Mux(tick, 0, prescale + 1))
        act = Signal(2)
        err = Signal(2)
        heartbeat = Signal()
        with m.If(got):
            m.d.sync += act.eq(2)
        with m.Elif(tick & (act != 0)):
            m.d.sync += act.eq(act - 1)
        with m.If(error_event):
            m.d.sync += err.eq(2)
        with m.Elif(tick & (err != 0)):
            m.d.sync += err.eq(err - 1)
        with m.If(tick):
            m.d.sync += heartbeat.eq(~heartbeat)
        m.d.comb += self.status.eq(Cat(act != 0, err != 0, heartbeat))
        return m


class BoardTop(Elaboratable):
    """:class:`UARTLink` on a board: the profile's UART pins and up to three LEDs.

    ``baud`` sets the divisor from the platform's default clock (ValueError if it is more than
    2 % off). The inter-byte timeout is 20 ms; the LEDs stretch events to 0.1-0.2 s and the
    heartbeat blinks at 5 Hz. No PLL: the link and the core run from the board clock.
    """

    def __init__(self, core, ident, *, baud=DEFAULT_BAUD, uart="uart", led="led"):
        self.core, self.ident, self.baud = core, ident, baud
        self.uart, self.led = uart, led

    def elaborate(self, platform):
        m = Module()
        clock_hz = platform.default_clk_frequency
        divisor = baud_divisor(clock_hz, self.baud)
        m.submodules.link = link = UARTLink(
            self.core, self.ident, divisor=divisor,
            timeout_cycles=max(int(clock_hz // 50), 20 * divisor),
            led_cycles=int(clock_hz // 10))
        uart = platform.request(self.uart, 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.d.comb += [link.rx.eq(rx.i), tx.o.eq(link.tx)]
        for k in range(3):
            try:
                pin = platform.request(self.led, k, dir="-")
            except Exception:  # ResourceError: the board has fewer LEDs
                break
            m.submodules[f"led_buffer_{k}"] = buf = io.Buffer("o", pin)
            m.d.comb += buf.o.eq(link.status[k])
        return m
