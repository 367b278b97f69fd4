"""The host <-> board link protocol: framing, CRC, vector packing (no HDL).

This module is the one written statement of the protocol; the board top
(:mod:`ddnhw.board.link`) implements the device side in hardware and the host runtime
(:mod:`ddnhw.host`) the host side with these functions. ``boards/PROTOCOL.md`` repeats it.

UART: 8 data bits, no parity, 1 stop bit (8N1), LSB first; default 115200 baud.

Frame (both directions)::

    SOF  TYPE  SEQ  LEN_LO  LEN_HI  PAYLOAD[LEN]  CRC

- ``SOF`` = 0xA5. Bytes before a SOF are ignored (that is how the device resynchronizes).
- ``TYPE``: host -> device ``IDENT`` (0x01, LEN 0) and ``INFER`` (0x02, LEN = input bytes);
  device -> host ``IDENT_REPLY`` (0x81), ``RESULT`` (0x82, LEN = output bytes) and
  ``ERROR`` (0xE0, LEN 1: the error code).
- ``SEQ``: any byte chosen by the host; the device echoes it in the reply to that frame
  (in an ``ERROR`` reply: the SEQ received so far, 0 if the header was incomplete).
- ``LEN``: payload length in bytes, little-endian.
- ``CRC``: CRC-8, polynomial 0x07, initial value 0, not reflected, no final XOR
  (CRC-8/SMBUS), over ``TYPE SEQ LEN_LO LEN_HI PAYLOAD``.

Vectors: the lanes' two's complement fields are concatenated, lane 0 in the least significant
bits, and sent as little-endian bytes (the last byte zero-padded): exactly the bits of the
core's ``ArrayLayout`` payload (:mod:`ddnhw.hw.lanes` packs them). 64 lanes of 4 bits are 32
bytes.

``IDENT_REPLY`` payload (17 bytes): protocol version (1), the first 8 bytes of the model's
graph SHA-256, input lanes (2, LE), input bits | signed << 7 (1), output lanes (2, LE),
output bits | signed << 7 (1), latency in cycles (2, LE).

The device answers every frame it receives in full with exactly one reply, in the order the
frames arrived: ``RESULT``/``IDENT_REPLY`` or ``ERROR`` with a code: ``ERR_CRC`` (1, bad CRC),
``ERR_TYPE`` (2, unknown type), ``ERR_LENGTH`` (3, wrong LEN for the type), ``ERR_TIMEOUT``
(4, the frame stopped arriving for longer than the inter-byte timeout: a truncated frame),
``ERR_BUSY`` (5, an input vector arrived while the previous one still waited for the core).
A SOF received where a TYPE is expected restarts the frame. After an error the device hunts
for the next SOF. The host retries frames whose reply is missing or an error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ddnhw.hw.lanes import Lanes, pack_bytes, unpack_bytes

__all__ = ["SOF", "IDENT", "INFER", "IDENT_REPLY", "RESULT", "ERROR", "ERRORS",
           "ERR_CRC", "ERR_TYPE", "ERR_LENGTH", "ERR_TIMEOUT", "ERR_BUSY", "VERSION",
           "HEADER_BYTES", "crc8", "encode_frame", "FrameDecoder", "Frame", "pack_vector",
           "unpack_vector", "vector_bytes", "Ident", "lane_code"]

SOF = 0xA5
IDENT, INFER = 0x01, 0x02
IDENT_REPLY, RESULT, ERROR = 0x81, 0x82, 0xE0
ERR_CRC, ERR_TYPE, ERR_LENGTH, ERR_TIMEOUT, ERR_BUSY = 1, 2, 3, 4, 5
ERRORS = {ERR_CRC: "bad CRC", ERR_TYPE: "unknown frame type", ERR_LENGTH: "wrong length",
          ERR_TIMEOUT: "truncated frame (inter-byte timeout)", ERR_BUSY: "core busy"}
VERSION = 1
HEADER_BYTES = 5          # SOF TYPE SEQ LEN_LO LEN_HI
IDENT_BYTES = 17
MAX_LEN = 0xFFFF


def _crc8_byte(crc: int) -> int:
    for _ in range(8):
        crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


_CRC8 = bytes(_crc8_byte(v) for v in range(256))


def crc8(data, crc=0) -> int:
    """CRC-8/SMBUS (poly 0x07, init 0, not reflected) of ``data``, continuing from ``crc``."""
    table = _CRC8
    for byte in bytes(data):
        crc = table[crc ^ byte]
    return crc


def encode_frame(ftype: int, seq: int, payload=b"") -> bytes:
    """One complete frame."""
    payload = bytes(payload)
    if not (0 <= ftype <= 0xFF and 0 <= seq <= 0xFF):
        raise ValueError(f"frame type {ftype!r} and seq {seq!r} must be bytes")
    if len(payload) > MAX_LEN:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_LEN}")
    body = bytes([ftype, seq, len(payload) & 0xFF, len(payload) >> 8]) + payload
    return bytes([SOF]) + body + bytes([crc8(body)])


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


class FrameDecoder:
    """Incremental decoder: ``feed(bytes)`` returns the complete, CRC-checked frames.

    Bytes outside frames and frames with a bad CRC or a length above ``max_len`` (or, given
    ``lengths``, a type or length not in it) are skipped (counted in ``dropped_bytes`` and
    ``bad_frames``); decoding resumes at the byte after the bad frame's SOF.
    """

    def __init__(self, max_len=1024, lengths=None):
        self.max_len = max_len
        # {frame type: its only legal LEN}: a header that breaks it is skipped at once,
        # instead of waiting for a frame that a damaged LEN made long
        self.lengths = lengths
        self.buf = bytearray()
        self.dropped_bytes = 0
        self.bad_frames = 0

    def feed(self, data) -> list:
        self.buf += data
        frames = []
        while True:
            start = self.buf.find(SOF)
            if start < 0:
                self.dropped_bytes += len(self.buf)
                self.buf.clear()
                return frames
            if start:
                self.dropped_bytes += start
                del self.buf[:start]
            if len(self.buf) < HEADER_BYTES:
                return frames
            length = self.buf[3] | self.buf[4] << 8
            if length > self.max_len or (self.lengths is not None
                                         and self.lengths.get(self.buf[1]) != length):
                self.bad_frames += 1
                del self.buf[:1]
                continue
            total = HEADER_BYTES + length + 1
            if len(self.buf) < total:
                return frames
            body = bytes(self.buf[1:total - 1])
            if crc8(body) != self.buf[total - 1]:
                self.bad_frames += 1
                del self.buf[:1]
                continue
            frames.append(Frame(body[0], body[1], body[4:]))
            del self.buf[:total]


def vector_bytes(lanes: int, bits: int) -> int:
    """Bytes of a packed vector."""
    return (lanes * bits + 7) // 8


def pack_vector(values, bits: int) -> bytes:
    """Lanes (ints) as the concatenated ``bits``-wide two's complement fields, LSB first."""
    return pack_bytes([values], Lanes(len(values), bits, False))[0].tobytes()


def unpack_vector(data, lanes: int, bits: int, signed: bool) -> list:
    """Inverse of :func:`pack_vector`."""
    raw = np.frombuffer(bytes(data), np.uint8)
    return unpack_bytes(raw[None, :], Lanes(lanes, bits, signed))[0].tolist()


def lane_code(bits: int, signed: bool) -> int:
    return (bits & 0x7F) | (0x80 if signed else 0)


@dataclass(frozen=True)
class Ident:
    """What the device says it is (the ``IDENT_REPLY`` payload)."""

    version: int
    graph_hash: bytes      # first 8 bytes of the graph SHA-256
    in_lanes: int
    in_bits: int
    in_signed: bool
    out_lanes: int
    out_bits: int
    out_signed: bool
    latency: int

    def to_bytes(self) -> bytes:
        return (bytes([self.version]) + bytes(self.graph_hash)
                + self.in_lanes.to_bytes(2, "little") + bytes([lane_code(self.in_bits,
                                                                        self.in_signed)])
                + self.out_lanes.to_bytes(2, "little")
                + bytes([lane_code(self.out_bits, self.out_signed)])
                + self.latency.to_bytes(2, "little"))

    @classmethod
    def from_bytes(cls, data) -> "Ident":
        d = bytes(data)
        if len(d) != IDENT_BYTES:
            raise ValueError(f"IDENT reply has {len(d)} bytes, expected {IDENT_BYTES}")
        return cls(version=d[0], graph_hash=d[1:9],
                   in_lanes=int.from_bytes(d[9:11], "little"), in_bits=d[11] & 0x7F,
                   in_signed=bool(d[11] & 0x80), out_lanes=int.from_bytes(d[12:14], "little"),
                   out_bits=d[14] & 0x7F, out_signed=bool(d[14] & 0x80),
                   latency=int.from_bytes(d[15:17], "little"))

    @classmethod
    def for_graph(cls, graph, latency: int) -> "Ident":
        """The identity of the board top built from ``graph``: the hash is of what it computes
        (not of its ``hw`` annotations, so the plain model file identifies the design)."""
        from ddnhw.lower.network import graph_sha256
        ti, to = graph.input.dtype, graph.output.dtype
        return cls(VERSION, bytes.fromhex(graph_sha256(graph, hw=False))[:8],
                   int(graph.input.shape[0]), int(ti.bits), bool(ti.signed),
                   int(graph.output.shape[0]), int(to.bits), bool(to.signed), int(latency))
