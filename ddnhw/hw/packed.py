"""Several low-bit products in one hardware multiplier (``FoldedDense(mul="packed")``).

Two PE lanes ``lo`` and ``hi`` that read the same input ``x`` share one multiplier per SIMD
lane: the weight memory holds ``B = w_lo + w_hi * 2**F`` (precomputed, so the multiplier's
operand comes straight from the block RAM register) and the product is
``x * B = x * w_lo + (x * w_hi) * 2**F``. The packed products of ``d`` SIMD lanes are summed
first, ``S = L + H * 2**F`` with ``L = sum x_j w_lo,j`` and ``H = sum x_j w_hi,j``; then

    L = sext(S mod 2**F)            (the low F bits as a signed number)
    H = (S >> F) + bit(S, F - 1)    (arithmetic shift; the low field's sign borrows 1)

which is exact whenever ``-2**(F-1) <= L < 2**(F-1)``. :func:`field_bits` picks the
narrowest such ``F`` from the exact product range of the types, so the fields never overlap
(guard bits: the growth of a sum of ``d`` products). On the iCE40UP5K one ``SB_MAC16``
(16 x 16) computes ``x * B`` for 4-bit ``x`` and weights with ``d <= 8`` (``F <= 11``, ``B``
15 bits), so its eight DSPs do 16 MACs per cycle. :func:`pack`, :func:`unpack` are the same
arithmetic on Python integers (tests check them at the edges of the ranges).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Signal

from ._types import shape_for
from .mac import lut_mul as _lut_mul, stage

__all__ = ["field_bits", "pack", "unpack", "pack_plan", "packed_dots", "adjust_features",
           "type_range"]


def type_range(int_type):
    """``(lo, hi)`` of an :class:`~ddnhw.ir.IntType`'s integers."""
    b = int_type.bits
    return (-(1 << (b - 1)), (1 << (b - 1)) - 1) if int_type.signed else (0, (1 << b) - 1)


def field_bits(x_range, w_range, d) -> int:
    """Narrowest ``F`` such that every sum of ``d`` products ``x * w`` (``x`` in ``x_range``,
    ``w`` in ``w_range``) is in ``[-2**(F-1), 2**(F-1))``."""
    corners = [a * b for a in x_range for b in w_range]
    lo, hi = d * min(0, *corners), d * max(0, *corners)
    f = 1
    while not (-(1 << (f - 1)) <= lo and hi < (1 << (f - 1))):
        f += 1
    return f


def pack(w_lo: int, w_hi: int, f: int) -> int:
    """The packed weight ``w_lo + w_hi * 2**f`` (an integer)."""
    return int(w_lo) + (int(w_hi) << f)


def unpack(s: int, f: int) -> tuple[int, int]:
    """``(L, H)`` of a packed sum ``s = L + H * 2**f`` (exact when ``L`` fits ``f`` signed
    bits), by the hardware's bit operations: the low ``f`` bits sign-extended, and ``(s >> f)
    + bit f-1``."""
    low = s & ((1 << f) - 1)
    lo = low - (1 << f) if low >> (f - 1) else low
    return lo, (s >> f) + ((s >> (f - 1)) & 1)


def pack_plan(spec, dsp=None) -> dict:
    """The packing of a :class:`~ddnhw.hw.FoldedDenseSpec`: ``pairs`` (PE lanes ``2q``,
    ``2q+1``), ``d`` (per pair, the SIMD lanes that use a packed multiplier: the first
    ``d[q]``; ``dsp`` in all, default every one), ``f`` (field bits), ``bw`` (packed weight
    bits), ``b_shape``, ``fields`` (per pair and SIMD lane: ``(offset, kind)``, kind
    ``"packed"`` or ``"pair"``: two plain weights), ``width`` and ``words`` (the memory)."""
    pe, simd = spec.pe, spec.simd
    if pe % 2:
        raise ValueError(f"mul='packed' pairs PE lanes: pe must be even, not {pe}")
    pairs = pe // 2
    total = pairs * simd
    dsp = total if dsp is None else dsp
    if not isinstance(dsp, int) or isinstance(dsp, bool) or not 0 <= dsp <= total:
        raise ValueError(f"dsp must be an int in 0..{total} (pairs x simd), not {dsp!r}")
    d = [dsp // pairs + (q < dsp % pairs) for q in range(pairs)]
    w_range = (min(0, int(spec.weight.min())), max(0, int(spec.weight.max())))
    f = field_bits(type_range(spec.in_type), w_range, max(d + [1]))
    b_shape = shape_for(pack(w_range[0], w_range[0], f), pack(w_range[1], w_range[1], f))
    bw, wb = b_shape.width, spec.weight_bits
    fields, off = [], 0
    for q in range(pairs):
        row = []
        for j in range(simd):
            row.append((off, "packed" if j < d[q] else "pair"))
            off += bw if j < d[q] else 2 * wb
        fields.append(row)
    wp = spec._compact()
    words = []
    for g in range(spec.nf):
        for s in range(spec.sf):
            word = 0
            for q in range(pairs):
                for j in range(simd):
                    lo = int(wp[g * pe + 2 * q, s * simd + j])
                    hi = int(wp[g * pe + 2 * q + 1, s * simd + j])
                    o, kind = fields[q][j]
                    if kind == "packed":
                        word |= (pack(lo, hi, f) & ((1 << bw) - 1)) << o
                    else:
                        word |= ((lo & ((1 << wb) - 1)) | ((hi & ((1 << wb) - 1)) << wb)) << o
            words.append(word)
    return {"pairs": pairs, "d": d, "dsp": dsp, "f": f, "bw": bw, "b_shape": b_shape,
            "fields": fields, "width": max(off, 1), "words": words}


def packed_dots(spec, m, ce, b_x, b_w, x_shape):
    """The ``pe`` dot products of a packed :class:`~ddnhw.hw.FoldedDense` (its ``_dots``):
    per pair, ``x * B`` products (``*``: DSPs) summed, LUT products of the plain lanes, ``pipe``
    register stages (after the products; after the sums), then unpacked and combined."""
    plan, xb, wb, pipe = spec.packing, spec.in_type.bits, spec.weight_bits, spec.pipe
    f, bw = plan["f"], plan["bw"]
    signed_w, signed_b = spec.w_shape.signed, plan["b_shape"].signed
    dots = []
    for q in range(plan["pairs"]):
        prods, lo_t, hi_t = [], [], []
        for j, (o, kind) in enumerate(plan["fields"][q]):
            x = b_x[j * xb:(j + 1) * xb]
            x = x.as_signed() if x_shape.signed else x
            if kind == "packed":
                b = b_w[o:o + bw]
                prods.append(x * (b.as_signed() if signed_b else b))
                continue
            lo, hi = b_w[o:o + wb], b_w[o + wb:o + 2 * wb]
            if signed_w:
                lo, hi = lo.as_signed(), hi.as_signed()
            lo_t.append(_lut_mul(lo, x))
            hi_t.append(_lut_mul(hi, x))
        groups = [prods, lo_t, hi_t]
        if pipe >= 1:
            groups = [stage(m, ce, g, f"pk{q}_{n}") for g, n in zip(groups, "plh")]
        if pipe >= 3:       # every tree registered halfway up as well (equal latency)
            groups = [[] if t is None else [t] for t in
                      (_tree(g, m, ce, f"pk{q}_{n}h") for g, n in zip(groups, "plh"))]
        sums = [_tree(g) for g in groups]
        if pipe >= 2:
            sums = [None if v is None else stage(m, ce, [v], f"pk{q}_s{n}")[0]
                    for v, n in zip(sums, "plh")]
        s, lo_s, hi_s = sums
        lo_v, hi_v = [], []
        if s is not None:
            low = Signal(f, name=f"pk{q}_low")
            m.d.comb += low.eq(s[:f])
            lo_v.append(low.as_signed())
            hi_v.append((s >> f) + Cat(s[f - 1]))
        lo_v += [] if lo_s is None else [lo_s]
        hi_v += [] if hi_s is None else [hi_s]
        dots += [_tree(lo_v), _tree(hi_v)]
    return dots


def _tree(terms, m=None, ce=None, name=None):
    """Balanced adder tree of ``terms`` (None when there are none); with ``m``, registered
    (enable ``ce``) halfway up: the lower levels' sums, as :func:`stage` ``name``."""
    terms = list(terms)
    if not terms:
        return None
    depth, level = (len(terms) - 1).bit_length(), 0
    while len(terms) > 1:
        terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k]
                 for k in range(0, len(terms), 2)]
        level += 1
        if m is not None and level == max(1, depth // 2) and len(terms) > 1:
            terms = stage(m, ce, terms, name)
            m = None
    if m is not None:           # too few terms to split: the register follows the sum
        terms = stage(m, ce, terms, name)
    return terms[0]


def adjust_features(spec, f):
    """Correct :func:`~ddnhw.hw.folded.folded_features` (computed as all-LUT) for packing and
    for ``pipe`` stages, in place: LUT bit products only for the plain lanes, one DSP per
    packed multiplier, the unpack adders, the wider memory word, the stage registers."""
    pe, simd, xb, wb = spec.pe, spec.simd, spec.in_type.bits, spec.weight_bits
    acc = spec.acc_type[1]
    prod = wb + xb
    regs = 0
    if spec.packing is not None:
        plan = spec.packing
        lut_lanes = sum(2 * (simd - d) for d in plan["d"])
        f["luts"]["mul"] = lut_lanes * wb * xb
        f["dsp_muls"] = plan["dsp"]
        f["luts"]["add"] = f["luts"].get("add", 0) + plan["pairs"] * (plan["f"] + acc)
        f["memories"] = ((spec.mem_width, spec.mem_depth),)
        sbits = plan["f"] + plan["bw"] + xb
        if spec.pipe >= 1:
            regs += plan["dsp"] * (plan["bw"] + xb) + lut_lanes * prod
        if spec.pipe >= 2:
            regs += plan["pairs"] * (sbits + 2 * acc)
        if spec.pipe >= 3:      # halfway up the trees (packed products and plain lanes)
            half = (lambda n: -(-n // 2 ** max(1, (n - 1).bit_length() // 2)) if n else 0)
            regs += sum(half(d) for d in plan["d"]) * (plan["bw"] + xb + 2)
            regs += sum(2 * half(simd - d) for d in plan["d"]) * (prod + 2)
    else:
        if spec.pipe >= 1:
            regs += pe * simd * prod
        if spec.pipe >= 2:
            regs += pe * max(1, simd // 2) * (prod + 1)
    regs += spec.pipe * (4 + (spec.nf - 1).bit_length())
    f["ffs"]["ff"] = f["ffs"].get("ff", 0) + regs
    f["luts"]["ffs"] = f["luts"].get("ffs", 0) + regs
    return f
