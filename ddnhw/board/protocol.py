"""The host <-> board link protocol: framing, CRC, vector packing (no HDL).

This module is the one written statement of the protocol; the board top
(:mod:`ddnhw.board.link`) implements the device side in hardware and the host runtime
(:mod:`ddnhw.host`) the host side with these functions. ``boards/PROTOCOL.md`` repeats it.

UART: 8 data bits, no parity, 1 stop bit (8N1), LSB first; default 115200 baud.

Frame (both directions), protocol version 2::

    SOF  VER  TYPE  SEQ_LO  SEQ_HI  LEN_LO  LEN_HI  PAYLOAD[LEN]  CRC0 CRC1 CRC2 CRC3

- ``SOF`` = 0xA5. Bytes before a SOF are ignored (that is how both ends resynchronize).
- ``VER`` = 2, the protocol version. A device answers a frame of another version (a v1 host
  sends its TYPE here) with ``ERROR`` ``ERR_VERSION``; a SOF where the VER belongs restarts the
  frame.
- ``TYPE``: host -> device ``IDENT`` (0x01, LEN 0) and ``INFER`` (0x02, LEN = input bytes);
  device -> host ``IDENT_REPLY`` (0x81), ``RESULT`` (0x82, LEN = output bytes) and
  ``ERROR`` (0xE0, LEN 1: the error code).
- ``SEQ``: 16 bits chosen by the host, little-endian; the device echoes it in the reply to that
  frame (in an ``ERROR`` reply: the SEQ received so far, 0 if the header was incomplete).
- ``LEN``: payload length in bytes, little-endian.
- ``CRC``: CRC-32 (IEEE 802.3, as ``zlib.crc32``: reflected polynomial 0xEDB88320, initial
  value and final XOR 0xFFFFFFFF), little-endian, over ``VER TYPE SEQ LEN PAYLOAD``. Over
  frames up to 371 bytes it detects every error of up to 4 flipped bits (and every burst up
  to 32 bits); any other damage (a dropped, duplicated or inserted byte, a frame cut short,
  garbage taken for a frame) passes with probability 2^-32 per check.

Version 1 (until 2026-11) framed ``SOF TYPE SEQ LEN_LO LEN_HI PAYLOAD CRC8`` with an 8-bit
SEQ and a CRC-8 (poly 0x07), which passes about 1 in 256 damaged frames; a v2 host that gets no
v2 answer probes with a v1 ``IDENT`` (:func:`encode_frame_v1`) and names the version it finds.

Vectors: the lanes' two's complement fields are concatenated, lane 0 in the least significant
bits, and sent as little-endian bytes (the last byte zero-padded): exactly the bits of the
core's ``ArrayLayout`` payload (:mod:`ddnhw.hw.lanes` packs them). 64 lanes of 4 bits are 32
bytes.

``IDENT_REPLY`` payload (17 bytes): protocol version (2), the first 8 bytes of the model's
graph SHA-256, input lanes (2, LE), input bits | signed << 7 (1), output lanes (2, LE),
output bits | signed << 7 (1), latency in cycles (2, LE).

The device answers every frame it receives in full with exactly one reply, in the order the
frames arrived: ``RESULT``/``IDENT_REPLY`` or ``ERROR`` with a code: ``ERR_CRC`` (1, bad CRC),
``ERR_TYPE`` (2, unknown type), ``ERR_LENGTH`` (3, wrong LEN for the type), ``ERR_TIMEOUT``
(4, the frame stopped arriving for longer than the inter-byte timeout: a truncated frame),
``ERR_BUSY`` (5, an input vector arrived while the previous one still waited for the core),
``ERR_VERSION`` (6, the VER byte is not 2). After an error the device hunts for the next
SOF. The host retries frames whose reply is missing or an error; it accepts a reply only with
a good CRC, the version, a type and length legal for it, and the SEQ of a frame in flight.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ddnhw.hw.lanes import Lanes, pack_bytes, unpack_bytes

__all__ = ["SOF", "IDENT", "INFER", "IDENT_REPLY", "RESULT", "ERROR", "ERRORS",
           "ERR_CRC", "ERR_TYPE", "ERR_LENGTH", "ERR_TIMEOUT", "ERR_BUSY", "ERR_VERSION",
           "VERSION", "HEADER_BYTES", "CRC_BYTES", "OVERHEAD", "CRC32_RESIDUE", "crc32", "crc8",
           "encode_frame", "encode_frame_v1", "FrameDecoder", "V1Decoder", "Frame",
           "pack_vector", "unpack_vector", "vector_bytes", "Ident", "lane_code"]

SOF = 0xA5
IDENT, INFER = 0x01, 0x02
IDENT_REPLY, RESULT, ERROR = 0x81, 0x82, 0xE0
ERR_CRC, ERR_TYPE, ERR_LENGTH, ERR_TIMEOUT, ERR_BUSY, ERR_VERSION = 1, 2, 3, 4, 5, 6
ERRORS = {ERR_CRC: "bad CRC", ERR_TYPE: "unknown frame type", ERR_LENGTH: "wrong length",
          ERR_TIMEOUT: "truncated frame (inter-byte timeout)", ERR_BUSY: "core busy",
          ERR_VERSION: "other protocol version"}
VERSION = 2
HEADER_BYTES = 7          # SOF VER TYPE SEQ_LO SEQ_HI LEN_LO LEN_HI
CRC_BYTES = 4
OVERHEAD = HEADER_BYTES + CRC_BYTES
IDENT_BYTES = 17
MAX_LEN = 0xFFFF
# the CRC register (before the final XOR) after a frame body and its own CRC, little-endian:
# what the device's parser checks instead of comparing four bytes
CRC32_RESIDUE = 0xDEBB20E3


def crc32(data, crc=0) -> int:
    """CRC-32 (IEEE 802.3, ``zlib.crc32``) of ``data``, continuing from ``crc``."""
    return zlib.crc32(bytes(data), crc)


def encode_frame(ftype: int, seq: int, payload=b"", version=VERSION) -> bytes:
    """One complete frame (``version``: only to make frames of another version in tests)."""
    payload = bytes(payload)
    if not (0 <= ftype <= 0xFF and 0 <= seq <= 0xFFFF):
        raise ValueError(f"frame type {ftype!r} must be a byte and seq {seq!r} 16 bits")
    if len(payload) > MAX_LEN:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_LEN}")
    body = bytes([version, ftype, seq & 0xFF, seq >> 8, len(payload) & 0xFF,
                  len(payload) >> 8]) + payload
    return bytes([SOF]) + body + crc32(body).to_bytes(4, "little")


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


class FrameDecoder:
    """Incremental decoder: ``feed(bytes)`` returns the complete, CRC-checked frames.

    Bytes outside frames and frames with a bad CRC, another version or a length above
    ``max_len`` (or, given ``lengths``, a type or length not in it) are skipped (counted in
    ``dropped_bytes``, ``bad_frames`` and, of those, ``crc_failures``: the frames that reached
    the CRC check and failed it); decoding resumes at the byte after the bad frame's SOF.
    """

    def __init__(self, max_len=1024, lengths=None):
        self.max_len = max_len
        # {frame type: its only legal LEN}: a header that breaks it is skipped at once,
        # instead of waiting for a frame that a damaged LEN made long
        self.lengths = lengths
        self.buf = bytearray()
        self.dropped_bytes = 0
        self.bad_frames = 0
        self.crc_failures = 0

    def feed(self, data) -> list:
        self.buf += data
        frames = []
        buf = self.buf
        while True:
            start = buf.find(SOF)
            if start < 0:
                self.dropped_bytes += len(buf)
                buf.clear()
                return frames
            if start:
                self.dropped_bytes += start
                del buf[:start]
            if len(buf) < HEADER_BYTES:
                if len(buf) >= 2 and buf[1] != VERSION:
                    self.bad_frames += 1
                    del buf[:1]
                    continue
                return frames
            length = buf[5] | buf[6] << 8
            if buf[1] != VERSION or length > self.max_len or (
                    self.lengths is not None and self.lengths.get(buf[2]) != length):
                self.bad_frames += 1
                del buf[:1]
                continue
            total = HEADER_BYTES + length + CRC_BYTES
            if len(buf) < total:
                return frames
            body = bytes(buf[1:total - CRC_BYTES])
            if zlib.crc32(body) != int.from_bytes(buf[total - CRC_BYTES:total], "little"):
                self.bad_frames += 1
                self.crc_failures += 1
                del buf[:1]
                continue
            frames.append(Frame(body[1], body[2] | body[3] << 8, body[6:]))
            del buf[:total]


# -- version 1 (CRC-8 frames): only to recognize an old bitstream ---------------------------

def _crc8_byte(crc: int) -> int:
    for _ in range(8):
        crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


_CRC8 = bytes(_crc8_byte(v) for v in range(256))


def crc8(data, crc=0) -> int:
    """CRC-8/SMBUS (poly 0x07, init 0, not reflected) of ``data``, continuing from ``crc``
    (protocol version 1)."""
    table = _CRC8
    for byte in bytes(data):
        crc = table[crc ^ byte]
    return crc


def encode_frame_v1(ftype: int, seq: int, payload=b"") -> bytes:
    """A protocol version 1 frame (``SOF TYPE SEQ LEN_LO LEN_HI PAYLOAD CRC8``)."""
    payload = bytes(payload)
    body = bytes([ftype, seq & 0xFF, len(payload) & 0xFF, len(payload) >> 8]) + payload
    return bytes([SOF]) + body + bytes([crc8(body)])


class V1Decoder:
    """Finds complete, CRC-8-checked version 1 device frames (IDENT_REPLY, RESULT, ERROR) in
    bytes: what an old bitstream answers."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data) -> list:
        self.buf += data
        frames, buf, k = [], self.buf, 0
        while (k := buf.find(SOF, k)) >= 0 and len(buf) - k >= 6:
            ftype, length = buf[k + 1], buf[k + 3] | buf[k + 4] << 8
            end = k + 5 + length + 1
            if ftype in (IDENT_REPLY, RESULT, ERROR) and length <= 1024 and end <= len(buf) \
                    and crc8(buf[k + 1:end - 1]) == buf[end - 1]:
                frames.append(Frame(ftype, buf[k + 2], bytes(buf[k + 5:end - 1])))
                k = end
            else:
                k += 1
        return frames


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
