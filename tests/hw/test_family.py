"""FPGA family objects: one place for tools, cells, BRAM/DSP rules and estimate coefficients;
the board build, flash and estimate read them from there; a board profile gives its Budget."""
import pytest

from ddnhw.hw.family import ECP5, FAMILIES, ICE40, Budget, get_family


def test_families_by_name():
    assert FAMILIES == {"ice40": ICE40, "ecp5": ECP5}
    assert get_family("ecp5") is ECP5 and get_family(ICE40) is ICE40
    with pytest.raises(ValueError, match="family must be one of \\['ecp5', 'ice40'\\], not 'xc7'"):
        get_family("xc7")
    assert (ICE40.bitstream_ext, ECP5.bitstream_ext) == ("bin", "bit")
    assert (ICE40.synth, ECP5.nextpnr, ECP5.packer) == ("synth_ice40", "nextpnr-ecp5", "ecppack")
    with pytest.raises(TypeError):
        ICE40.coeffs["dense"] = 2.0          # read-only


@pytest.mark.parametrize("fam,width,depth,want", [
    (ICE40, 16, 256, 1), (ICE40, 32, 256, 2), (ICE40, 4, 1024, 1), (ICE40, 40, 100, 3),
    (ECP5, 36, 512, 1), (ECP5, 72, 1024, 4), (ECP5, 1, 16384, 1)])
def test_bram_blocks(fam, width, depth, want):
    assert fam.bram_blocks(width, depth) == want


def test_rom_in_bram_threshold():
    assert ICE40.rom_in_bram(16, 32) and not ICE40.rom_in_bram(16, 31)
    assert not ECP5.rom_in_bram(1024, 1)        # one word: registers


def test_dsp_rules():
    assert ICE40.var_mul_dsps(4, 6) == 0           # < 11 product bits: LUTs on the iCE40
    assert ECP5.var_mul_dsps(4, 6) == 1
    assert ICE40.var_mul_dsps(20, 8) == 2 and ECP5.var_mul_dsps(20, 8) == 2
    assert ICE40.var_mul_dsps(1, 30) == 0
    assert ICE40.coeff("raw") == 1.0
    with pytest.raises(ValueError, match="no estimate coefficient 'nope'"):
        ECP5.coeff("nope")


def test_budget():
    b = Budget("ice40", luts=5280, ffs=5280, dsps=8, brams=30)
    assert b.limits() == {"luts": 5280, "dsps": 8, "brams": 30, "ffs": 5280}
    assert Budget("ecp5", luts=100).limits() == {"luts": 100}
    with pytest.raises(ValueError, match="budget dsps must be an int >= 0 or None, not -1"):
        Budget("ice40", dsps=-1)
    with pytest.raises(ValueError, match="not 'gw1n'"):
        Budget("gw1n")


def test_board_profiles_give_family_and_budget():
    from ddnhw.board import get_board
    p = get_board("icebreaker")
    assert p.fpga is ICE40
    assert p.budget_for() == Budget("ice40", luts=5280, ffs=5280, dsps=8, brams=30, spram=4)
    assert get_board("ulx3s-85f").budget_for().limits()["dsps"] == 156


def test_estimate_and_board_read_the_family():
    from ddnhw.board.flash import BITSTREAM_EXT
    from ddnhw.lower.estimate import COEFFS
    assert BITSTREAM_EXT == {"ice40": "bin", "ecp5": "bit"}
    assert COEFFS["ecp5"] is ECP5.coeffs
