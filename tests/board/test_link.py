"""The framed UART link (UART, parser, framer, LEDs) in Amaranth's simulator, on a tiny core.

The board top cosimulated with the demo model and the host runtime is tests/board/test_link_cosim.py.
"""

import zlib

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from ddnhw.board import protocol as P
from ddnhw.board.link import UARTLink, crc32_update
from ddnhw.board.uart import baud_divisor

from .cores import PairwiseMul

DIV = 4


TINY_IDENT = P.Ident(P.VERSION, bytes(range(8)), 4, 4, True, 2, 8, True, 1)


def tiny():
    return PairwiseMul(2, 4, "mul"), TINY_IDENT  # 4 x int4 in (2 bytes), 2 x int8 out (2 bytes)


def check_link(wire_bytes, n_replies, *, timeout_cycles=40 * 10 * DIV, gap_cycles=0):
    """Send ``wire_bytes`` (a list of byte strings, ``gap_cycles`` apart) into the link;
    return the decoded reply frames (at least ``n_replies``) and the decoder."""
    core, ident = tiny()
    dut = UARTLink(core, ident, divisor=DIV, timeout_cycles=timeout_cycles, led_cycles=50)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    decoder = P.FrameDecoder()
    frames = []

    async def send(ctx):
        for n, chunk in enumerate(wire_bytes):
            if n:
                await ctx.tick().repeat(gap_cycles)
            for byte in chunk:
                for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                    ctx.set(dut.rx, bit)
                    await ctx.tick().repeat(DIV)

    async def receive(ctx):
        while len(frames) < n_replies:
            while ctx.get(dut.tx):
                await ctx.tick()
            await ctx.tick().repeat(DIV // 2)
            bits = []
            for _ in range(9):
                await ctx.tick().repeat(DIV)
                bits.append(ctx.get(dut.tx))
            assert bits[8] == 1, "stop bit"
            frames.extend(decoder.feed(bytes([sum(b << k for k, b in enumerate(bits[:8]))])))

    sim.add_process(send)
    sim.add_testbench(receive)
    sim.run()
    return frames, decoder


def test_crc8_of_protocol_version_1():
    assert P.crc8(b"123456789") == 0xF4  # CRC-8/SMBUS check value
    frame = P.encode_frame_v1(P.RESULT, 7, b"\x01\x02")
    assert P.V1Decoder().feed(b"\x00" + frame) == [P.Frame(P.RESULT, 7, b"\x01\x02")]


def test_crc32_hw_matches_zlib():
    """The RTL's CRC-32 register step against zlib on sample values (the proof over every input
    is tests/formal/test_formal_crc.py); and the frame's CRC through the residue."""
    crc, byte, out = Signal(32), Signal(8), Signal(32)
    m = Module()
    m.d.comb += out.eq(crc32_update(crc, byte))
    sim = Simulator(m)
    M = 0xFFFFFFFF

    async def tb(ctx):
        for c in (0, 1, 0x80000000, 0xDEADBEEF, M):
            for b in (0, 1, 0x7E, 0xA5, 0xFF):
                ctx.set(crc, c)
                ctx.set(byte, b)
                assert ctx.get(out) == ~zlib.crc32(bytes([b]), ~c & M) & M
    sim.add_testbench(tb)
    sim.run()
    assert P.crc32(b"123456789") == 0xCBF43926  # CRC-32/ISO-HDLC check value
    frame = P.encode_frame(P.INFER, 0x1234, b"xyz")
    assert ~zlib.crc32(frame[1:]) & M == P.CRC32_RESIDUE


def test_protocol_roundtrip():
    v = [-8, 7, 0, -1, 3]
    assert P.unpack_vector(P.pack_vector(v, 4), 5, 4, True) == v
    frame = P.encode_frame(P.INFER, 9, b"\x01\x02")
    d = P.FrameDecoder()
    assert d.feed(b"\x00\xA5junk" + frame[:4]) == []
    assert d.feed(frame[4:]) == [P.Frame(P.INFER, 9, b"\x01\x02")]
    ident = TINY_IDENT
    assert P.Ident.from_bytes(ident.to_bytes()) == ident


def test_baud_divisor():
    assert baud_divisor(12e6, 115200) == 104
    assert baud_divisor(25e6, 115200) == 217
    with pytest.raises(ValueError, match="too fast"):
        baud_divisor(12e6, 6e6)
    with pytest.raises(ValueError, match="off"):
        baud_divisor(12e6, 2.6e6)


def test_link_infer_ident_and_errors():
    x = [[1, 2, -3, 4], [-8, -8, 7, 7], [0, 5, 5, 0]]
    good = [P.encode_frame(P.INFER, 10 + k + 0x300 * k, P.pack_vector(v, 4))
            for k, v in enumerate(x)]
    seqs = [10, 11 + 0x300, 12 + 0x600]               # 16-bit SEQs, echoed whole
    bad_crc = bytearray(good[0])
    bad_crc[-1] ^= 0x01
    wire = [b"\x00\x13" + P.encode_frame_v1(P.IDENT, 3) + good[0],  # garbage, a v1 frame, a frame
            P.encode_frame(P.IDENT, 77),
            P.encode_frame(0x33, 4),                     # unknown type
            bytes(bad_crc),
            P.encode_frame(P.INFER, 5, b"\x00"),         # wrong length
            good[1][:-3],                                # truncated: timeout
            good[1] + good[2]]                           # back to back
    frames, decoder = check_link(wire, 9, gap_cycles=(50 * 10 * DIV))
    kinds = [(f.type, f.seq) for f in frames]
    assert kinds == [(P.ERROR, 0), (P.RESULT, seqs[0]), (P.IDENT_REPLY, 77), (P.ERROR, 0),
                     (P.ERROR, seqs[0]), (P.ERROR, 5), (P.ERROR, seqs[1]), (P.RESULT, seqs[1]),
                     (P.RESULT, seqs[2])]
    codes = [f.payload[0] for f in frames if f.type == P.ERROR]
    assert codes == [P.ERR_VERSION, P.ERR_TYPE, P.ERR_CRC, P.ERR_LENGTH, P.ERR_TIMEOUT]
    results = [P.unpack_vector(f.payload, 2, 8, True) for f in frames if f.type == P.RESULT]
    assert results == [[v[0] * v[1], v[2] * v[3]] for v in x]
    assert P.Ident.from_bytes(frames[2].payload) == TINY_IDENT
    assert decoder.bad_frames == 0 and decoder.dropped_bytes == 0   # every reply well formed


def test_link_rejects_damaged_frames_of_every_kind():
    """Damage of every kind the fuzzer does, inside a frame (a flipped bit, a dropped or
    duplicated byte, a wrong LEN with a valid CRC, cut short, two bytes swapped): each frame
    gets an ERROR with its code, never a RESULT; the intact frame after them a RESULT."""
    frame = P.encode_frame(P.INFER, 0x4242, P.pack_vector([3, -2, 7, -8], 4))
    k = P.HEADER_BYTES                                   # the first payload byte
    body = bytearray(frame[1:-P.CRC_BYTES])
    body[4] += 1                                         # LEN 3 instead of 2
    wire = [frame[:k] + bytes([frame[k] ^ 0x08]) + frame[k + 1:],
            frame[:k] + frame[k + 1:],
            frame[:k] + frame[k:k + 1] + frame[k:],
            bytes([P.SOF]) + body + P.crc32(body).to_bytes(4, "little"),
            frame[:6],
            frame[:k] + frame[k + 1:k + 2] + frame[k:k + 1] + frame[k + 2:],
            frame]
    frames, _ = check_link(wire, 7, gap_cycles=(50 * 10 * DIV))
    assert [(f.type, f.payload[0] if f.type == P.ERROR else None) for f in frames] == [
        (P.ERROR, P.ERR_CRC), (P.ERROR, P.ERR_TIMEOUT), (P.ERROR, P.ERR_CRC),
        (P.ERROR, P.ERR_LENGTH), (P.ERROR, P.ERR_TIMEOUT), (P.ERROR, P.ERR_CRC),
        (P.RESULT, None)], frames
    assert frames[-1].payload == P.pack_vector([-6, -56], 8) and frames[-1].seq == 0x4242
