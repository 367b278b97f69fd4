"""The energy model: energy per event by cell type, clock energy, static power, per family.

Events come from a gate-level run (:mod:`.gatesim`): output toggles per cell type, clock-enabled
flip-flop cycles, memory accesses, simulated cycles. Dynamic energy per run::

    E = cycles * (e_cycle + n_ff * e_ff_clock)          clock network and flip-flop clock pins
      + toggles(LUT, carry, FF, RAM outputs) * e_toggle  logic, carry chains, flip-flop outputs
      + toggles(DSP outputs) * e_dsp_toggle              DSP blocks
      + accesses(block RAM) * e_bram_access + accesses(SPRAM) * e_spram_access

**iCE40 (UP5K)**: ``e_cycle``, ``e_ff_clock``, ``e_toggle``, ``e_dsp_toggle`` and the static power
are fitted to the published core-current measurements of tinyvision-ai-inc/ice40_power (see
:mod:`.calibration`; ``python bench/energy.py --calibrate`` refits them, the test
``tests/energy/test_energy.py`` checks that the fit below reproduces those measurements).
Static: the configured device with its clock halted, 92.1 µA at 1.219 V. The memory access
energies have no public measurement we could find: they are *assumed* to cost as much as 16
(block RAM, one 16-bit port) and 64 (SPRAM, 16 bits, 4x the area) logic toggles, and carry an
error band of a factor 2 of their own.

**ECP5**: we found no public bench measurement of ECP5 core current per design. The per-event
energies are the iCE40UP5K fit scaled by the square of the core voltages (1.1 V / 1.219 V; both
are 40 nm Lattice parts); the clock network per cycle is scaled the same way. Static power is not
modelled (``None``): the ECP5 data sheet gives no typical static core current per device that we
could cite. Treat ECP5 figures as a factor-3 estimate, useful to compare designs on one device.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Coefficients", "ICE40", "ECP5", "COEFFICIENTS", "DYNAMIC_KEYS", "category",
           "per_cycle_features", "energy", "CATEGORIES", "get_coefficients"]

DYNAMIC_KEYS = ("cycle", "ff_clock", "toggle", "dsp_toggle")
CATEGORIES = ("logic", "carry", "ff", "clock", "bram", "spram", "dsp", "io")

_CELLS = {
    "ice40": [("logic", r"SB_LUT4"), ("carry", r"SB_CARRY"), ("ff", r"SB_DFF\w*"),
              ("bram", r"SB_RAM40_4K\w*"), ("spram", r"SB_SPRAM256KA"), ("dsp", r"SB_MAC16"),
              ("io", r"SB_IO\w*|SB_GB\w*")],
    "ecp5": [("logic", r"LUT4|LUT2|PFUMX|L6MUX21|TRELLIS_COMB|TRELLIS_DPR16X4|DPR16X4C|"
                       r"TRELLIS_RAM16X2|INV"),
             ("carry", r"CCU2C"), ("ff", r"TRELLIS_FF|F[DS]1\w+"), ("bram", r"DP16KD|PDPW16KD"),
             ("dsp", r"MULT18X18D|ALU54B"), ("io", r"TRELLIS_IO|[IO]B\w*|BB\w*")],
}


def category(family: str, cell: str) -> str:
    """The breakdown category of a cell type (``logic`` for an unknown one)."""
    for cat, rx in _CELLS[family]:
        if re.fullmatch(rx, cell):
            return cat
    return "logic"


@dataclass(frozen=True)
class Coefficients:
    """Per-family coefficients: ``dynamic`` (pJ per event: ``cycle`` per clock cycle,
    ``ff_clock`` per flip-flop per cycle, ``toggle`` per logic/carry/FF/RAM output toggle,
    ``dsp_toggle`` per DSP output bit toggle), ``bram_access``/``spram_access`` (pJ per
    access), ``static_mw`` (None: not modelled), ``vcore`` (V), ``sources`` and
    ``error_band`` (relative, per category and ``total``)."""

    family: str
    dynamic: dict
    bram_access: float
    spram_access: float
    static_mw: float | None
    vcore: float
    sources: str
    error_band: dict = field(default_factory=dict)


# Fitted by ddnhw.energy.calibration.calibrate (python bench/energy.py --calibrate) on
# 2026-11-30 with yosys 0.70 (YoWASP); the fit's relative errors are in README "## Energy".
_ICE40_DYNAMIC = {"cycle": 50.01, "ff_clock": 0.01453, "toggle": 0.4978, "dsp_toggle": 5.441}
_ICE40_STATIC_MW = 92.1e-3 * 1.219

ICE40 = Coefficients(
    family="ice40", dynamic=_ICE40_DYNAMIC,
    bram_access=16 * _ICE40_DYNAMIC["toggle"], spram_access=64 * _ICE40_DYNAMIC["toggle"],
    static_mw=_ICE40_STATIC_MW, vcore=1.219,
    sources="fit to tinyvision-ai-inc/ice40_power core-current measurements (iCE40UP5K, "
            "1.219 V): counters of 28-224 bits at 12 MHz, 8x8 multiplier in logic vs DSP; "
            "static = configured device, clock halted (92.1 uA); memory accesses assumed "
            "(16 / 64 logic toggles per BRAM / SPRAM access), no public measurement",
    error_band={"total": 0.3, "clock": 0.1, "logic": 0.5, "carry": 0.5, "ff": 0.5,
                "dsp": 0.5, "bram": 1.0, "spram": 1.0})

_SCALE = (1.1 / 1.219) ** 2
ECP5 = Coefficients(
    family="ecp5", dynamic={k: v * _SCALE for k, v in _ICE40_DYNAMIC.items()},
    bram_access=16 * _ICE40_DYNAMIC["toggle"] * _SCALE,
    spram_access=0.0, static_mw=None, vcore=1.1,
    sources="no public ECP5 bench measurement found: iCE40UP5K fit scaled by (1.1 V / 1.219 V)^2; "
            "static power not modelled",
    error_band={"total": 2.0})

COEFFICIENTS = {"ice40": ICE40, "ecp5": ECP5}


def get_coefficients(family) -> Coefficients:
    from ddnhw.hw.family import get_family
    return COEFFICIENTS[get_family(family).name]


def _sum(events, family, cat, key):
    return sum(e.get(key, 0) for cell, e in events.items() if category(family, cell) == cat)


def per_cycle_features(coeffs: Coefficients, cells: dict, events: dict) -> dict:
    """The counts the dynamic coefficients multiply, per cycle: ``events`` per cycle by cell
    type (:class:`.gatesim.Activity` ``by_cell`` divided by the cycles), ``cells`` the
    netlist's cell counts."""
    fam = coeffs.family
    n_ff = sum(n for cell, n in cells.items() if category(fam, cell) == "ff")
    toggles = sum(_sum(events, fam, cat, "toggles")
                  for cat in ("logic", "carry", "ff", "bram", "spram"))
    return {"cycle": 1.0, "ff_clock": float(n_ff), "toggle": float(toggles),
            "dsp_toggle": float(_sum(events, fam, "dsp", "toggles"))}


def energy(coeffs: Coefficients, cells: dict, activity) -> dict:
    """Dynamic energy (pJ) of a gate-level run by category: ``activity`` an
    :class:`.gatesim.Activity` (``cycles``, ``by_cell``)."""
    fam, d = coeffs.family, coeffs.dynamic
    ev = activity.by_cell
    n_ff = sum(n for cell, n in cells.items() if category(fam, cell) == "ff")
    out = {cat: 0.0 for cat in CATEGORIES}
    for cat in ("logic", "carry", "ff", "bram", "spram"):
        out[cat] += _sum(ev, fam, cat, "toggles") * d["toggle"]
    out["dsp"] += _sum(ev, fam, "dsp", "toggles") * d["dsp_toggle"]
    out["clock"] = activity.cycles * (d["cycle"] + n_ff * d["ff_clock"])
    out["bram"] += (_sum(ev, fam, "bram", "read") + _sum(ev, fam, "bram", "write")) \
        * coeffs.bram_access
    out["spram"] += _sum(ev, fam, "spram", "access") * coeffs.spram_access
    return out
