"""Lane packing: the one place that turns rows of lane values into payload bits and back.

A payload of ``lanes`` lanes of ``bits`` bits (an ``ArrayLayout``'s bits, a frame's vector bytes,
a line of a ``$readmemh`` file) is the lanes' two's complement fields concatenated, lane ``k`` at
bits ``[k*bits, (k+1)*bits)``, lane 0 at the LSB. :func:`pack_bytes` and :func:`unpack_bytes` do
the work on whole batches with NumPy (a million rows well under a second); the other functions
are views of the same bytes: Python ints (:func:`pack_words`), hex strings (:func:`pack_hex`).
Packing masks each value to ``bits`` bits; :meth:`Lanes.check` is the range check.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ddnhw import DdnhwError
from ddnhw.fixedpoint import int_range

__all__ = ["Lanes", "as_rows", "pack_bytes", "unpack_bytes", "pack_words", "unpack_words", "pack_hex",
           "unpack_hex"]


@dataclass(frozen=True)
class Lanes:
    """``lanes`` integers of ``bits`` bits each, two's complement if ``signed``."""

    lanes: int
    bits: int
    signed: bool

    def __post_init__(self):
        if not isinstance(self.lanes, int) or self.lanes < 1:
            raise ValueError(f"lanes must be a positive int, not {self.lanes!r}")
        if not isinstance(self.bits, int) or not 1 <= self.bits <= 63:
            raise ValueError(f"bits must be an int in 1..63, not {self.bits!r}")

    @property
    def width(self) -> int:
        return self.lanes * self.bits

    @property
    def nbytes(self) -> int:
        return (self.width + 7) // 8

    lo = property(lambda self: int_range(self.signed, self.bits)[0], doc="The smallest value.")
    hi = property(lambda self: int_range(self.signed, self.bits)[1], doc="The largest value.")

    def rows(self, values) -> np.ndarray:
        """:func:`as_rows` that raises ``ValueError`` on another lane count."""
        v = as_rows(values, self.lanes)
        if v.shape[1] != self.lanes:
            raise ValueError(f"expected {self.lanes} lanes per vector, got {v.shape[1]}")
        return v

    def check(self, values) -> np.ndarray:
        """:meth:`rows` that also raises ``ValueError`` on a value outside ``[lo, hi]``."""
        v = self.rows(values)
        if v.size and (v.min() < self.lo or v.max() > self.hi):
            raise ValueError(f"input values outside [{self.lo}, {self.hi}] "
                             f"({'signed' if self.signed else 'unsigned'} {self.bits} bits)")
        return v


def as_rows(values, lanes: int) -> np.ndarray:
    """``(N, k)`` int64 from ``(N,)`` (single lane), ``(N, lanes)`` or ``(N, *shape)``."""
    v = np.asarray(values, dtype=np.int64)
    if v.ndim == 1 and lanes == 1:
        return v[:, None]
    if v.ndim == 0:
        raise ValueError("expected a batch of vectors, got a scalar")
    return v.reshape(v.shape[0], -1) if v.size else v.reshape(v.shape[0], lanes)


def _lane_dtype(bits):
    """The narrowest unsigned NumPy type of a ``bits``-bit lane: the bit expansions of
    :func:`pack_bytes`/:func:`unpack_bytes` are N x lanes x bits elements, so their element
    size is most of the cost."""
    return next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64)
                if np.iinfo(t).bits >= bits)


def pack_bytes(values, lanes: Lanes) -> np.ndarray:
    """Rows ``(N, lanes)`` to ``(N, nbytes)`` uint8, little-endian, the last byte zero-padded.

    Every value is masked to ``bits`` bits (no range check: see :meth:`Lanes.check`)."""
    v = lanes.rows(values)
    n = v.shape[0]
    dt = _lane_dtype(lanes.bits)
    u = (v & ((1 << lanes.bits) - 1)).astype(dt)
    bits = ((u[:, :, None] >> np.arange(lanes.bits, dtype=dt)) & 1).astype(np.uint8)
    bits = bits.reshape(n, lanes.width)
    pad = lanes.nbytes * 8 - lanes.width
    if pad:
        bits = np.concatenate([bits, np.zeros((n, pad), np.uint8)], axis=1)
    return np.packbits(bits, axis=1, bitorder="little")


def unpack_bytes(data, lanes: Lanes) -> np.ndarray:
    """``(N, k)`` little-endian bytes to ``(N, lanes)`` int64 (sign-extended if signed).

    Rows shorter than ``nbytes`` are zero-extended; bits above ``width`` are ignored."""
    by = np.asarray(data, dtype=np.uint8)
    by = by.reshape(len(by), -1)
    n, k = by.shape
    if k < lanes.nbytes:
        by = np.concatenate([by, np.zeros((n, lanes.nbytes - k), np.uint8)], axis=1)
    bits = np.unpackbits(by[:, :lanes.nbytes], axis=1, bitorder="little")[:, :lanes.width]
    dt = _lane_dtype(lanes.bits)
    bits = bits.reshape(n, lanes.lanes, lanes.bits).astype(dt)
    out = (bits << np.arange(lanes.bits, dtype=dt)).sum(axis=2, dtype=dt).astype(np.int64)
    if lanes.signed:
        m = np.int64(1 << (lanes.bits - 1))
        out = (out ^ m) - m
    return out


def pack_words(values, lanes: Lanes) -> list[int]:
    """Rows to payload integers (what a simulator sets on a ``width``-bit port)."""
    return [int.from_bytes(row.tobytes(), "little") for row in pack_bytes(values, lanes)]


# below this many rows the per-beat callers (simulator monitors) go faster in plain Python
# than through NumPy's bit expansion
_FEW_ROWS = 8


def _unpack_few(words, lanes: Lanes) -> np.ndarray:
    """:func:`unpack_words` of a few payload integers, lane by lane in Python integers."""
    mask, sign = (1 << lanes.bits) - 1, 1 << (lanes.bits - 1)
    out = np.empty((len(words), lanes.lanes), np.int64)
    for r, w in enumerate(words):
        for k in range(lanes.lanes):
            v = (int(w) >> (k * lanes.bits)) & mask
            out[r, k] = v - ((v & sign) << 1) if lanes.signed else v
    return out


def unpack_words(words, lanes: Lanes) -> np.ndarray:
    """Payload integers (non-negative; bits above ``width`` ignored) to ``(N, lanes)`` int64."""
    if len(words) <= _FEW_ROWS:
        return _unpack_few(words, lanes)
    mask = (1 << lanes.width) - 1
    raw = b"".join((int(w) & mask).to_bytes(lanes.nbytes, "little") for w in words)
    return unpack_bytes(np.frombuffer(raw, np.uint8).reshape(-1, lanes.nbytes), lanes)


def pack_hex(values, lanes: Lanes) -> list[str]:
    """Rows to hex strings of ``ceil(width / 4)`` digits (``$readmemh``'s format)."""
    digits = (lanes.width + 3) // 4
    return [row[::-1].tobytes().hex()[-digits:] for row in pack_bytes(values, lanes)]


def unpack_hex(lines, lanes: Lanes) -> np.ndarray:
    """Hex strings (as ``$fwrite("%h")`` writes them) to ``(N, lanes)`` int64; a line that is
    not clean hex (X or Z bits) raises a :class:`DdnhwError` naming the beat."""
    nb = lanes.nbytes
    if not len(lines):
        return np.zeros((0, lanes.lanes), np.int64)
    if len(lines) <= _FEW_ROWS and all(_is_hex(h.strip()) for h in lines):
        return _unpack_few([int(h.strip(), 16) for h in lines], lanes)
    try:
        raw = b"".join(bytes.fromhex(h.strip().rjust(2 * nb, "0")[-2 * nb:])[::-1] for h in lines)
    except ValueError:
        bad = next(i for i, h in enumerate(lines) if not _is_hex(h.strip()))
        raise DdnhwError(f"cosim: output beat {bad} is not a clean hex value: {lines[bad].strip()!r} "
                         "(X/Z on o__payload while o__valid?)") from None
    return unpack_bytes(np.frombuffer(raw, np.uint8).reshape(len(lines), nb), lanes)


def _is_hex(s: str) -> bool:
    try:
        int(s, 16)
        return True
    except ValueError:
        return False
