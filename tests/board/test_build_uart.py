"""Synthesis of the UART board top (the product): it fits, meets timing, and the same inputs give
the same bitstream."""
import pytest

from ddnhw.board import build
from ddnhw.board.link import BoardTop
from ddnhw.board.protocol import VERSION, Ident

from .cores import adder4

pytestmark = pytest.mark.synth

IDENT = Ident(VERSION, bytes(range(8)), 8, 8, True, 4, 9, True, 1)   # adder4's ports


def uart_top(core, profile):
    return BoardTop(core, IDENT, uart=profile.uart, led=profile.led)


def test_build_uart_top_deterministic(tmp_path):
    reports = [build(adder4(), "icebreaker", tmp_path / str(k), top=uart_top) for k in range(2)]
    bits = [open(r["bitstream"], "rb").read() for r in reports]
    assert bits[0] == bits[1]
    assert reports[0]["timing_met"] and reports[0]["fmax_mhz"] > 12
    assert reports[0]["io"] >= 4                  # clock, rx, tx, LEDs
    assert 200 < reports[0]["luts"] < 1500


@pytest.mark.parametrize("baud", [115200, 1_000_000])
def test_board_top_divisor(baud):
    from ddnhw.board.uart import baud_divisor
    assert baud_divisor(12e6, baud) == round(12e6 / baud)
