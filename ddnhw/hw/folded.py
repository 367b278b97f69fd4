"""Folded dense layer: PE output lanes x SIMD input lanes of multiply-accumulate, weights in
``lib.memory.Memory``; a drop-in replacement for :class:`~ddnhw.hw.Dense` (same ports)."""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Signal, unsigned
from amaranth.lib import data, memory

from ddnhw.ir.ops import dense_range

from ._types import check_int_type, check_weight_bias, int_shape, shape_for
import ddnhw.hw.packed as packed
from .dense import _digits
from .mac import lut_mul as _lut_mul, pipelined_sum
from .protocol import BlockSpec, SpecComponent, cost_features
from .requant import requant_channel, requant_luts

__all__ = ["FoldedDense", "FoldedDenseSpec", "FoldedDenseModel", "fold_ii", "MUL_STYLES",
           "DECODES", "decode_luts", "folded_features", "lane_requant_luts", "group_fold_ok",
           "group_geometry"]

MUL_STYLES = ("auto", "lut", "dsp", "packed")
# "auto": LUT multipliers when weights or inputs are at most this wide, else ``*`` (DSPs)
LUT_MUL_MAX_BITS = 4


def _ceil_div(a, b):
    return -(-a // b)


def fold_ii(n_out, n_in, pe, simd, groups=1) -> int:
    """Initiation interval (cycles per input vector) of a folded dense layer (``groups``: of
    a grouped one, whose tiles step over one group's ``n_in / groups`` columns only)."""
    return _ceil_div(n_in // groups, simd) * _ceil_div(n_out, pe)


def group_fold_ok(n_out, groups, pe) -> bool:
    """Whether ``pe`` output lanes fit a grouped :class:`FoldedDense` of ``n_out`` outputs in
    ``groups`` groups: ``pe`` divides a group's ``n_out / groups`` outputs (a tile within one
    group), or is a multiple of them by a divisor of ``groups`` (a tile of whole groups)."""
    og = n_out // groups
    return og % pe == 0 or (pe % og == 0 and groups % (pe // og) == 0)


def group_geometry(n_out, n_in, groups, pe, simd) -> dict:
    """The tiling of a (grouped) :class:`FoldedDense`: ``og``/``cg`` (outputs and input columns
    per group), ``kpt`` (groups per tile: ``pe / og`` when a tile spans whole groups, else 1),
    ``sf`` (steps per tile, ``ceil(cg / simd)``), ``nf`` (tiles, ``ceil(n_out / pe)``),
    ``blocks`` (input blocks, ``groups / kpt``: a tile reads one), ``slices`` (``blocks * sf``:
    the input-slice multiplexer's inputs) and ``slice_lanes`` (``kpt * simd``: its width in
    lanes). ``groups == 1`` is the dense layer: ``sf = ceil(n_in / simd)``, one block."""
    og, cg = n_out // groups, n_in // groups
    kpt = pe // og if groups > 1 and pe >= og else 1
    sf, nf = _ceil_div(cg, simd), _ceil_div(n_out, pe)
    blocks = groups // kpt
    return {"og": og, "cg": cg, "kpt": kpt, "sf": sf, "nf": nf, "blocks": blocks,
            "slices": blocks * sf, "slice_lanes": kpt * simd}


def _check_fold(name, v, limit):
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= limit:
        raise ValueError(f"{name} must be an int in 1..{limit}, not {v!r}")


DECODES = ("direct", "table", "constmul", "auto")


def _const_mul(x, c: int):
    """``x * c`` for a constant ``c`` as shifted adds/subtracts of ``x`` (signed digits)."""
    if c == 0:
        return Const(0, 1)
    terms = [(x << k) if d > 0 else -(x << k) for k, d in _digits(abs(c))]
    v = terms[0]
    for t in terms[1:]:
        v = v + t
    return -v if c < 0 else v


# LUTs per variable-multiplier bit product (the MAC coefficient fitted for iCE40 FoldedDense
# builds in ddnhw.lower.estimate: partial-product gates and their adder tree)
MUL_BIT_LUTS = 3.118


def decode_luts(decode, levels, weight_bits, in_bits) -> float:
    """Logic per MAC (LUT4s) of a weight-code decode. ``"table"``: a constant lookup per
    weight bit, then the variable multiplier (``MUL_BIT_LUTS`` per bit product);
    ``"constmul"``: a carry-chain adder (one LUT per product bit) per extra signed digit of
    every level, and a ``len(levels)``-way select per product bit (about ``(L-1)/2`` LUTs).
    Measured on the iCE40 (``bench/codebook_decode.py``): it ranks the two as the builds do."""
    prod = weight_bits + in_bits
    if decode == "table":
        return weight_bits + MUL_BIT_LUTS * weight_bits * in_bits
    adders = sum(max(0, len(_digits(abs(v))) - 1) for v in levels if v)
    return adders * prod + prod * (len(levels) - 1) / 2


def lane_requant_luts(multiplier, shift, acc_bits, out_bits, pe) -> int:
    """Logic of the ``pe`` lane requantizers of a :class:`FoldedDense` with fused
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
                    mul="lut", requant_luts=0, groups=1) -> dict:
    """Structural counts (:func:`~ddnhw.hw.protocol.cost_features`) of a :class:`FoldedDense`
    with direct weights from its parameters alone. LUT terms: ``mul`` (LUT multiplier bit
    products, 0 with ``mul="dsp"``), ``add`` (adder tree bits), ``acc`` (base multiplexer and
    accumulator adder), ``mux`` (input-slice multiplexer inputs), ``ffs`` (the flip-flops),
    ``ctrl`` (1: the control), ``requant`` (the fused lane requantizers' logic,
    :func:`lane_requant_luts`; 0: none, ``out_bits`` is then the accumulator output's width);
    FFs as the ``ff`` term; the weight memory; one DSP per MAC with ``mul="dsp"``. ``groups``
    (a grouped layer, :func:`group_geometry`): the memory holds ``sf * nf`` words of the real
    weights only, and the multiplexer selects one of ``slices`` inputs ``slice_lanes`` wide."""
    geo = group_geometry(n_out, n_in, groups, pe, simd)
    sf, nf, xl = geo["sf"], geo["nf"], geo["slice_lanes"]
    wb, xb, acc = weight_bits, in_bits, acc_bits
    prod = wb + xb
    ffs = (n_in * xb + 2 * xl * xb + pe * simd * wb + 2 * pe * acc
           + (nf - 1) * pe * (out_bits if requant_luts else acc)
           + (pe * acc + 8 if requant_luts else 0) + n_out * out_bits + 3 * 16 + 8)
    return cost_features(
        luts={"mul": pe * simd * wb * xb if mul == "lut" else 0,
              "add": pe * (simd - 1) * (prod + 1),
              "acc": pe * acc * 2,
              "mux": xl * xb * (geo["slices"] - 1),
              "ffs": ffs, "ctrl": 1, "requant": requant_luts},
        ffs={"ff": ffs},
        memories=[(pe * simd * wb, sf * nf)],
        dsp_muls=pe * simd if mul == "dsp" else 0)


class FoldedDenseModel:
    """Cycle model of :class:`FoldedDense`: ``sf`` tiles per output group, ``nf`` groups,
    with a requant stage or not, single-buffered or not (its stages' valid/last/end flags,
    the issue counters and the output register)."""

    def __init__(self, sf, nf, requant=False, single_buffer=False, pipe=0, decoupled=False,
                 rq_reg=False):
        self.sf, self.nf, self.rq, self.single = sf, nf, requant, single_buffer
        self.rq_reg = bool(rq_reg)
        self.e = (0, 0)                                # requant output register (valid, end)
        self.decoupled = decoupled
        self.busy = self.s = self.g = self.pending = 0
        self.r = self.bb = self.c = (0, 0, 0)        # (valid, last, end) per stage
        self.p = [(0, 0, 0)] * pipe                  # the extra dot-product stages
        self.d = (0, 0)                                # requant stage (valid, end)
        self.ov = 0

    def valid(self):
        return self.ov

    def _out_load(self):
        if self.rq_reg:
            return self.e[0] and self.e[1]
        if self.rq:
            return self.d[0] and self.d[1]
        return self.c[0] and self.c[1] and self.c[2]

    def _go(self, out_ready):
        if self.decoupled:
            return not (self.busy and self._a_last() and self.ov)
        return not (self._out_load() and self.ov and not out_ready)

    def _a_last(self):
        return self.s == self.sf - 1 and self.g == self.nf - 1

    def ready(self, out_ready):
        return (self._go(out_ready) and ((not self.busy) or self._a_last())
                and not (self.single and self.pending))

    def step(self, fire_in, out_ready):
        go, a_last_s, a_last = self._go(out_ready), self.s == self.sf - 1, self._a_last()
        ce = go or self.decoupled
        out_load, busy, ov = self._out_load(), self.busy, self.ov
        if go and self.busy:
            if a_last_s:
                self.s, self.g = 0, self.g + 1
            else:
                self.s += 1
            if a_last:
                self.busy, self.g = 0, 0
        if fire_in:
            self.busy, self.s, self.g = 1, 0, 0
        if ce:
            c = self.c
            self.c = self.p[-1] if self.p else self.bb
            self.p = [self.bb] + self.p[:-1] if self.p else []
            self.bb = self.r
            self.r = (busy and go, a_last_s, a_last)
            if self.rq_reg:
                self.e = self.d
            if self.rq:
                self.d = (c[0] and c[1], c[2])
        if self.single:
            if fire_in:
                self.pending = 1
            if ov and out_ready:
                self.pending = 0
        if out_ready:
            self.ov = 0
        if ce and out_load:
            self.ov = 1


# where the weight memory goes (``wmem``): yosys decides (``auto``), or its ``rom_style``
# attribute asks for block RAM (``bram``: a ROM too small for yosys' own choice then reads in
# one BRAM access, not through several levels of LUT decode) or logic
WMEM_STYLES = {"auto": None, "bram": {"rom_style": "block"}, "logic": {"rom_style": "logic"}}


class FoldedDenseSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`FoldedDense`: the checked arguments, the
    packed memory words (``w_init``, ``b_init``), accumulator and output ranges, the requant
    classes; everything :class:`FoldedDense` documents as attributes."""

    def __init__(self, weight, bias, in_type, out_type, pe=1, simd=1, mul="auto", requant=None,
                 single_buffer=False, decode="direct", groups=1, columns=None, pipe=0,
                 dsp=None, rq_reg=False, wmem="auto"):
        self._setup(weight, bias, in_type, out_type, pe, simd, mul, requant, groups, columns)
        self._setup_decode(decode)
        self._setup_pipe(pipe, dsp, rq_reg)
        if wmem not in WMEM_STYLES:
            raise ValueError(f"wmem must be one of {', '.join(WMEM_STYLES)}, not {wmem!r}")
        self.wmem = wmem
        self.single_buffer = bool(single_buffer)
        if self.single_buffer:
            self.ii = self.latency + 1
        self.in_shape = data.ArrayLayout(int_shape(in_type), self.n_in)
        self.out_shape = data.ArrayLayout(int_shape(out_type), self.n_out)

    def _setup(self, weight, bias, in_type, out_type, pe, simd, mul, requant, groups=1,
               columns=None):
        check_int_type("in_type", in_type)
        check_int_type("out_type", out_type)
        self.weight, self.bias = check_weight_bias(weight, bias)
        self.n_out, self.n_in = self.weight.shape
        self._setup_groups(groups, columns)
        _check_fold("pe", pe, self.n_out)
        _check_fold("simd", simd, self.n_in // self.groups)
        if self.groups > 1 and not group_fold_ok(self.n_out, self.groups, pe):
            og = self.n_out // self.groups
            raise ValueError(f"pe {pe} must divide the {og} outputs of a group or be a multiple "
                             f"k * {og} with k dividing groups {self.groups}")
        if mul not in MUL_STYLES:
            raise ValueError(f"mul must be one of {MUL_STYLES}, not {mul!r}")
        self.pe, self.simd = pe, simd
        self.in_type, self.out_type = in_type, out_type

        lo, hi = dense_range(self.weight, self.bias, in_type)
        self.acc_range = [(int(lo[k]), int(hi[k])) for k in range(self.n_out)]
        self.acc_shape = shape_for(int(min(lo)), int(max(hi)))
        self._setup_requant(requant)
        out_range = self.acc_range if self.requant is None else self.rq_range
        for k, (olo, ohi) in enumerate(out_range):
            if not out_type.contains(olo, ohi):
                raise ValueError(f"out_type {out_type} cannot hold output {k} range "
                                 f"[{olo}, {ohi}]")
        self.w_shape = shape_for(int(self.weight.min()), int(self.weight.max()))
        self.b_shape = shape_for(min(0, int(self.bias.min())), max(0, int(self.bias.max())))
        self.acc_type = (self.acc_shape.signed, self.acc_shape.width)
        self.weight_bits = self.w_shape.width
        if mul == "auto":
            mul = "lut" if min(self.weight_bits, in_type.bits) <= LUT_MUL_MAX_BITS else "dsp"
        self.mul = mul

        self.geometry = geo = group_geometry(self.n_out, self.n_in, self.groups, pe, simd)
        self.sf = geo["sf"]     # synapse fold: tiles per output group (of one group's columns)
        self.nf = geo["nf"]     # neuron fold: output groups
        self.ii = self.sf * self.nf
        self.latency = self.ii + (4 if self.requant is None else 5)
        self.mem_depth = self.ii
        self.mem_width = pe * simd * self.weight_bits

        # zero-padded weight tiles -> packed memory words, address = g * sf + s
        bw = self.weight_bits
        self.w_init = self._pack(lambda v: v & ((1 << bw) - 1), bw)
        bp = np.zeros(self.nf * pe, dtype=np.int64)
        bp[:self.n_out] = self.bias
        bb = self.b_shape.width
        self.b_init = []
        for g in range(self.nf):
            word = 0
            for p in range(pe):
                word |= (int(bp[g * pe + p]) & ((1 << bb) - 1)) << (p * bb)
            self.b_init.append(word)

    def _setup_requant(self, requant):
        self.requant, self.requant_classes, self.rq_range = None, [], None
        if requant is None:
            return
        if not isinstance(requant, (tuple, list)) or len(requant) not in (4, 5):
            raise ValueError(f"requant must be (multiplier, shift, lo, hi[, rounding]), not "
                             f"{requant!r}")
        mul, sh, rlo, rhi = (np.asarray(requant[0]), np.asarray(requant[1]), int(requant[2]),
                             int(requant[3]))
        self.rounding = requant[4] if len(requant) == 5 else "half_up"
        for name, v in (("multiplier", mul), ("shift", sh)):
            if v.shape != (self.n_out,) or v.dtype.kind not in "iu":
                raise ValueError(f"requant {name} must be an integer array of shape "
                                 f"({self.n_out},), got {v.dtype} shape {v.shape}")
        if np.any(sh < 0) or np.any(sh > 62):
            raise ValueError(f"requant shift must be in 0..62, got {sh.tolist()}")
        if rlo > rhi:
            raise ValueError(f"requant clip range lo={rlo} > hi={rhi}")
        self.requant = (mul.astype(np.int64), sh.astype(np.int64), rlo, rhi)
        self.rq_range = [self.requant_expr(Const(0, self.acc_shape), k, self.acc_range[k])[1]
                          for k in range(self.n_out)]
        # per lane: distinct (multiplier, shift) pairs, with the accumulator range they see
        nf = _ceil_div(self.n_out, self.pe)
        for p in range(self.pe):
            classes = {}
            for k in range(p, min(nf * self.pe, self.n_out), self.pe):
                key = (int(mul[k]), int(sh[k]))
                alo, ahi = classes.get(key, self.acc_range[k])
                classes[key] = (min(alo, self.acc_range[k][0]), max(ahi, self.acc_range[k][1]))
            self.requant_classes.append(classes)

    def requant_expr(self, x, key_or_k, acc_range):
        """``requant_channel`` of ``x`` for output ``k`` (an int) or a ``(multiplier, shift)``."""
        mul, sh, rlo, rhi = self.requant
        m_, s_ = ((mul[key_or_k], sh[key_or_k]) if isinstance(key_or_k, int) else key_or_k)
        return requant_channel(x, acc_range[0], acc_range[1], m_, s_, rlo, rhi,
                               self.rounding)

    def _setup_decode(self, decode):
        if decode not in DECODES:
            raise ValueError(f"decode must be one of {DECODES}, not {decode!r}")
        levels = [int(v) for v in np.unique(np.concatenate([self.weight.ravel(), [0]]))]
        code_bits = max(1, (len(levels) - 1).bit_length())
        self.levels, self.code_bits = levels, code_bits
        if decode == "auto":
            if code_bits >= self.weight_bits:
                decode = "direct"
            else:
                cost = {d: decode_luts(d, levels, self.weight_bits, self.in_type.bits)
                        for d in ("table", "constmul")}
                decode = min(cost, key=lambda d: (cost[d], d))
        elif decode != "direct" and code_bits >= self.weight_bits:
            raise ValueError(f"decode {decode!r}: the {len(levels)} weight levels need "
                             f"{code_bits} code bits, not fewer than the {self.weight_bits} "
                             f"weight bits (use 'direct')")
        self.decode = decode
        if decode == "direct":
            return
        index = {v: k for k, v in enumerate(levels)}
        self.w_init = self._pack(index.__getitem__, code_bits)
        self.mem_width = self.pe * self.simd * code_bits

    def _setup_groups(self, groups, columns):
        """``groups``, ``columns`` (``(groups, n_in / groups)``: the input columns of every
        group, in step order) and ``x_order`` (grouped only: the input lane, or -1 for a zero,
        of every lane of the grouped input register). Every weight outside an output's group
        columns must be zero (the grouped block never reads them)."""
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1 \
                or self.n_out % groups or self.n_in % groups:
            raise ValueError(f"groups must be an int >= 1 dividing n_out {self.n_out} and n_in "
                             f"{self.n_in}, not {groups!r}")
        self.groups = groups
        cg = self.n_in // groups
        if columns is None:
            cols = np.arange(self.n_in, dtype=np.int64).reshape(groups, cg)
        else:
            cols = np.asarray(columns)
            if (cols.shape != (groups, cg) or cols.dtype.kind not in "iu"
                    or sorted(cols.ravel().tolist()) != list(range(self.n_in))):
                raise ValueError(f"columns must be an integer array ({groups}, {cg}) holding "
                                 f"every input column 0..{self.n_in - 1} once, not "
                                 f"{np.asarray(columns).tolist()!r}")
            cols = cols.astype(np.int64)
        self.columns = cols
        og = self.n_out // groups
        outside = self.weight.copy()
        for g in range(groups):
            outside[g * og:(g + 1) * og, cols[g]] = 0
        if np.any(outside):
            k, j = (int(v[0]) for v in np.nonzero(outside))
            raise ValueError(f"weight[{k}, {j}] = {int(self.weight[k, j])} is outside output "
                             f"{k}'s group {k // og} columns: a grouped FoldedDense needs zeros "
                             f"there")

    def _compact(self):
        """The weights the memory holds, ``(nf * pe, sf * simd)`` zero-padded: the matrix
        itself, or (grouped) every output's own group columns in ``columns`` order."""
        geo, pe, simd = self.geometry, self.pe, self.simd
        wp = np.zeros((self.nf * pe, self.sf * simd), dtype=np.int64)
        if self.groups == 1:
            wp[:self.n_out, :self.n_in] = self.weight
            return wp
        for k in range(self.n_out):
            wp[k, :geo["cg"]] = self.weight[k, self.columns[k // geo["og"]]]
        return wp

    def _pack(self, code, bits):
        """Memory words (address ``g * sf + s``) of the tiles of :meth:`_compact`: lane
        ``(p, j)`` holds ``code(weight)`` in bits ``(p * simd + j) * bits``."""
        wp, pe, simd = self._compact(), self.pe, self.simd
        words = []
        for g in range(self.nf):
            for s in range(self.sf):
                tile = wp[g * pe:(g + 1) * pe, s * simd:(s + 1) * simd]
                word = 0
                for p in range(pe):
                    for j in range(simd):
                        word |= code(int(tile[p, j])) << ((p * simd + j) * bits)
                words.append(word)
        return words

    def x_order(self):
        """Grouped: the input lane (or -1: a zero) of every lane of the input register, block
        by block, step by step, then the ``kpt`` groups of a block (so slice ``b * sf + s``,
        ``kpt * simd`` lanes, is what a tile of block ``b`` reads at step ``s``)."""
        geo, simd = self.geometry, self.simd
        order = []
        for b in range(geo["blocks"]):
            for s in range(self.sf):
                for j in range(geo["kpt"]):
                    cols = self.columns[b * geo["kpt"] + j]
                    order += [int(cols[s * simd + l]) if s * simd + l < geo["cg"] else -1
                              for l in range(simd)]
        return order

    def _setup_pipe(self, pipe, dsp, rq_reg=False):
        """``pipe`` (extra dot-product register stages), ``rq_reg`` (a register after the fused
        requantizer: it cuts the path from the requantizer through the collect buffer) and,
        with ``mul="packed"``, the packing (:func:`ddnhw.hw.packed.pack_plan`: ``dsp`` packed
        multipliers, the field width, the memory word layout)."""
        top = 3 if self.mul == "packed" else 2
        if not isinstance(pipe, int) or isinstance(pipe, bool) or not 0 <= pipe <= top:
            raise ValueError(f"pipe must be an int in 0..{top}"
                             + ("" if top == 3 else " (3 with mul='packed')") + f", not {pipe!r}")
        if not isinstance(rq_reg, bool):
            raise ValueError(f"rq_reg must be True or False, not {rq_reg!r}")
        if rq_reg and self.requant is None:
            raise ValueError("rq_reg registers the fused requantizer's outputs: it needs one "
                             "(requant=...)")
        self.pipe, self.rq_reg = pipe, rq_reg
        self.latency += pipe + int(rq_reg)
        # more steps per vector than stages after issue: at most one vector in flight there
        self.decoupled = self.sf * self.nf > 3 + pipe + (self.requant is not None) + rq_reg
        self.packing = None
        if self.mul != "packed":
            if dsp is not None:
                raise ValueError(f"dsp (packed multipliers) needs mul='packed', not {self.mul!r}")
            return
        if self.decode != "direct" or self.groups != 1:
            raise ValueError("mul='packed' needs direct weights and groups=1")
        self.packing = packed.pack_plan(self, dsp)
        self.w_init = self.packing["words"]
        self.mem_width = self.packing["width"]

    def cycle_model(self):
        return FoldedDenseModel(self.sf, self.nf, self.requant is not None, self.single_buffer,
                                self.pipe, self.decoupled, self.rq_reg)

    def features(self):
        """:func:`folded_features` of these parameters; fused lane requantizers (a lane's
        per-class multipliers are used one at a time: synthesis shares them, so they form one
        ``const_muls`` group per lane); a code decode stores level codes (narrower memory
        words) and adds its decode logic per MAC (:func:`decode_luts`)."""
        rq, groups = 0, ()
        acc_bits = self.acc_type[1]
        if self.requant is not None:
            rq = lane_requant_luts(self.requant[0], self.requant[1], acc_bits,
                                   self.out_type.bits, self.pe)
            groups = [[(acc_bits, int(m), True) for m in self.requant[0][p::self.pe]]
                      for p in range(self.pe)]
        f = folded_features(self.n_out, self.n_in, self.weight_bits, self.in_type.bits,
                            acc_bits, self.out_type.bits, self.pe, self.simd,
                            "lut" if self.mul == "packed" else self.mul,
                            requant_luts=rq, groups=self.groups)
        f["const_muls"] = cost_features(const_muls=groups)["const_muls"]
        if self.pipe or self.packing is not None:
            packed.adjust_features(self, f)
        if self.rq_reg:     # the requantized lanes, their valid/end flags and group index
            regs = self.pe * self.out_type.bits + 2 + max(1, (self.nf - 1).bit_length())
            f["luts"]["ffs"] += regs
            f["ffs"]["ff"] += regs
        if self.decode != "direct":   # codes in memory, decoded per MAC
            macs, wb, cb = self.pe * self.simd, self.weight_bits, self.code_bits
            saved = macs * (wb - cb)
            f["luts"]["ffs"] -= saved
            f["ffs"]["ff"] -= saved
            f["memories"] = ((macs * cb, self.mem_depth),)
            if self.decode == "constmul":   # no variable multiplier: constant products
                f["luts"]["mul"] = 0
            # table: the lookup (the multiplier stays in "mul"); constmul: all of its logic
            f["luts"]["raw"] = macs * (wb if self.decode == "table" else
                                       decode_luts(self.decode, self.levels, wb,
                                                   self.in_type.bits))
        return f


class FoldedDense(SpecComponent, spec=FoldedDenseSpec):
    """``o[k] = bias[k] + sum_j weight[k, j] * i[j]`` computed by ``pe * simd`` MACs.

    Parameters
    ----------
    weight : integer array (n_out, n_in); bias : integer array (n_out,).
    in_type, out_type : :class:`ddnhw.ir.IntType`; ``out_type`` must hold the exact worst-case
        range of every output for these weights.
    pe : output lanes computed in parallel (1..n_out). simd : input lanes per cycle (1..n_in).
        Neither needs to divide its dimension (the weight matrix is zero-padded).
    mul : ``"lut"`` (shift-add partial products: no ``$mul`` cell, so yosys keeps them out of
        DSP blocks), ``"dsp"`` (``*``: yosys maps it to SB_MAC16 / MULT18X18D where it can) or
        ``"auto"`` (default: ``"lut"`` when weights or inputs have at most 4 bits).
    requant : None, or ``(multiplier, shift, lo, hi)`` (per-output arrays, clip bounds): the
        outputs are then ``clip((acc * multiplier + 2**(shift-1)) >> shift, lo, hi)``
        (exactly ``ddnhw.fixedpoint.requantize``) and ``out_type`` must hold those.
        The ``pe`` requantizers work on each output group as it finishes; a lane has one
        constant-coefficient circuit per distinct ``(multiplier, shift)`` among its channels.

    Each cycle the block multiplies ``simd`` inputs with a ``pe x simd`` weight tile read from a
    ``lib.memory.Memory`` of ``ceil(n_out/pe) * ceil(n_in/simd)`` words (one word = the tile's
    packed weights) and adds the ``pe`` dot products into accumulators whose width is the
    narrowest holding the exact output range (two's complement wrap-around of partial sums is
    harmless: the final sum is in range). Biases live in a second memory, one word per tile row.

    Ports (as :class:`~ddnhw.hw.Dense`): ``i`` is ``In(stream.Signature(ArrayLayout(in shape,
    n_in)))``, the whole input vector in one beat; ``o`` is ``Out(stream.Signature(
    ArrayLayout(out shape, n_out)))``, the whole output vector in one beat.

    Timing: ``ii == ceil(n_in/simd) * ceil(n_out/pe)`` cycles (grouped: see below) between
    accepted inputs at full rate; ``latency == ii + 4`` (``ii + 5`` with ``requant``) cycles
    from an input handshake to its output's first valid cycle. ``o.valid`` comes from a
    register and never depends on ``o.ready``. With more steps per vector (``sf * nf``) than
    stages after issue (``decoupled``), neither does ``i.ready``: only the issue stage waits,
    before the last step of a vector, while the output register is still full, and the stages
    after it never stall; else all stages stall together while a finished vector waits for a
    full output register. Arbitrary idle cycles and backpressure are tolerated.
    ``pipe`` (0..2; 3 with ``mul="packed"``: its product tree registered halfway too)
    adds register stages to the dot products (``latency`` grows by as many); ``rq_reg=True`` registers the fused requantizer's outputs before the collect
    buffer (``latency`` + 1); ``wmem`` (``auto``, ``bram``, ``logic``) places the weight
    memory (:data:`WMEM_STYLES`); ``mul="packed"`` computes two PE lanes per multiplier
    (:mod:`ddnhw.hw.packed`, ``dsp`` of them; ``pe`` even).

    ``single_buffer=True`` (for a consumer that sends the next input only after it took the
    output, as :class:`~ddnhw.hw.recurrent.Recurrent` does): the output beat is read straight
    from the buffer that collects the finished output groups (no second, output register: about
    ``n_out`` accumulators fewer flip-flops), and a new input is accepted only once the previous
    output was taken; ``ii == latency + 1``, ``latency`` unchanged.

    ``decode`` (how weights are stored): ``"direct"`` (default: the weight values, one
    ``weight_bits`` field each); for a weight matrix with few distinct values (a codebook
    layer: 2**code_bits levels, code_bits < weight_bits) the memory can hold each weight's
    level index instead, decoded per MAC either by a ``"table"`` (a constant lookup of the
    level, then the multiplier) or by ``"constmul"`` (constant shift-add products of the input
    with every level, then the index selects one: no variable multiplier). ``"auto"`` picks
    the smaller of the two by :func:`decode_luts` (and ``"direct"`` when the levels do not
    fit fewer bits). Every mode computes the same integers.

    ``groups`` (default 1), ``columns`` (a grouped convolution; depthwise: ``groups == n_out``):
    output ``k`` belongs to group ``k // (n_out/groups)`` and reads only that group's
    ``n_in/groups`` input columns ``columns[g]`` (an integer array ``(groups, n_in/groups)``
    holding every column once; default: contiguous blocks). ``weight`` is still the whole
    ``(n_out, n_in)`` matrix and must be zero outside each output's group columns. The memory
    holds only the group columns (``ceil(n_out/pe) * ceil(cols/simd)`` words, ``cols =
    n_in/groups``), the input register holds the lanes reordered group by group (wiring), and
    a tile's steps read its group's slices only, so ``ii == ceil(n_out/pe) *
    ceil(cols/simd)`` (``simd`` in 1..cols). ``pe`` must divide a group's outputs (its tiles
    then stay in one group) or be ``k * n_out/groups`` with ``k`` dividing ``groups`` (a tile
    of ``k`` whole groups reads ``k * simd`` lanes per step: a wider input multiplexer with
    fewer inputs). The same integers as the ungrouped block of the same matrix; ``groups=1``
    is exactly the dense block (the same circuit).

    Attributes (from ``spec``, a :class:`FoldedDenseSpec`): ``latency``, ``ii``, ``pe``,
    ``simd``, ``mul`` (resolved), ``decode`` (resolved), ``levels`` (the distinct weight
    values, for a code decode), ``code_bits``, ``requant`` (None or
    ``(multiplier, shift, lo, hi)``), ``single_buffer``, ``requant_classes`` (per lane, the
    distinct ``(multiplier, shift)`` pairs), ``acc_type`` (accumulator
    :class:`IntType`-like ``(signed, bits)``), ``weight_bits``, ``mem_depth``, ``mem_width``,
    ``groups``, ``columns`` (always an array; contiguous blocks when not given), ``geometry``
    (:func:`group_geometry`); its cost is ``spec.features()`` (``ddnhw.lower.estimate``).
    """

    def _lane_requant(self, m, vals, g):
        """Requantized values of the finished group ``g`` (PE lanes ``vals``)."""
        out = []
        for p, (v, classes) in enumerate(zip(vals, self.requant_classes)):
            q = Signal(int_shape(self.out_type), name=f"rq{p}")
            keys = sorted(classes)
            if len(keys) == 1:
                m.d.comb += q.eq(self.spec.requant_expr(v, keys[0], classes[keys[0]])[0])
            elif keys:
                cls = Signal(range(len(keys)), name=f"rq_class{p}")
                with m.Switch(g):
                    for gi in range(self.nf):
                        k = gi * self.pe + p
                        if k < self.n_out:
                            with m.Case(gi):
                                m.d.comb += cls.eq(keys.index((int(self.requant[0][k]),
                                                               int(self.requant[1][k]))))
                with m.Switch(cls):
                    for ci, key in enumerate(keys):
                        with m.Case(ci):
                            m.d.comb += q.eq(self.spec.requant_expr(v, key, classes[key])[0])
            out.append(q)
        return out

    def _input_slice(self, m, x_cur, s_cnt, addr, busy, ce, a_last_s, a_last):
        """``(x_slice, x_in)``: the lanes step ``s_cnt`` of the current tile reads, and what
        an accepted input loads into ``x_cur``. Dense: the payload, slice ``s_cnt``. Grouped:
        the payload lanes in :meth:`FoldedDenseSpec.x_order` (wiring), slice ``b * sf + s``
        of the tile's block ``b``: the memory address when a tile spans whole groups (one
        tile per block), else a block base counter plus ``s_cnt``."""
        geo, sf, xb = self.geometry, self.sf, self.in_type.bits
        width = geo["slice_lanes"] * xb
        if self.groups == 1:
            return (x_cur.word_select(s_cnt, width) if sf > 1 else x_cur,
                    self.i.payload.as_value())
        lanes = self.i.payload.as_value()
        x_in = Cat(*(lanes[k * xb:(k + 1) * xb] if k >= 0 else Const(0, xb)
                     for k in self.x_order()))
        tpb = geo["nf"] // geo["blocks"]      # tiles per block
        if geo["slices"] == 1:
            return x_cur, x_in
        if tpb == 1:
            return x_cur.word_select(addr, width), x_in
        base = Signal(range(geo["slices"]), name="x_base")   # the block's first slice
        t_cnt = Signal(range(tpb), name="t_cnt")             # tile within the block
        with m.If(ce & busy & a_last_s):
            with m.If(t_cnt == tpb - 1):
                m.d.sync += [t_cnt.eq(0), base.eq(base + sf)]
            with m.Else():
                m.d.sync += t_cnt.eq(t_cnt + 1)
        with m.If((ce & busy & a_last) | (self.i.valid & self.i.ready)):
            m.d.sync += [t_cnt.eq(0), base.eq(0)]
        x_idx = Signal(range(geo["slices"]), name="x_idx")
        m.d.comb += x_idx.eq(base + s_cnt)
        return x_cur.word_select(x_idx, width), x_in

    def _dots(self, m, ce, b_x, b_w, x_shape, geo):
        """The ``pe`` dot products of stage B (registered weight word ``b_w``, input slice
        ``b_x``), each through ``pipe`` extra register stages (enabled by ``ce``)."""
        pe, simd, xb, wb = self.pe, self.simd, self.in_type.bits, self.weight_bits
        if self.packing is not None:
            return packed.packed_dots(self, m, ce, b_x, b_w, x_shape)
        dots = []
        cb = self.code_bits
        for p in range(pe):
            terms = []
            sub = (p // geo["og"]) * simd if geo["kpt"] > 1 else 0   # lane p's group's lanes
            for j in range(simd):
                x = b_x[(sub + j) * xb:(sub + j + 1) * xb]
                x = x.as_signed() if x_shape.signed else x
                if self.decode == "constmul":   # the code selects a constant product
                    code = b_w[(p * simd + j) * cb:(p * simd + j + 1) * cb]
                    terms.append(Array([_const_mul(x, v) for v in self.levels])[code])
                    continue
                if self.decode == "table":      # the code looks up the level
                    code = b_w[(p * simd + j) * cb:(p * simd + j + 1) * cb]
                    w = Array([Const(v, self.w_shape) for v in self.levels])[code]
                else:
                    w = b_w[(p * simd + j) * wb:(p * simd + j + 1) * wb]
                    w = w.as_signed() if self.w_shape.signed else w
                terms.append(w * x if self.mul == "dsp" else _lut_mul(w, x))
            dots.append(pipelined_sum(m, ce, terms, self.pipe, f"d{p}"))
        return dots

    # -- HDL -------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        pe, sf, nf = self.pe, self.sf, self.nf
        xb, bb = self.in_type.bits, self.b_shape.width
        acc_shape = self.acc_shape
        x_shape = int_shape(self.in_type)

        m.submodules.weights = wmem = memory.Memory(
            shape=unsigned(self.mem_width), depth=self.mem_depth, init=self.w_init,
            attrs=WMEM_STYLES[self.wmem])
        m.submodules.biases = bmem = memory.Memory(
            shape=unsigned(pe * bb), depth=nf, init=self.b_init)
        wrd = wmem.read_port()
        brd = bmem.read_port()

        # decoupled (more steps per vector than stages after issue): only issue (stage A)
        # waits, issuing a vector's last step only while the output register is empty, so
        # the one vector that step finishes finds it free and the later stages never stall
        # (no enable from o.ready fans out over the pipeline). Else every stage advances
        # together and all stall while a finished vector waits for a full output register.
        go = Signal()        # stage A advances
        ce = Const(1) if self.decoupled else go     # the later stages advance
        out_load = Signal()  # stage C finishes a vector this cycle

        # -- stage A: issue (counters, input vector register) --------------------------------
        busy = Signal()
        s_cnt = Signal(range(max(sf, 2)))
        g_cnt = Signal(range(max(nf, 2)))
        addr = Signal(range(max(self.mem_depth, 2)))
        geo = self.geometry
        xl = geo["slice_lanes"]             # input lanes a step reads
        x_cur = Signal(geo["slices"] * xl * xb)   # zero-padded to whole SIMD words
        a_last_s = Signal()
        a_last = Signal()
        pending = Signal()   # single_buffer: an accepted input whose output was not taken yet
        # s_cnt == sf - 1 and g_cnt == nf - 1 as registers, set with the counters (they are on
        # the ready path to the producer: no comparator there)
        s_last = Signal(init=int(sf == 1))
        g_last = Signal(init=int(nf == 1))
        m.d.comb += [
            a_last_s.eq(s_last),
            a_last.eq(s_last & g_last),
            self.i.ready.eq(go & (~busy | a_last) & ~pending),
            wrd.addr.eq(addr), wrd.en.eq(ce),
        ]
        with m.If(go & busy):
            with m.If(a_last_s):
                m.d.sync += [s_cnt.eq(0), g_cnt.eq(g_cnt + 1), s_last.eq(sf == 1),
                             g_last.eq(g_cnt == nf - 2)]
            with m.Else():
                m.d.sync += [s_cnt.eq(s_cnt + 1), s_last.eq(s_cnt == sf - 2)]
            m.d.sync += addr.eq(addr + 1)
            with m.If(a_last):
                m.d.sync += [busy.eq(0), g_cnt.eq(0), addr.eq(0), g_last.eq(nf == 1)]
        x_slice, x_in = self._input_slice(m, x_cur, s_cnt, addr, busy, go, a_last_s, a_last)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), s_cnt.eq(0), g_cnt.eq(0), addr.eq(0), x_cur.eq(x_in),
                         s_last.eq(sf == 1), g_last.eq(nf == 1)]

        # -- stage R: weight tile read; x slice registered alongside -------------------------
        r_valid, r_first, r_last, r_end = Signal(), Signal(), Signal(), Signal()
        r_g = Signal.like(g_cnt)
        r_x = Signal(xl * xb)
        with m.If(ce):
            m.d.sync += [r_valid.eq(busy & go), r_first.eq(s_cnt == 0), r_last.eq(a_last_s),
                         r_end.eq(a_last), r_g.eq(g_cnt), r_x.eq(x_slice)]

        # -- stage B: registered weight tile (a BRAM output register); dot products ----------
        b_valid, b_first, b_last, b_end = Signal(), Signal(), Signal(), Signal()
        b_g = Signal.like(g_cnt)
        b_x = Signal(xl * xb)
        b_w = Signal(self.mem_width)
        with m.If(ce):
            m.d.sync += [b_valid.eq(r_valid), b_first.eq(r_first), b_last.eq(r_last),
                         b_end.eq(r_end), b_g.eq(r_g), b_x.eq(r_x), b_w.eq(wrd.data)]
        dots, last = self._dots(m, ce, b_x, b_w, x_shape, geo), (b_valid, b_first, b_last,
                                                                  b_end, b_g)
        for k in range(self.pipe):   # the control follows the dot products' extra stages
            nxt = tuple(Signal.like(v, name=f"p{k}_{n}") for v, n in
                        zip(last, ("valid", "first", "last", "end", "g")))
            with m.If(ce):
                m.d.sync += [a.eq(b) for a, b in zip(nxt, last)]
            last = nxt
        b_valid, b_first, b_last, b_end, b_g = last
        m.d.comb += [brd.addr.eq(b_g), brd.en.eq(ce)]

        # -- stage C: accumulate; finished groups collected; finished vector -> output -------
        c_valid, c_first, c_last, c_end = Signal(), Signal(), Signal(), Signal()
        c_g = Signal.like(g_cnt)
        c_dot = [Signal(acc_shape, name=f"c_dot{p}") for p in range(pe)]
        with m.If(ce):
            m.d.sync += [c_valid.eq(b_valid), c_first.eq(b_first), c_last.eq(b_last),
                         c_end.eq(b_end), c_g.eq(b_g)]
            m.d.sync += [c_dot[p].eq(dots[p]) for p in range(pe)]
        acc = [Signal(acc_shape, name=f"acc{p}") for p in range(pe)]
        sums = []
        for p in range(pe):
            bias = brd.data[p * bb:(p + 1) * bb]
            bias = bias.as_signed() if self.b_shape.signed else bias
            s = Signal(acc_shape, name=f"sum{p}")
            base = Signal(acc_shape, name=f"base{p}")
            m.d.comb += base.eq(acc[p])
            with m.If(c_first):
                m.d.comb += base.eq(bias)
            m.d.comb += s.eq(base + c_dot[p])
            sums.append(s)
        with m.If(ce & c_valid):
            m.d.sync += [acc[p].eq(sums[p]) for p in range(pe)]

        # stage D (requant only): finished groups registered, then requantized per PE lane
        if self.requant is None:
            f_valid, f_end, f_g, f_vals, f_shape = c_valid & c_last, c_end, c_g, sums, acc_shape
        else:
            f_valid, f_end = Signal(name="d_valid"), Signal(name="d_end")
            f_g = Signal.like(g_cnt, name="d_g")
            d_acc = [Signal(acc_shape, name=f"d_acc{p}") for p in range(pe)]
            with m.If(ce):
                m.d.sync += [f_valid.eq(c_valid & c_last), f_end.eq(c_end), f_g.eq(c_g)]
                with m.If(c_last):
                    m.d.sync += [d_acc[p].eq(sums[p]) for p in range(pe)]
            f_vals, f_shape = self._lane_requant(m, d_acc, f_g), int_shape(self.out_type)
            if self.rq_reg:   # stage E: the requantized lanes registered
                e_valid, e_end = Signal(name="e_valid"), Signal(name="e_end")
                e_g = Signal.like(g_cnt, name="e_g")
                e_vals = [Signal(f_shape, name=f"e_rq{p}") for p in range(pe)]
                with m.If(ce):
                    m.d.sync += [e_valid.eq(f_valid), e_end.eq(f_end), e_g.eq(f_g)]
                    m.d.sync += [e_vals[p].eq(f_vals[p]) for p in range(pe)]
                f_valid, f_end, f_g, f_vals = e_valid, e_end, e_g, e_vals

        # collect buffer: every finished group but the last lands here
        collect = [Signal(f_shape, name=f"col{k}") for k in range((nf - 1) * pe)]
        if nf > 1:
            with m.If(ce & f_valid & ~f_end):
                with m.Switch(f_g):
                    for g in range(nf - 1):
                        with m.Case(g):
                            m.d.sync += [collect[g * pe + p].eq(f_vals[p]) for p in range(pe)]

        m.d.comb += [
            out_load.eq(f_valid & f_end),
            go.eq(~(busy & a_last & self.o.valid) if self.decoupled else
                  ~(out_load & self.o.valid & ~self.o.ready)),
        ]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        if not self.single_buffer:
            with m.If(ce & out_load):
                m.d.sync += self.o.valid.eq(1)
                full = collect + f_vals
                m.d.sync += [self.o.payload[k].eq(full[k]) for k in range(self.n_out)]
            return m
        # single buffer: the last group lands in its own register; the output is read from
        # the collect buffer and that register, which hold still until the output is taken
        last = [Signal(f_shape, name=f"last{p}") for p in range(pe)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += pending.eq(1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += pending.eq(0)
        with m.If(ce & out_load):
            m.d.sync += self.o.valid.eq(1)
            m.d.sync += [last[p].eq(f_vals[p]) for p in range(pe)]
        full = collect + last
        m.d.comb += [self.o.payload[k].eq(full[k]) for k in range(self.n_out)]
        return m
