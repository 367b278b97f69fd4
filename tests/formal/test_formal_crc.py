"""Proofs about the link's CRC-32 (protocol version 2), by exhaustion over a basis.

1. The RTL's register step (:func:`ddnhw.board.link.crc32_update`, XOR gates only) equals
   zlib's CRC-32 for every one of the 2^40 (register, byte) inputs: both are linear over GF(2)
   in the 40 input bits, so agreeing on the 40 unit vectors (and on zero) is agreement on all.
   The RTL side is linear by construction (checked: only XOR/wiring), zlib's register step is
   ``~crc32(byte, ~reg)``, whose linearity is checked on random pairs.
2. Hamming distance: over every frame of up to 371 bytes (SOF excluded: up to 2,968 bits of
   body and CRC), no error of 1 to 4 flipped bits leaves a valid CRC. Undetected error patterns
   are exactly the sets of bit positions whose syndromes XOR to zero; we check every single,
   pair, triple (pair == single) and quadruple (pair == pair) at the longest length, which
   covers every shorter frame (a shorter frame's error pattern is the same pattern in a longer
   one, shifted: the CRC is a polynomial remainder).

The residual probability the README argues from (2^-32 for any other damage) is the fraction
of error patterns with a zero syndrome among the 2^n - 1 nonzero ones when the syndrome map
is onto, which it is (the 32 CRC bits alone span it).
"""
import random
import zlib

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from ddnhw.board import protocol as P
from ddnhw.board.link import crc32_update

M = 0xFFFFFFFF


def _zlib_step(reg, byte):
    return ~zlib.crc32(bytes([byte]), ~reg & M) & M


def test_rtl_crc32_step_equals_zlib_for_every_input():
    rng = random.Random(0)
    for _ in range(200):           # zlib's register step is linear (so a basis decides)
        r1, r2, b1, b2 = rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(8), \
            rng.getrandbits(8)
        assert _zlib_step(r1 ^ r2, b1 ^ b2) == _zlib_step(r1, b1) ^ _zlib_step(r2, b2)
    crc, byte, out = Signal(32), Signal(8), Signal(32)
    m = Module()
    m.d.comb += out.eq(crc32_update(crc, byte))
    from amaranth.back import rtlil
    text = rtlil.convert(m, ports=[crc, byte, out])
    cells = {line.split()[1] for line in text.splitlines() if line.strip().startswith("cell ")}
    assert cells <= {"$xor", "$pos", "$not"}, cells        # linear by construction
    basis = [(1 << k, 0) for k in range(32)] + [(0, 1 << k) for k in range(8)] + [(0, 0)]
    sim = Simulator(m)

    async def tb(ctx):
        for r, b in basis:
            ctx.set(crc, r)
            ctx.set(byte, b)
            assert ctx.get(out) == _zlib_step(r, b), (hex(r), hex(b))
    sim.add_testbench(tb)
    sim.run()


def _syndromes(nbytes):
    """Syndrome (the CRC check's difference) of each bit of a frame body of ``nbytes`` bytes
    followed by its 4 CRC bytes: an error pattern passes iff its syndromes XOR to 0."""
    zero = bytes(nbytes)
    c0 = zlib.crc32(zero)
    s = []
    for i in range(nbytes * 8):
        e = bytearray(zero)
        e[i // 8] ^= 1 << (i % 8)
        s.append(zlib.crc32(bytes(e)) ^ c0)
    s += [1 << k for k in range(32)]        # a flipped CRC bit
    return np.array(s, dtype=np.uint32)


def test_crc32_detects_every_error_of_up_to_four_bits_in_frames_up_to_371_bytes():
    body = 371 - 1 - P.CRC_BYTES              # bytes after the SOF, before the CRC
    s = _syndromes(body)
    n = len(s)
    assert n == 8 * (371 - 1)
    assert np.all(s != 0) and len(np.unique(s)) == n                 # weights 1 and 2
    i, j = np.triu_indices(n, 1)
    pairs = s[i] ^ s[j]
    assert not np.isin(pairs, s, kind="sort").any()                     # weight 3
    assert len(np.unique(pairs)) == len(pairs)                        # weight 4
