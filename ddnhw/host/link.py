"""Host side of the board link (the protocol is :mod:`ddnhw.board.protocol`).

``Link(port, baud, timeout)`` talks to a board top over a serial port: ``port`` is a device
name (opened with pyserial) or any object with pyserial's ``write(bytes)``, ``read(n)`` and
``timeout`` (a simulated port in the cocotb tests, for instance). An optional ``clock()``
method on the port object replaces ``time.monotonic`` for throughput and latency figures.

Every frame whose reply is missing or an ``ERROR`` is sent again under a new SEQ, up to
``retries`` times; replies come back in order, so a ``RESULT`` for a later frame proves the
earlier ones lost. Failures raise :class:`ddnhw.DdnhwError` with a message that says what to
check.
"""
from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np

from ddnhw import DdnhwError
from ddnhw.board import protocol as P

__all__ = ["Link", "LinkStats", "open_serial"]

DEFAULT_BAUD = 115200


def open_serial(port, baud=DEFAULT_BAUD, timeout=0.5):
    """Open ``port`` with pyserial (8N1), or raise a DdnhwError saying what was looked for."""
    try:
        import serial
    except ImportError:
        raise DdnhwError("the host runtime needs pyserial: pip install 'ddnhw[board]'") from None
    try:
        return serial.Serial(port, baudrate=baud, timeout=timeout)
    except (serial.SerialException, OSError) as e:
        raise DdnhwError(f"cannot open serial port {port!r}: {e}; is the board plugged in? "
                         "(ULX3S/iCEBreaker: the FTDI's second interface, e.g. /dev/ttyUSB1 on "
                         "Linux; check `ls /dev/ttyUSB* /dev/ttyACM*` and permissions (dialout "
                         "group))") from None


@dataclass
class LinkStats:
    """Counters of one :class:`Link`."""

    frames_sent: int = 0
    retries: int = 0
    timeouts: int = 0
    errors: Counter = field(default_factory=Counter)   # device ERROR replies by name
    stale_replies: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    bad_reply_frames: int = 0
    reply_crc_failures: int = 0   # of those, the ones that reached the CRC check
    unconfirmed: int = 0       # confirm mode: two answers of one row that differed


class Link:
    """A connection to a board running a ddnhw board top.

    ``timeout`` (seconds) is how long to wait for a reply before sending again; ``retries`` is
    how often one frame is re-sent before giving up; ``window`` is how many INFER frames may be
    outstanding at once (the device needs only one, more keeps the line busy; the board top
    buffers 5 (its payload register and a 4-deep SEQ FIFO): a wider window makes it answer
    ERR_BUSY, or nothing when such errors come faster than its replies, and those frames are
    re-sent). ``confirm``:
    send every vector twice and accept its answer only when both replies agree, at half the
    throughput. Protocol version 2's CRC-32 makes it unnecessary (a damaged frame passes with
    probability 2^-32, see :mod:`ddnhw.board.protocol`); it was the guard against version 1's
    CRC-8, which let about 1 in 256 damaged frames through.
    """

    def __init__(self, port, baud=DEFAULT_BAUD, timeout=0.5, *, retries=3, window=4,
                 confirm=False):
        if not timeout or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if not 1 <= int(window) <= 64:
            raise ValueError(f"window must be in 1..64, not {window!r}")
        if isinstance(port, str):
            self.name = port
            self.port = open_serial(port, baud, timeout)
        else:
            self.name = getattr(port, "name", None) or type(port).__name__
            self.port = port
            self.port.timeout = timeout
        self.baud, self.timeout, self.retries, self.window = baud, timeout, retries, int(window)
        self.confirm = bool(confirm)
        self.last_lost = []                       # rows of the last infer() given up on
        self.last_deliveries = np.zeros(0, int)   # answers accepted per row (1 each)
        self.clock = getattr(self.port, "clock", time.monotonic)
        self.stats = LinkStats()
        self.decoder = P.FrameDecoder(max_len=4096)
        self._frames = deque()
        self._seq = 0
        self._ident = None

    # -- low level -------------------------------------------------------------------------
    def close(self):
        close = getattr(self.port, "close", None)
        if close is not None:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _next_seq(self):
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def send(self, ftype, seq, payload=b""):
        """Send one frame."""
        frame = P.encode_frame(ftype, seq, payload)
        self.port.write(frame)
        self.stats.frames_sent += 1
        self.stats.bytes_out += len(frame)

    def receive(self, max_bytes=64):
        """The next reply frame, or None after ``timeout`` without one."""
        deadline = self.clock() + self.timeout
        while not self._frames:
            if self.clock() > deadline:      # bytes keep coming, but no valid frame
                return None
            data = self.port.read(max_bytes)
            self.stats.bytes_in += len(data)
            before, crc_before = self.decoder.bad_frames, self.decoder.crc_failures
            self._frames.extend(self.decoder.feed(data))
            self.stats.bad_reply_frames += self.decoder.bad_frames - before
            self.stats.reply_crc_failures += self.decoder.crc_failures - crc_before
            if len(data) < max_bytes and not self._frames:
                return None
        return self._frames.popleft()

    def _error(self, frame):
        code = frame.payload[0] if frame.payload else 0
        self.stats.errors[P.ERRORS.get(code, f"code {code}")] += 1

    # -- requests --------------------------------------------------------------------------
    def ident(self) -> P.Ident:
        """Ask the board what it is (IDENT frame); retried like any frame."""
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            seq = self._next_seq()
            self.send(P.IDENT, seq)
            while (frame := self.receive(P.OVERHEAD + P.IDENT_BYTES)) is not None:
                if frame.type == P.IDENT_REPLY and frame.seq == seq:
                    try:
                        self._ident = P.Ident.from_bytes(frame.payload)
                    except ValueError as e:
                        raise DdnhwError(f"{self.name}: malformed IDENT reply ({e}); is this a "
                                         f"ddnhw board top of a compatible version?") from None
                    return self._ident
                if frame.type == P.ERROR:
                    self._error(frame)
                    if frame.seq == seq:
                        break
                else:
                    self.stats.stale_replies += 1
            else:
                self.stats.timeouts += 1
        old = self._probe_v1()
        if old is not None:
            raise DdnhwError(f"{self.name}: the board speaks link protocol version {old} "
                             f"(CRC-8 frames), this host version {P.VERSION}; rebuild and "
                             f"flash the bitstream with this ddnhw (`ddnhw build MODEL --board B "
                             f"&& ddnhw flash --board B`)")
        raise DdnhwError(self._no_answer("IDENT"))

    def _probe_v1(self):
        """After version 2 got no answer: send a version 1 IDENT; the version an old bitstream
        states in its answer (1 for a v1 ERROR reply), or None."""
        self.port.write(P.encode_frame_v1(P.IDENT, 0x5A))
        dec = P.V1Decoder()
        deadline = self.clock() + self.timeout
        frames = []
        while not frames and self.clock() <= deadline:
            data = self.port.read(64)
            if not data:
                break
            frames = dec.feed(data)
        for f in frames:
            if f.type == P.IDENT_REPLY and f.payload:
                return f.payload[0]
        return 1 if frames else None

    def _no_answer(self, what):
        return (f"no answer to {what} from the board on {self.name} after {self.retries + 1} "
                f"attempts ({self.timeout} s each, {self.baud} baud; device errors: "
                f"{dict(self.stats.errors) or 'none'}); check that the bitstream is loaded "
                f"(`ddnhw flash`), the port and the baud rate")

    def check(self, graph, latency=None) -> P.Ident:
        """Raise a DdnhwError unless the board runs the design built from ``graph``."""
        got = self.ident()
        want = P.Ident.for_graph(graph, got.latency if latency is None else latency)
        if got.version != P.VERSION:
            raise DdnhwError(f"{self.name}: board speaks link protocol version {got.version}, "
                             f"this host {P.VERSION}; rebuild the bitstream with this ddnhw")
        if got != want:
            def show(i):
                return (f"graph {i.graph_hash.hex()}, in {i.in_lanes}x{i.in_bits}-bit "
                        f"{'signed' if i.in_signed else 'unsigned'}, out {i.out_lanes}x"
                        f"{i.out_bits}-bit {'signed' if i.out_signed else 'unsigned'}")
            raise DdnhwError(f"wrong design on the board at {self.name}: it runs {show(got)}; "
                             f"the model is {show(want)}; build and flash this model "
                             f"(`ddnhw build MODEL --board B && ddnhw flash --board B`)")
        return got

    def infer(self, x, *, lanes=None, on_lost="raise"):
        """Run every row of ``x`` ``(N, in_lanes)`` on the board; returns ``(outputs,
        latencies)``: ``(N, out_lanes)`` int64 and each row's round trip in seconds (from its
        last send to its result).

        A row whose frame got no valid answer after ``retries`` re-sends raises a
        :class:`DdnhwError` (``on_lost="raise"``), or (``"skip"``) is given up on: its output
        row stays 0 and its index is in ``self.last_lost``. With ``confirm`` (see
        :class:`Link`) a row's answer is accepted only when two frames of it, sent apart,
        came back with the same result (a mismatch counts as a retry of the row)."""
        if on_lost not in ("raise", "skip"):
            raise ValueError(f"on_lost must be 'raise' or 'skip', not {on_lost!r}")
        ident = self._ident or self.ident()
        x = np.asarray(x, dtype=np.int64)
        if x.ndim != 2 or x.shape[1] != ident.in_lanes:
            raise DdnhwError(f"inputs must have shape (N, {ident.in_lanes}), got {x.shape}")
        lo = -(1 << (ident.in_bits - 1)) if ident.in_signed else 0
        hi = (1 << (ident.in_bits - 1)) - 1 if ident.in_signed else (1 << ident.in_bits) - 1
        if x.size and (x.min() < lo or x.max() > hi):
            raise DdnhwError(f"inputs outside the board's input range [{lo}, {hi}]")
        n = len(x)
        # replies of this design have these lengths only: a damaged LEN is seen at once
        self.decoder.lengths = {P.RESULT: P.vector_bytes(ident.out_lanes, ident.out_bits),
                                P.ERROR: 1, P.IDENT_REPLY: P.IDENT_BYTES}
        out = np.zeros((n, ident.out_lanes), dtype=np.int64)
        latency = np.zeros(n)
        payloads = [P.pack_vector(row, ident.in_bits) for row in x]
        out_len = P.vector_bytes(ident.out_lanes, ident.out_bits)
        reply_bytes = P.OVERHEAD + out_len
        copies = 2 if self.confirm else 1
        todo = deque(r for r in range(n) for _ in range(copies))
        attempts = [0] * n
        pending = OrderedDict()          # seq -> (row, time sent), in send order
        first = {}                       # confirm: row -> the first answer
        lost = set()
        deliveries = np.zeros(n, int)
        self.last_lost, self.last_deliveries = [], deliveries
        done = 0

        def resend(row, jobs=1):
            if row in lost:
                return
            attempts[row] += 1
            self.stats.retries += 1
            if attempts[row] > self.retries:
                if on_lost == "raise":
                    raise DdnhwError(self._no_answer(f"INFER of row {row}")
                                     + f"; {done} of {n} rows done")
                lost.add(row)
                first.pop(row, None)
                return
            todo.extendleft([row] * jobs)

        while done + len(lost) < n:
            while todo and len(pending) < self.window:
                row = todo.popleft()
                if row in lost or deliveries[row]:
                    continue
                seq = self._next_seq()
                while seq in pending:
                    seq = self._next_seq()
                pending[seq] = (row, self.clock())
                self.send(P.INFER, seq, payloads[row])
            frame = self.receive(reply_bytes)
            if frame is None:                        # timeout: everything outstanding is lost
                self.stats.timeouts += 1
                for row, _ in reversed(list(pending.values())):
                    resend(row)
                pending.clear()
                continue
            if frame.type == P.ERROR:
                self._error(frame)
            elif frame.type != P.RESULT or len(frame.payload) != out_len:
                self.stats.stale_replies += 1
                continue
            if frame.seq not in pending:
                if frame.type == P.RESULT:
                    self.stats.stale_replies += 1
                continue
            lost_now = []
            for seq in list(pending):                # replies are in order: earlier ones lost
                if seq == frame.seq:
                    break
                lost_now.append(pending.pop(seq)[0])
            row, t_sent = pending.pop(frame.seq)
            if frame.type == P.ERROR:
                lost_now.append(row)
            elif row not in lost and deliveries[row] == 0:
                value = P.unpack_vector(frame.payload, ident.out_lanes, ident.out_bits,
                                        ident.out_signed)
                if self.confirm and row not in first:
                    first[row] = value
                elif self.confirm and first.pop(row) != value:
                    self.stats.unconfirmed += 1
                    resend(row, jobs=2)                 # two answers differ: ask twice again
                else:
                    out[row] = value
                    latency[row] = self.clock() - t_sent
                    deliveries[row] += 1
                    done += 1
            for r in reversed(lost_now):
                resend(r)
        self.last_lost = sorted(lost)
        return out, latency
