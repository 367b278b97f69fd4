"""A fuzzed link: the host runtime (:class:`ddnhw.host.Link`) against a model of the device
protocol over a wire that corrupts frames in both directions.

:class:`DeviceModel` is the board top's frame parser and reply framer
(:class:`ddnhw.board.link.UARTLink`, described in :mod:`ddnhw.board.protocol`) byte for byte:
the same states (SOF, VER, TYPE, SEQ, LEN, PAYLOAD, CRC), the same restarts (a SOF where the VER
belongs), the same replies (RESULT, IDENT_REPLY, ERROR with the same codes and SEQs) and the
inter-byte timeout, which fires when the line goes quiet in the middle of a frame (here: when
the host waits for a reply). Its core is the golden model. What it does not model is time
inside a frame (the RTL cosimulation, ``sim/tb_link.py``, covers that).

:class:`FuzzPort` is the serial port between them: every frame the host writes and every
reply the device sends is, with probability ``error_rate``, damaged in one way: bits flipped,
a byte dropped or duplicated, the frame truncated or lost, random garbage (SOF bytes
included) before or after it, or its LEN field rewritten (CRC recomputed: a well-formed frame
of the wrong length).

:func:`fuzz_link` runs ``n`` vectors through them and counts: answers delivered (each must
equal the golden model: ``wrong_accepted`` must be 0), answers delivered twice, frames
reported lost after their retries, and the damage done.
"""
from __future__ import annotations

import random
from collections import Counter

import numpy as np

from ddnhw.board import protocol as P

__all__ = ["DeviceModel", "FuzzPort", "DamagingPort", "damage", "fuzz_link", "fuzz_vectors",
           "deliver_and_count", "DAMAGE"]

DAMAGE = ("flip", "drop", "dup", "truncate", "lost", "garbage", "length")


class DeviceModel:
    """The device side of the link protocol with ``graph``'s golden model as its core."""

    def __init__(self, graph, ident):
        from ddnhw import golden
        self.graph, self.ident, self.golden = graph, ident, golden
        self.in_bytes = P.vector_bytes(ident.in_lanes, ident.in_bits)
        self.state = "IDLE"
        self.errors = Counter()
        self.computed = 0
        self.table = {}
        self._reset_frame()

    def _reset_frame(self):
        self.crc, self.seq, self.is_infer, self.length_lo, self.crc_left = 0, 0, False, 0, 0
        self.payload = bytearray()

    def _error(self, code, out):
        self.errors[P.ERRORS[code]] += 1
        out.append(P.encode_frame(P.ERROR, self.seq, bytes([code])))
        self.state = "IDLE"

    def feed(self, data) -> list:
        """Bytes from the host; returns the reply frames they complete."""
        out = []
        crc32 = P.crc32
        for byte in bytes(data):
            st = self.state
            if st == "IDLE":
                if byte == P.SOF:
                    self._reset_frame()
                    self.state = "VER"
                continue
            if st == "VER":
                if byte == P.SOF:
                    continue                     # a SOF where the VER belongs: restart
                if byte != P.VERSION:
                    self._error(P.ERR_VERSION, out)
                    continue
                self.crc, self.state = crc32([byte]), "TYPE"
                continue
            self.crc = crc32([byte], self.crc)
            if st == "TYPE":
                self.is_infer = byte == P.INFER
                if byte in (P.INFER, P.IDENT):
                    self.state = "SEQ0"
                else:
                    self._error(P.ERR_TYPE, out)
            elif st == "SEQ0":
                self.seq, self.state = byte, "SEQ1"
            elif st == "SEQ1":
                self.seq, self.state = self.seq | byte << 8, "LEN0"
            elif st == "LEN0":
                self.length_lo, self.state = byte, "LEN1"
            elif st == "LEN1":
                length = self.length_lo | byte << 8
                if length != (self.in_bytes if self.is_infer else 0):
                    self._error(P.ERR_LENGTH, out)
                else:
                    self.state = "PAYLOAD" if self.is_infer else "CRC"
                    self.crc_left = P.CRC_BYTES
            elif st == "PAYLOAD":
                self.payload.append(byte)
                if len(self.payload) == self.in_bytes:
                    self.state = "CRC"
            elif st == "CRC":
                self.crc_left -= 1
                if self.crc_left:
                    continue
                self.state = "IDLE"
                # zlib's CRC over body + its CRC bytes is the residue's complement
                if self.crc != P.CRC32_RESIDUE ^ 0xFFFFFFFF:
                    self._error(P.ERR_CRC, out)
                elif not self.is_infer:
                    out.append(P.encode_frame(P.IDENT_REPLY, self.seq, self.ident.to_bytes()))
                else:
                    out.append(P.encode_frame(P.RESULT, self.seq, self._compute()))
        return out

    def idle(self) -> list:
        """The line went quiet: a frame cut short ends with ERR_TIMEOUT."""
        out = []
        if self.state != "IDLE":
            self._error(P.ERR_TIMEOUT, out)
        return out

    def precompute(self, x):
        """Answer the vectors of ``x`` from a table (one batched golden run): the same bytes,
        the same answer; damaged vectors are still computed one by one."""
        i = self.ident
        y = self.golden.run(self.graph, x).reshape(len(x), -1)
        for row, out in zip(x.reshape(len(x), -1), y):
            self.table[P.pack_vector([int(v) for v in row], i.in_bits)] = \
                P.pack_vector([int(v) for v in out], i.out_bits)

    def _compute(self) -> bytes:
        self.computed += 1
        hit = self.table.get(bytes(self.payload))
        if hit is not None:
            return hit
        i = self.ident
        x = np.array(P.unpack_vector(self.payload, i.in_lanes, i.in_bits, i.in_signed))
        y = self.golden.run(self.graph, x.reshape((1,) + tuple(self.graph.input.shape)))
        return P.pack_vector([int(v) for v in y.reshape(-1)], i.out_bits)


def damage(frame: bytes, rng: random.Random, kinds=DAMAGE):
    """``(kind, damaged frame)``: one of ``kinds`` done to ``frame`` (see the module docstring)."""
    kind = rng.choice(kinds)
    d, r = bytearray(frame), rng
    if kind == "flip":
        for _ in range(r.randint(1, 3)):
            d[r.randrange(len(d))] ^= 1 << r.randrange(8)
    elif kind == "drop":
        del d[r.randrange(len(d))]
    elif kind == "dup":
        k = r.randrange(len(d))
        d.insert(k, d[k])
    elif kind == "truncate":
        del d[r.randrange(1, len(d)):]
    elif kind == "lost":
        d.clear()
    elif kind == "garbage":
        junk = bytes(r.choice([P.SOF, 0x00, 0xFF, P.INFER, P.RESULT, r.randrange(256)])
                     for _ in range(r.randint(1, 24)))
        d = bytearray(junk + frame if r.random() < 0.5 else frame + junk)
    elif kind == "length" and len(d) >= P.OVERHEAD:
        body = bytearray(d[1:-P.CRC_BYTES])
        wrong = (body[4] | body[5] << 8) + r.choice([-2, -1, 1, 2, 7, 300])
        body[4], body[5] = wrong & 0xFF, (wrong >> 8) & 0xFF
        d = bytearray([P.SOF]) + body + P.crc32(body).to_bytes(P.CRC_BYTES, "little")
    return kind, bytes(d)


class DamagingPort:
    """Wraps a serial port: every frame written through it is damaged (:func:`damage`) with
    probability ``error_rate`` on its way to the device (the RTL link cosimulation's fuzz)."""

    def __init__(self, port, error_rate, seed=0, kinds=DAMAGE):
        self.port, self.error_rate, self.kinds = port, float(error_rate), tuple(kinds)
        self.rng = random.Random(seed)
        self.name = getattr(port, "name", "port")
        self.frames, self.damage = 0, Counter()

    def write(self, data):
        self.frames += 1
        if self.rng.random() < self.error_rate:
            kind, data = damage(bytes(data), self.rng, self.kinds)
            self.damage[kind] += 1
            if not data:
                return 0
        return self.port.write(data)

    def __getattr__(self, name):          # read, timeout, clock, close: the port's own
        return getattr(self.port, name)

    def __setattr__(self, name, value):
        if name == "timeout":
            setattr(self.port, name, value)
        else:
            super().__setattr__(name, value)


class FuzzPort:
    """A serial port (pyserial's ``write``/``read``/``timeout`` and a ``clock``) between the host
    and a :class:`DeviceModel`, damaging frames in both directions with probability
    ``error_rate`` each. Time is simulated: bytes take ``10 / baud`` s, a read that finds
    nothing waits ``timeout``."""

    name = "fuzz-port"

    def __init__(self, device, *, error_rate=0.1, seed=0, baud=115200, kinds=DAMAGE):
        self.device, self.error_rate, self.baud = device, float(error_rate), baud
        self.rng = random.Random(seed)
        self.kinds = tuple(kinds)
        self.timeout = 0.5
        self.t = 0.0
        self.rx = bytearray()
        self.damage = {"to_device": Counter(), "to_host": Counter()}
        self.frames = Counter()

    def clock(self):
        return self.t

    def _damage(self, frame: bytes, direction: str) -> bytes:
        self.frames[direction] += 1
        if self.rng.random() >= self.error_rate:
            return frame
        kind, frame = damage(frame, self.rng, self.kinds)
        self.damage[direction][kind] += 1
        return frame

    def _deliver(self, replies):
        for frame in replies:
            self.rx += self._damage(frame, "to_host")

    def write(self, data):
        self.t += len(data) * 10 / self.baud
        self._deliver(self.device.feed(self._damage(bytes(data), "to_device")))
        return len(data)

    def read(self, n=1):
        if not self.rx:
            self.t += self.timeout          # the line is quiet for the host's timeout
            self._deliver(self.device.idle())
            if not self.rx:
                return b""
        data = bytes(self.rx[:n])
        del self.rx[:n]
        self.t += len(data) * 10 / self.baud
        return data

    def close(self):
        pass


def fuzz_vectors(graph, n, seed):
    """``n`` random input vectors of ``graph`` (the first all-min, the second all-max)."""
    t = graph.input.dtype
    x = np.random.default_rng(seed).integers(t.min, t.max + 1,
                                             size=(n,) + tuple(graph.input.shape))
    x[0], x[1] = t.min, t.max
    return x


def deliver_and_count(link, graph, x, chunk=1000, progress=None) -> dict:
    """Run the vectors ``x`` through ``link`` (``on_lost="skip"``) ``chunk`` at a time and
    judge every answer against the golden model: ``vectors``, ``delivered``,
    ``wrong_accepted`` (with the first ``wrong_rows``), ``delivered_twice``,
    ``lost_after_retries``; ``progress(vectors done, those counts)`` after every chunk."""
    from ddnhw import golden
    n = len(x)
    want = golden.run(graph, x).reshape(n, -1)
    delivered = wrong = twice = lost = 0
    wrong_rows = []
    for k in range(0, n, chunk):
        xs = x[k:k + chunk].reshape(len(x[k:k + chunk]), -1)
        out, _ = link.infer(xs, on_lost="skip")
        ok = np.ones(len(xs), bool)
        ok[link.last_lost] = False
        twice += int(np.sum(link.last_deliveries > 1))
        lost += len(link.last_lost)
        delivered += int(ok.sum())
        bad = np.flatnonzero(ok & np.any(out != want[k:k + chunk], axis=1))
        wrong += len(bad)
        wrong_rows += [int(k + b) for b in bad[:20 - len(wrong_rows)]]
        if progress is not None:
            progress(k + len(xs), {"delivered": delivered, "wrong_accepted": wrong,
                                   "delivered_twice": twice, "lost_after_retries": lost})
    return {"vectors": n, "delivered": delivered, "wrong_accepted": wrong,
            "wrong_rows": wrong_rows, "delivered_twice": twice, "lost_after_retries": lost}


def fuzz_link(graph, n, *, seed=0, error_rate=0.1, retries=6, window=4, chunk=1000,
              confirm=False, kinds=DAMAGE) -> dict:
    """Run ``n`` random input vectors of ``graph`` through :class:`~ddnhw.host.Link` over a
    :class:`FuzzPort`; every answer delivered is compared with the golden model. Returns the
    counts (see the module docstring). ``confirm``: the link's ``confirm`` mode."""
    from ddnhw.host.link import Link
    ident = P.Ident.for_graph(graph, 0)
    device = DeviceModel(graph, ident)
    port = FuzzPort(device, error_rate=error_rate, seed=seed, kinds=kinds)
    link = Link(port, timeout=0.05, retries=retries, window=window, confirm=confirm)
    got = link.ident()
    assert got == ident, (got, ident)
    x = fuzz_vectors(graph, n, seed)
    device.precompute(x)
    counts = deliver_and_count(link, graph, x, chunk)
    st = link.stats
    damaged = {d: dict(c) for d, c in port.damage.items()}
    frames = sum(port.frames.values())
    return {**counts, "frames_on_wire": dict(port.frames), "frames_damaged": damaged,
            "frame_error_rate": round(sum(sum(c.values()) for c in port.damage.values())
                                      / max(frames, 1), 4),
            "host_frames_sent": st.frames_sent, "retries": st.retries, "timeouts": st.timeouts,
            "device_errors": dict(device.errors), "device_computed": device.computed,
            "host_bad_reply_frames": st.bad_reply_frames, "stale_replies": st.stale_replies,
            # chances for a damaged frame to pass: frames that reached a CRC check and failed
            # it (host decoder + device); each passes with probability 2^-32
            "crc_checks_failed": st.reply_crc_failures + device.errors.get(P.ERRORS[P.ERR_CRC], 0),
            "line_seconds": round(port.t, 3), "vectors_per_line_second": round(n / port.t, 1),
            "baud": port.baud,
            "confirm": confirm, "error_rate": error_rate, "retries_per_frame": retries}
