"""Resource estimates per block (LUTs, FFs, DSPs, BRAMs), calibrated against nextpnr reports.

Units are those of :func:`ddnhw.board.build` reports: ``luts`` are iCE40 ICESTORM_LC logic
cells or ECP5 TRELLIS_COMB slice halves; ``brams`` are iCE40 EBR (4 Kbit) or ECP5 DP16KD
(18 Kbit).

The model is structural: every block states a few family-independent counts through the
block protocol (``spec.features()``, :func:`ddnhw.hw.protocol.cost_features`: LUT and FF
terms, memories, multipliers, parts) and :func:`estimate_block` weights them with the
family's coefficients and rules (:class:`ddnhw.hw.family.Family`: ``coeffs`` fitted on the
builds that ``bench/calibrate_estimate.py`` runs, see ``bench/results/calibration_*.json``;
BRAM shapes; the DSP multiplier rule; the ROM-in-LUT threshold). Nothing here knows a block
class.
"""
from __future__ import annotations

from types import MappingProxyType

from ddnhw.hw.family import FAMILIES, get_family
from ddnhw.hw.folded import folded_features, lane_requant_luts
from ddnhw.hw.protocol import spec_of

__all__ = ["RESOURCES", "OPTIONAL_RESOURCES", "COEFFS", "block_features", "folded_features", "estimate_folded",
           "estimate_block", "estimate_features", "lane_requant_luts", "const_mul_dsps", "requant_dsps"]

RESOURCES = ("luts", "ffs", "dsps", "brams")
# resources an estimate names only when a block uses them (SPRAM: ddnhw.hw.spram)
OPTIONAL_RESOURCES = ("spram",)

# the families' estimate coefficients by family name (read-only views of Family.coeffs)
COEFFS = MappingProxyType({name: f.coeffs for name, f in FAMILIES.items()})


def const_mul_dsps(x_bits, multiplier, family, signed=True) -> int:
    """DSP primitives yosys infers for ``x * multiplier`` (``x``: ``x_bits`` wide, ``signed``;
    ``multiplier``: an integer constant) on ``family`` (:meth:`Family.const_mul_dsps`).
    Channels whose clipped result is constant, and channels no later layer reads (``idle``),
    have no multiplier: the blocks leave them out of their features."""
    return get_family(family).const_mul_dsps(x_bits, multiplier, signed)


def requant_dsps(in_bits, multipliers, family, signed=True) -> int:
    """DSPs of a :class:`~ddnhw.hw.Requantizer` (one constant multiplier per channel)."""
    return sum(const_mul_dsps(in_bits, m, family, signed) for m in multipliers)


def block_features(block) -> dict:
    """Structural counts of a block (a spec or a component): its ``spec.features()``."""
    return spec_of(block).features()


def estimate_features(features, family="ice40") -> dict:
    """``{"luts", "ffs", "dsps", "brams"}`` of one feature dict on ``family`` (its ``parts``
    estimated by :func:`estimate_block` and added), and ``"spram"`` when the features name
    SPRAM blocks (``features["spram"]``)."""
    fam = get_family(family)
    f = features
    luts = sum(n * fam.coeff(c) for c, n in f["luts"].items())
    ffs = sum(n * fam.coeff(c) for c, n in f["ffs"].items())
    brams = f["brams"]
    for width, depth in f["memories"]:
        if fam.rom_in_bram(width, depth):
            brams += fam.bram_blocks(width, depth)
        else:
            luts += fam.coeff("rom") * width * depth
    dsps = (f["dsp_muls"] + sum(fam.var_mul_dsps(a, b) for a, b in f["var_muls"])
            + sum(max([fam.const_mul_dsps(*m) for m in group] or [0])
                  for group in f["const_muls"]))
    total = {"luts": int(round(luts)), "ffs": int(round(ffs)), "dsps": int(dsps),
             "brams": int(brams)}
    if f.get("spram"):      # SPRAM blocks (iCE40UP5K): only where a block uses them
        total["spram"] = int(f["spram"])
    for part in f["parts"]:
        for k, v in estimate_block(part, fam).items():
            total[k] = total.get(k, 0) + v
    return total


def estimate_folded(family="ice40", **params) -> dict:
    """Estimate of a FoldedDense from :func:`folded_features` parameters (no block built)."""
    return estimate_features(folded_features(**params), family)


def estimate_block(block, family="ice40") -> dict:
    """``{"luts", "ffs", "dsps", "brams"}`` of one block (a spec, or a component: its
    ``spec``) on ``family`` (a :class:`~ddnhw.hw.family.Family` or its name)."""
    return estimate_features(spec_of(block).features(), get_family(family))


