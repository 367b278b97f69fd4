"""One lane-packing routine (``ddnhw.hw.lanes``) behind its three users: the Amaranth-simulator
driver (``ddnhw.hw.sim``), the cosimulation payloads (``ddnhw.host.payload``) and the board link
protocol (``ddnhw.board.protocol``): they agree bit for bit with the written layout."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ddnhw import DdnhwError
from ddnhw.board import protocol as P
from ddnhw.host import payload
from ddnhw.hw import sim
from ddnhw.hw.lanes import (Lanes, pack_bytes, pack_hex, pack_words, unpack_bytes, unpack_hex,
                            unpack_words)

LAYOUTS = [Lanes(1, 1, False), Lanes(1, 63, True), Lanes(3, 5, True), Lanes(7, 1, False),
           Lanes(10, 20, True), Lanes(16, 4, False), Lanes(64, 4, True), Lanes(5, 33, False)]


def reference_word(row, bits):
    """The layout as written: lane k at bits [k*bits, (k+1)*bits), two's complement."""
    return sum((int(v) & ((1 << bits) - 1)) << (k * bits) for k, v in enumerate(row))


@pytest.mark.parametrize("lanes", LAYOUTS, ids=str)
def test_every_view_is_the_written_layout(lanes):
    rng = np.random.default_rng(lanes.width)
    x = rng.integers(lanes.lo, lanes.hi, size=(50, lanes.lanes), endpoint=True)
    x[0], x[1] = lanes.lo, lanes.hi
    ref = [reference_word(row, lanes.bits) for row in x]
    assert pack_words(x, lanes) == ref
    assert payload.pack(x, lanes) == ref
    assert pack_hex(x, lanes) == [format(w, f"0{(lanes.width + 3) // 4}x") for w in ref]
    assert [sim.pack(row, lanes.bits) for row in x] == ref
    assert [P.pack_vector(row, lanes.bits) for row in x] == \
        [w.to_bytes(lanes.nbytes, "little") for w in ref]
    assert [bytes(r) for r in pack_bytes(x, lanes)] == [w.to_bytes(lanes.nbytes, "little")
                                                        for w in ref]
    assert_array_equal(unpack_words(ref, lanes), x)
    assert_array_equal(unpack_hex([format(w, "x") for w in ref], lanes), x)
    assert_array_equal(unpack_bytes(pack_bytes(x, lanes), lanes), x)
    for row, w in zip(x[:8], ref):
        assert sim.unpack(w, lanes.bits, lanes.signed, lanes.lanes) == row.tolist()
        data = P.pack_vector(row, lanes.bits)
        assert P.unpack_vector(data, lanes.lanes, lanes.bits, lanes.signed) == row.tolist()


def test_packing_masks_and_the_range_check_raises():
    lanes = Lanes(3, 4, True)
    assert sim.pack([17, -17, 8], 4) == reference_word([17, -17, 8], 4)
    assert P.pack_vector([17, -17, 8], 4) == reference_word([17, -17, 8], 4).to_bytes(2, "little")
    with pytest.raises(ValueError, match=r"outside \[-8, 7\] \(signed 4 bits\)"):
        payload.pack([[1, 2, 8]], lanes)
    with pytest.raises(ValueError, match="expected 3 lanes per vector, got 2"):
        payload.pack([[1, 2]], lanes)


def test_short_long_and_dirty_inputs():
    lanes = Lanes(3, 5, True)
    # bytes: short rows are zero-extended, bits above the width are ignored
    assert P.unpack_vector(b"\x1f", 3, 5, True) == [-1, 0, 0]
    assert P.unpack_vector(b"\xff\x7f\xff\xff", 3, 5, True) == [-1, -1, -1]
    assert_array_equal(unpack_hex(["1", " 7fff \n", "ffffffff"], lanes),
                       [[1, 0, 0], [-1, -1, -1], [-1, -1, -1]])
    assert sim.unpack(-1, 5, False, 3) == [31, 31, 31]
    with pytest.raises(DdnhwError, match="output beat 1 is not a clean hex value: 'x1'"):
        unpack_hex(["12", "x1"], lanes)
    assert unpack_hex([], lanes).shape == (0, 3)
