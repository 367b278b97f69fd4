"""Resource estimates per block (LUTs, FFs, DSPs, BRAMs), calibrated against nextpnr reports.

Units are those of :func:`ddnhw.board.build` reports: ``luts`` are iCE40 ICESTORM_LC logic
cells or ECP5 TRELLIS_COMB slice halves; ``brams`` are iCE40 EBR (4 Kbit) or ECP5 DP16KD
(18 Kbit).

The model is structural: each block is reduced to a few counts (:func:`block_features`:
multiplier bit-products, adder bits, register bits, multiplexer inputs, ROM bits) and each
count is weighted by a per-family coefficient (:data:`COEFFS`) fitted on the builds that
``bench/calibrate_estimate.py`` runs (see ``bench/results/calibration_*.json``).
"""
from __future__ import annotations

import math

from amaranth.hdl import Const

from ddnhw.hw.requant import requant_luts

__all__ = ["RESOURCES", "COEFFS", "block_features", "folded_features", "estimate_folded",
           "estimate_block", "estimate_network", "bram_blocks", "lane_requant_luts",
           "const_mul_dsps", "requant_dsps"]

RESOURCES = ("luts", "ffs", "dsps", "brams")

# LUT coefficients per feature; FFs are counted structurally (flip-flops are what they are).
# Fitted by bench/fit_estimate.py (non-negative least squares) on the FoldedDense builds in
# bench/results/calibration_<family>.json (64x16 and 16x10 layers, 4-bit weights and inputs,
# PE x SIMD from 1 to 32). The MAC terms (multiplier bit products, adder tree and accumulator
# bits) grow together, so they share one fitted coefficient. LUT fit on those builds: iCE40
# within 4%, ECP5 within 11%. Fully parallel (depth-1, constant-weight) builds are
# not fitted (they cost much less per MAC). "ff" scales the structural FF count.
# "dense" scales the unrolled Dense's structural LUT count (its adder-graph cost model counts
# LUT4s, not the carry logic cells and slices nextpnr reports): least squares
# (bench/fit_estimate.py fit_scale) on the Dense builds of bench/calibrate_estimate.py (a 10x16
# random layer and the demo model's 16x64 and 10x16 layers); per-build LUT error iCE40 -14%..+1%,
# ECP5 -2%..+2% (see bench/results/folding.md). Requantizer: not rescaled (two builds, -25%
# and 0% on iCE40).
COEFFS = {
    "ice40": {"mul": 3.118, "add": 3.118, "acc": 3.118, "mux": 3.587, "ffs": 0.0, "ctrl": 220.7,
              "rom": 0.07, "dense": 1.359, "requant": 1.0, "ff": 1.055},
    "ecp5": {"mul": 4.336, "add": 4.336, "acc": 4.336, "mux": 0.731, "ffs": 0.0, "ctrl": 15.3,
             "rom": 0.07, "dense": 1.688, "requant": 1.0, "ff": 1.046},
}

# BRAM primitive geometries (width, depth) per family, widest first.
_BRAM_SHAPES = {
    "ice40": [(16, 256), (8, 512), (4, 1024), (2, 2048)],
    "ecp5": [(36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)],
}
# ROMs smaller than this many bits stay in LUTs (yosys maps tiny memories to logic).
_ROM_LUT_BITS = {"ice40": 512, "ecp5": 512}


# How yosys maps a multiplication by a constant (the requantizers' ``x * m``): ``opt`` first
# strips the constant's trailing zeros into a shift (a power of two costs nothing), then
# ``mul2dsp`` puts a product on DSPs when both operands have >= 2 bits and (iCE40 only) the
# product has >= 11 bits, splitting operands wider than the DSP port (``synth_ice40 -dsp``:
# SB_MAC16 16x16; ``synth_ecp5``: MULT18X18D 18x18). Checked on yosys 0.70 (the YoWASP build)
# with requantizers of 6/10/14-bit accumulators and 8-bit and small multipliers (iCE40 8/15/15
# SB_MAC16 and ECP5 15/15/15 MULT18X18D for 15 non-power-of-two multipliers; see
# tests/lower/test_estimate_dsps.py, which checks this model against yosys). Channels whose
# clipped result is constant, and channels no later layer reads (an all-zero weight column, as
# in sparse ternary layers; ``idle_channels`` set by the lowering), have no multiplier.
_DSP_MUL = {"ice40": {"width": 16, "y_min": 11}, "ecp5": {"width": 18, "y_min": 0}}


def const_mul_dsps(x_bits, multiplier, family, signed=True) -> int:
    """DSP primitives yosys infers for ``x * multiplier`` (``x``: ``x_bits`` wide, ``signed``;
    ``multiplier``: an integer constant) on ``family``."""
    m = abs(int(multiplier))
    if m == 0 or m & (m - 1) == 0:
        return 0                      # zero or a power of two: a shift
    odd = m >> ((m & -m).bit_length() - 1)
    ob = odd.bit_length()
    rule = _DSP_MUL[family]
    w = rule["width"]
    # mul2dsp splits a wide operand into (width - 1)-bit unsigned low chunks (width when
    # unsigned) and a signed top chunk; each chunk product is checked against the thresholds
    chunks, rest = [], x_bits
    while rest > w:
        part = w - 1 if signed else w
        chunks.append(part)
        rest -= part
    chunks.append(rest)
    per_b = math.ceil(ob / w)
    return sum(per_b for c in chunks if c >= 2 and c + ob >= rule["y_min"])


def requant_dsps(in_bits, multipliers, family, signed=True) -> int:
    """DSPs of a :class:`~ddnhw.hw.Requantizer` (one constant multiplier per channel)."""
    return sum(const_mul_dsps(in_bits, m, family, signed) for m in multipliers)


def _var_mul_dsps(a_bits, b_bits, family) -> int:
    """DSPs of a variable ``a_bits x b_bits`` product (the :data:`_DSP_MUL` rule)."""
    rule = _DSP_MUL[family]
    if min(a_bits, b_bits) < 2 or a_bits + b_bits < rule["y_min"]:
        return 0
    return math.ceil(a_bits / rule["width"]) * math.ceil(b_bits / rule["width"])


def recurrent_gate_dsps(block, family) -> int:
    """DSPs of a :class:`~ddnhw.hw.recurrent.Recurrent`'s gate unit: its index requantizers
    (constant multipliers per class, or one variable multiplier per lane) and, for a gru, the
    two variable products per lane (``r * acc_nh``, ``z * (h - n)``)."""
    total = 0
    for lanes in block._classes:
        for classes, _, var in lanes:
            if var is not None:
                big_s, mults, (lo, hi) = var
                total += _var_mul_dsps(max((-lo - 1).bit_length(), hi.bit_length()) + 1,
                                       max(abs(m) for m in mults).bit_length() + 1, family)
            else:
                for (m, _), (lo, hi) in classes.items():
                    total += const_mul_dsps(max((-lo - 1).bit_length(), hi.bit_length()) + 1,
                                            m, family)
    if block.op == "gru":
        gb = block.gate_frac + 1
        total += block.gate_lanes * (_var_mul_dsps(gb, block.acc_type.bits, family)
                                     + _var_mul_dsps(gb, block.state_type.bits + 1, family))
    return total


def bram_blocks(width, depth, family) -> int:
    """Fewest BRAM primitives holding a ``width x depth`` memory (one geometry for all)."""
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in _BRAM_SHAPES[family])


def lane_requant_luts(multiplier, shift, acc_bits, out_bits, pe) -> int:
    """Logic of the ``pe`` lane requantizers of a :class:`~ddnhw.hw.FoldedDense` with fused
    requantization: per lane one circuit per distinct ``(multiplier, shift)`` among its channels
    (:func:`~ddnhw.hw.requant.requant_luts`) and a multiplexer between them."""
    total = 0
    for p in range(pe):
        keys = sorted(set(zip((int(m) for m in multiplier[p::pe]),
                              (int(s) for s in shift[p::pe]))))
        total += sum(requant_luts(acc_bits, m, s, out_bits) for m, s in keys)
        total += (len(keys) - 1) * out_bits + (len(keys) > 1) * len(multiplier[p::pe]) // 4
    return total


def folded_features(n_out, n_in, weight_bits, in_bits, acc_bits, out_bits, pe, simd,
                    mul="lut", requant_luts=0) -> dict:
    """Structural counts of a :class:`~ddnhw.hw.FoldedDense` from its parameters alone.

    ``requant_luts``: the fused lane requantizers' logic (:func:`lane_requant_luts`; 0: no
    fused requantization, ``out_bits`` is then the accumulator output's width)."""
    sf, nf = math.ceil(n_in / simd), math.ceil(n_out / pe)
    wb, xb, acc = weight_bits, in_bits, acc_bits
    prod = wb + xb
    return {
        "kind": "FoldedDense", "pe": pe, "simd": simd, "ii": sf * nf, "mul_style": mul,
        "macs": pe * simd,
        "mul": pe * simd * wb * xb if mul == "lut" else 0,   # LUT multiplier bit products
        "add": pe * (simd - 1) * (prod + 1),  # adder tree bits
        "acc": pe * acc * 2,                      # base mux + accumulator adder
        "mux": simd * xb * (sf - 1),              # input-slice multiplexer inputs
        "rom_bits": pe * simd * wb * sf * nf,
        "mem_width": pe * simd * wb, "mem_depth": sf * nf,
        "requant": requant_luts,
        "ffs": (n_in * xb + 2 * simd * xb + pe * simd * wb + 2 * pe * acc
                + (nf - 1) * pe * (out_bits if requant_luts else acc)
                + (pe * acc + 8 if requant_luts else 0) + n_out * out_bits + 3 * 16 + 8),
    }


def block_features(block) -> dict:
    """Structural counts of a block (independent of the FPGA family)."""
    kind = type(block).__name__
    if kind == "FoldedDense":
        rq, rq_dsps = 0, {}
        if block.requant is not None:
            rq = lane_requant_luts(block.requant[0], block.requant[1], block.acc_type[1],
                                   block.out_type.bits, block.pe)
            # a lane's circuits (one per distinct (multiplier, shift)) are used one at a time:
            # yosys' share pass merges their multipliers into one (a 16-class lane built with
            # 1 SB_MAC16), so a lane costs its largest multiplier's DSPs
            rq_dsps = {fam: sum(max([const_mul_dsps(block.acc_type[1], m, fam)
                                     for m in block.requant[0][p::block.pe]] or [0])
                                for p in range(block.pe)) for fam in _DSP_MUL}
        f = folded_features(block.n_out, block.n_in, block.weight_bits, block.in_type.bits,
                            block.acc_type[1], block.out_type.bits, block.pe, block.simd,
                            block.mul, requant_luts=rq)
        f["requant_dsps"] = rq_dsps
        decode = getattr(block, "decode", "direct")
        if decode != "direct":   # codes in memory, decoded per MAC (folded.decode_luts)
            from ddnhw.hw.folded import decode_luts
            cb = block.code_bits
            f["rom_bits"] = f["rom_bits"] // block.weight_bits * cb
            f["mem_width"] = block.pe * block.simd * cb
            f["ffs"] -= block.pe * block.simd * (block.weight_bits - cb)
            if decode == "constmul":   # no variable multiplier: constant products, a select
                f["mul"] = 0
            # table: the lookup (the multiplier stays in "mul"); constmul: all of its logic
            f["decode"] = block.pe * block.simd * (
                block.weight_bits if decode == "table" else
                decode_luts(decode, block.levels, block.weight_bits, block.in_type.bits))
        return f
    if kind == "Dense":
        return {"kind": kind, "luts": block.estimate["luts"], "ffs": block.estimate["ffs"]}
    if kind == "Requantizer":
        # no multiplier for a channel the block makes a constant (clipped over its whole input
        # range), or that the lowering marked idle (constant input, or never read)
        idle = getattr(block, "idle_channels", None)
        live = [m for c, m in enumerate(block.multiplier)
                if not isinstance(block._range(c)[0], Const)
                and not (idle is not None and idle[c])]
        return {"kind": kind, "luts": block.estimate["luts"], "ffs": block.estimate["ffs"],
                "dsps": {fam: requant_dsps(block.in_type.bits, live, fam, block.in_type.signed)
                         for fam in _DSP_MUL}}
    est = getattr(block, "estimate", {})
    return {"kind": kind, "luts": est.get("luts", 0), "ffs": est.get("ffs", 0)}


def _folded_estimate(f, family) -> dict:
    c = COEFFS[family]
    rom_in_bram = f["rom_bits"] >= _ROM_LUT_BITS[family] and f["mem_depth"] > 1
    brams = bram_blocks(f["mem_width"], f["mem_depth"], family) if rom_in_bram else 0
    rom_luts = 0 if rom_in_bram else c["rom"] * f["rom_bits"]
    dsps = (f["macs"] if f["mul_style"] == "dsp" else 0) + f.get("requant_dsps", {}).get(family, 0)
    luts = (c["mul"] * f["mul"] + c["add"] * f["add"] + c["acc"] * f["acc"]
            + c["mux"] * f["mux"] + c["ffs"] * f["ffs"] + rom_luts + c["ctrl"]
            + c["requant"] * f["requant"] + f.get("decode", 0))
    return {"luts": int(round(luts)), "ffs": int(round(c["ff"] * f["ffs"])), "dsps": int(dsps),
            "brams": int(brams)}


def estimate_folded(family="ice40", **params) -> dict:
    """Estimate of a FoldedDense from :func:`folded_features` parameters (no HDL built)."""
    return _folded_estimate(folded_features(**params), family)


def estimate_block(block, family="ice40") -> dict:
    """``{"luts", "ffs", "dsps", "brams"}`` of one block on ``family`` (``ice40``/``ecp5``)."""
    if family not in COEFFS:
        raise ValueError(f"family must be one of {sorted(COEFFS)}, not {family!r}")
    if type(block).__name__ == "Chain":   # a conv or pool layer: each of its blocks
        return estimate_network(block.blocks, family)
    c = COEFFS[family]
    if type(block).__name__ == "Recurrent":   # its MAC engine plus its gate unit (unscaled)
        eng = estimate_block(block.engine, family)
        eng["ffs"] = eng.get("ffs", 0) - getattr(block, "engine_ffs_saved", 0)
        eng["dsps"] = eng.get("dsps", 0) + recurrent_gate_dsps(block, family)
        return {k: int(eng.get(k, 0) + block.gate_estimate.get(k, 0)) for k in RESOURCES}
    f = block_features(block)
    if f["kind"] == "FoldedDense":
        return _folded_estimate(f, family)
    scale = c["dense"] if f["kind"] == "Dense" else c["requant"]
    return {"luts": int(round(scale * f["luts"])), "ffs": int(f["ffs"]),
            "dsps": int(f.get("dsps", {}).get(family, 0)), "brams": 0}


def estimate_network(blocks, family="ice40") -> dict:
    """Sum of :func:`estimate_block` over ``blocks``."""
    total = dict.fromkeys(RESOURCES, 0)
    for b in blocks:
        for k, v in estimate_block(b, family).items():
            total[k] += v
    return total
