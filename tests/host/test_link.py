"""Host runtime error paths that need no device (the device side is tested in
tests/board/test_link_cosim.py, where this code drives the RTL)."""
import pytest

from ddnhw import DdnhwError
from ddnhw.board import protocol as P
from ddnhw.cli.main import main
from ddnhw.host import Link


class SilentPort:
    """A serial port with nothing on the other end (or ``noise`` bytes repeated)."""

    def __init__(self, noise=b""):
        self.noise, self.written, self.timeout, self.t = noise, bytearray(), None, 0.0

    def write(self, data):
        self.written += data
        return len(data)

    def read(self, n):
        self.t += self.timeout
        return (self.noise * n)[:n]

    def clock(self):
        return self.t


@pytest.mark.parametrize("noise", [b"", b"\xa5\x82\x01\x00\x00\x00"])  # bad CRC replies
def test_no_answer(noise):
    port = SilentPort(noise)
    link = Link(port, baud=9600, timeout=0.01, retries=2)
    with pytest.raises(DdnhwError, match=r"no answer to IDENT .* after 3 attempts .*"
                                         r"bitstream is loaded"):
        link.ident()
    # three version 2 IDENTs, then a version 1 IDENT: is an old bitstream there?
    assert bytes(port.written) == b"".join(P.encode_frame(P.IDENT, s) for s in (1, 2, 3)) + \
        P.encode_frame_v1(P.IDENT, 0x5A)
    assert link.stats.retries == 2


class V1Board(SilentPort):
    """A board running a protocol version 1 bitstream: a v1 IDENT gets a v1 IDENT_REPLY,
    anything else (a v2 frame reads as a v1 INFER of the wrong length) a v1 ERROR."""

    def __init__(self):
        super().__init__()
        self.out = bytearray()

    def write(self, data):
        super().write(data)
        if bytes(data) == P.encode_frame_v1(P.IDENT, data[2]):
            ident = P.Ident(1, bytes(8), 4, 4, True, 2, 8, True, 1).to_bytes()
            self.out += P.encode_frame_v1(P.IDENT_REPLY, data[2], ident)
        else:
            self.out += P.encode_frame_v1(P.ERROR, data[2], bytes([P.ERR_LENGTH]))
        return len(data)

    def read(self, n):
        if not self.out:
            self.t += self.timeout
        data = bytes(self.out[:n])
        del self.out[:n]
        return data


def test_old_bitstream_is_named():
    link = Link(V1Board(), timeout=0.01, retries=1)
    with pytest.raises(DdnhwError, match=r"speaks link protocol version 1 \(CRC-8 frames\), "
                                         r"this host version 2; rebuild and flash"):
        link.ident()


def test_newer_bitstream_is_named():
    class V3Board(SilentPort):       # frames like v2, but its IDENT says version 3
        def write(self, data):
            frame = P.FrameDecoder().feed(data)[0]
            self.reply = P.encode_frame(P.IDENT_REPLY, frame.seq, P.Ident(
                3, bytes(8), 4, 4, True, 2, 8, True, 1).to_bytes())
            return len(data)

        def read(self, n):
            data, self.reply = self.reply[:n], self.reply[n:]
            return data
    from ddnhw.ir.testing import random_mlp
    with pytest.raises(DdnhwError, match="board speaks link protocol version 3, this host 2"):
        Link(V3Board(), timeout=0.01).check(random_mlp(0, sizes=(4, 2)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="timeout"):
        Link(SilentPort(), timeout=0)
    with pytest.raises(ValueError, match="window"):
        Link(SilentPort(), window=0)


def test_run_missing_port(tmp_path, capsys):
    assert main(["run", "--port", str(tmp_path / "ttyNONE"), "--inputs", "random:3"]) == 2
    err = capsys.readouterr().err
    assert "cannot open serial port" in err and "ttyNONE" in err
