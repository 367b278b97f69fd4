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
    assert bytes(port.written) == b"".join(P.encode_frame(P.IDENT, s) for s in (1, 2, 3))
    assert link.stats.retries == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="timeout"):
        Link(SilentPort(), timeout=0)
    with pytest.raises(ValueError, match="window"):
        Link(SilentPort(), window=0)


def test_run_missing_port(tmp_path, capsys):
    assert main(["run", "--port", str(tmp_path / "ttyNONE"), "--inputs", "random:3"]) == 2
    err = capsys.readouterr().err
    assert "cannot open serial port" in err and "ttyNONE" in err
