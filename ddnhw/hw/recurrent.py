"""Recurrent layer (``rnn``, ``gru`` or ``lstm``): a MAC engine over ``[x_t, h]`` and a
pipelined lookup-table gate unit; the states stay in registers between time steps.

What the ops share (the engine, the gate issue, the index requantizers, the table ROMs, the
state write and the handshake) is :class:`Recurrent`; what differs is one :class:`Cell` per op
in :data:`CELLS` (its gate pipeline, its depth, the ranges it requantizes and its cost terms),
while the op's row blocks, requantizer blocks and weight mask come from its IR definition
(:data:`ddnhw.ir.ops.OPS`). Adding a recurrent op means adding a :class:`Cell` here."""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory

from ddnhw.ir.ops import OPS as IR_OPS
from ddnhw.ir.ops import dense_range
from ddnhw.ir.ops.base import column_range
from ddnhw.ir.types import IntType

from ._types import check_int_type, check_pos_int, check_weight_bias, int_shape, shape_for
from .dense import DenseSpec
from .folded import FoldedDenseSpec, _check_fold
from .protocol import BlockSpec, SpecComponent, cost_features
from .requant import requant_channel, requant_luts

__all__ = ["Recurrent", "RecurrentSpec", "RecurrentModel", "Cell", "CELLS", "OPS",
           "GATE_DEPTH"]


def _round_shift(v, s):
    """``round_shift(v, s)`` of an Amaranth value (half up: add half, arithmetic shift)."""
    return v if s == 0 else (v + (1 << (s - 1))) >> s


class Cell:
    """The op-specific part of :class:`Recurrent`'s gate unit (a strategy; stateless, one
    instance per op in :data:`CELLS`).

    Attributes
    ----------
    depth : cycles from a gate group's issue to its ``h`` write, inclusive (:data:`GATE_DEPTH`).
    reads : table reads per gate lane (one ROM port each).
    """

    depth = 3
    reads = 1

    def setup(self, spec, cell_bits):
        """Op-specific checks and attributes of ``spec`` (after the common ones)."""
        if cell_bits is not None:
            raise ValueError(f"cell_bits is an lstm parameter, not one of {spec.op}")

    def pre_ranges(self, spec):
        """Per requantized channel (``requants * H``), the range of its input (exact for the
        accumulators; the cell state's is its clip range)."""
        return list(spec.acc_range)

    def state_bits(self, spec) -> int:
        """Register bits of one hidden unit's state (``h``, and ``c`` for lstm)."""
        return spec.state_type.bits

    def lane_cost(self, spec, idx_bits):
        """Rough ``(luts, ffs)`` of one gate lane's arithmetic and pipeline registers (the
        requantizers, tables and state registers are counted by :class:`RecurrentSpec`)."""
        return 0, idx_bits

    def var_muls(self, spec):
        """``[(a_bits, b_bits)]``: one gate lane's variable products (the DSP rule)."""
        return []

    def build(self, u):
        """The gate pipeline of every lane in :class:`GateUnit` ``u``; returns the new ``h``
        value of each lane, valid at stage ``depth - 1`` (``u.v[-1]``, group ``u.g[-1]``),
        where :class:`Recurrent` writes it. ``u.v``/``u.g`` hold stages 0..2 on entry; a cell
        that reads later ones extends them first (``u.stages(depth)``)."""
        raise NotImplementedError


class RnnCell(Cell):
    """``rnn``: S0 index requantization, S1 table read, S2 state write."""

    def build(self, u):
        tports = u.rom("tanh", u.spec.tanh_table, u.tanh_shape, u.gl)
        for lane in range(u.gl):
            idx = u.requant(u.acc(0, lane), u.g[0], 0, lane, f"idx{lane}")
            u.m.d.comb += tports[lane].addr.eq(u.pipe(u.addr(idx), f"addr{lane}"))
        return [p.data for p in tports]


class GruCell(Cell):
    """``gru``: S0 r/z indices, S1 r/z table reads, S2 ``(acc_nx << gate_frac) + r * acc_nh``,
    S3 n index, S4 tanh read, S5 ``n + round_shift(z * (h - n), gate_frac)`` and state write."""

    depth = 6
    reads = 3

    def pre_ranges(self, spec):
        h, ar = spec.hidden, spec.acc_range
        gf, r_max = spec.gate_frac, 1 << spec.gate_frac
        out = list(ar[:2 * h])
        for k in range(h):
            (nxl, nxh), (nhl, nhh) = ar[2 * h + k], ar[3 * h + k]
            out.append(((nxl << gf) + min(0, nhl * r_max), (nxh << gf) + max(0, nhh * r_max)))
        return out

    def lane_cost(self, spec, idx_bits):
        gf, sb, ab = spec.gate_frac, spec.state_type.bits, spec.acc_type.bits
        return ((gf + 1) * (ab + 1) + (gf + 1) * (sb + 1) + 3 * (ab + gf + sb),
                2 * idx_bits + 2 * ab + (ab + gf + 2) + 3 * (gf + 1) + idx_bits)

    def var_muls(self, spec):    # r * acc_nh and z * (h - n)
        gb = spec.gate_frac + 1
        return [(gb, spec.acc_type.bits), (gb, spec.state_type.bits + 1)]

    def build(self, u):
        m, sp, gl = u.m, u.spec, u.gl
        gf = sp.gate_frac
        rz_ports = u.rom("sigmoid", sp.sigmoid_table, u.sigmoid_shape, 2 * gl)
        tports = u.rom("tanh", sp.tanh_table, u.tanh_shape, gl)
        u.stages(6)
        new = []
        for lane in range(gl):
            # S0: r, z indices; n_x, n_h accumulators carried
            ir_ = u.requant(u.acc(0, lane), u.g[0], 0, lane, f"idx_r{lane}")
            iz_ = u.requant(u.acc(1, lane), u.g[0], 1, lane, f"idx_z{lane}")
            m.d.comb += [rz_ports[2 * lane].addr.eq(u.pipe(u.addr(ir_), f"ar{lane}")),
                         rz_ports[2 * lane + 1].addr.eq(u.pipe(u.addr(iz_), f"az{lane}"))]
            nx0 = u.lane_signal(sp.acc_range, 2, lane, f"nx{lane}")
            nh0 = u.lane_signal(sp.acc_range, 3, lane, f"nh{lane}")
            m.d.comb += [nx0.eq(u.acc(2, lane)), nh0.eq(u.acc(3, lane))]
            nx2 = u.pipe(u.pipe(nx0, f"nx{lane}_1"), f"nx{lane}_2")
            nh2 = u.pipe(u.pipe(nh0, f"nh{lane}_1"), f"nh{lane}_2")
            # S2: pre = (n_x << gf) + r * n_h
            r, z = rz_ports[2 * lane].data, rz_ports[2 * lane + 1].data
            pre3 = u.lane_signal(sp.pre_ranges, 2, lane, f"pre{lane}")
            m.d.sync += pre3.eq((nx2 << gf) + r * nh2)
            z3 = u.pipe(z, f"z{lane}_3")
            # S3: n index; S4: tanh read
            in_ = u.requant(pre3, u.g[3], 2, lane, f"idx_n{lane}")
            m.d.comb += tports[lane].addr.eq(u.pipe(u.addr(in_), f"an{lane}"))
            z5 = u.pipe(u.pipe(z3, f"z{lane}_4"), f"z{lane}_5")
            # S5: h' = n + round_shift(z * (h - n), gf)
            n5 = tports[lane].data
            hn = Signal(u.state_shape, name=f"hnew{lane}")
            m.d.comb += hn.eq(n5 + _round_shift(z5 * (u.hold(u.hreg, lane, u.g[5]) - n5), gf))
            new.append(hn)
        return new


class LstmCell(Cell):
    """``lstm``: S0 i/f/g/o indices, S1 table reads (three sigmoid, one tanh), S2 ``c' =
    clip(round_shift(f * c + i * g, gate_frac), cell range)``, S3 cell state write and the
    ``c'`` index, S4 tanh read, S5 ``round_shift(o * tanh(c'), gate_frac)`` and state write.
    The cell state registers (``H`` of them, signed ``cell_bits`` bits) read as 0 at the first
    step of every sequence, like ``h``."""

    depth = 6
    reads = 5

    def setup(self, spec, cell_bits):
        if cell_bits is None:
            raise ValueError("lstm needs cell_bits (the cell state's signed width)")
        spec.cell_bits = check_pos_int("cell_bits", cell_bits, 2)
        if spec.cell_bits > 30:
            raise ValueError(f"cell_bits must be in 2..30, not {cell_bits}")
        spec.cell_range = (-(1 << (spec.cell_bits - 1)), (1 << (spec.cell_bits - 1)) - 1)

    def pre_ranges(self, spec):
        return list(spec.acc_range) + [spec.cell_range] * spec.hidden

    def state_bits(self, spec):
        return spec.state_type.bits + spec.cell_bits

    def lane_cost(self, spec, idx_bits):
        gf, sb, cb = spec.gate_frac, spec.state_type.bits, spec.cell_bits
        return ((gf + 1) * (cb + 1) + 2 * (gf + 1) * (sb + 1) + 3 * (cb + gf + sb) + 2 * cb,
                5 * idx_bits + cb + 3 * (gf + 1))

    def var_muls(self, spec):    # f * c, i * g, o * tanh(c')
        gb, sb = spec.gate_frac + 1, spec.state_type.bits
        return [(gb, spec.cell_bits), (gb, sb), (gb, sb)]

    def build(self, u):
        m, sp, gl = u.m, u.spec, u.gl
        gf = sp.gate_frac
        cmin, cmax = sp.cell_range
        c_shape = signed(sp.cell_bits)
        sig_ports = u.rom("sigmoid", sp.sigmoid_table, u.sigmoid_shape, 3 * gl)
        tports = u.rom("tanh", sp.tanh_table, u.tanh_shape, 2 * gl)
        creg = [Signal(c_shape, name=f"c{k}") for k in range(u.hidden)]
        u.stages(6)
        new = []
        for lane in range(gl):
            # S0: i, f, g, o indices; S1: address registers, table reads
            ports = [sig_ports[3 * lane], sig_ports[3 * lane + 1], tports[2 * lane],
                     sig_ports[3 * lane + 2]]
            for q, (gate, port) in enumerate(zip("ifgo", ports)):
                idx = u.requant(u.acc(q, lane), u.g[0], q, lane, f"idx_{gate}{lane}")
                m.d.comb += port.addr.eq(u.pipe(u.addr(idx), f"a{gate}{lane}"))
            i2, f2, g2, o2 = (p.data for p in ports)
            # S2: c' = clip(round_shift(f * c + i * g, gf), cmin, cmax)
            cs = Signal(c_shape, name=f"cnew{lane}")
            s = _round_shift(f2 * u.hold(creg, lane, u.g[2]) + i2 * g2, gf)
            m.d.sync += cs.eq(Mux(s < cmin, cmin, Mux(s > cmax, cmax, s)))
            o3 = u.pipe(o2, f"o{lane}_3")
            # S3: cell state write, tanh(c') index; S4: tanh read
            u.write(creg, {lane: cs}, u.v[3], u.g[3])
            ic = u.requant(cs, u.g[3], 4, lane, f"idx_c{lane}")
            tc = tports[2 * lane + 1]
            m.d.comb += tc.addr.eq(u.pipe(u.addr(ic), f"ac{lane}"))
            o5 = u.pipe(u.pipe(o3, f"o{lane}_4"), f"o{lane}_5")
            # S5: h' = round_shift(o * tanh(c'), gf)
            hn = Signal(u.state_shape, name=f"hnew{lane}")
            m.d.comb += hn.eq(_round_shift(o5 * tc.data, gf))
            new.append(hn)
        return new


#: the recurrent ops this block implements, each with its :class:`Cell`
CELLS = {"rnn": RnnCell(), "gru": GruCell(), "lstm": LstmCell()}
OPS = tuple(CELLS)
#: cycles from a gate group's issue to its hidden-state write, inclusive (see Recurrent)
GATE_DEPTH = {op: cell.depth for op, cell in CELLS.items()}


class RecurrentModel:
    """Cycle model of :class:`Recurrent`: its engine's model, the step's ``busy`` flag, the
    group counter, the gate pipeline's valid/group registers, the step counter and the
    output register."""

    def __init__(self, spec):
        self.engine = spec.engine.cycle_model()
        self.groups, self.steps = spec.groups, spec.steps
        self.seq = spec.return_sequences
        self.busy = self.t = self.grp = self.ov = 0
        self.pipe = [(0, 0)] * (spec.gate_depth - 1)     # (valid, group) per stage

    def valid(self):
        return self.ov

    def _issue(self):
        return bool(self.engine.valid()) and not self.ov

    def _engine_out_ready(self):
        return self._issue() and self.grp == self.groups - 1

    def ready(self, out_ready):
        return bool(self.engine.ready(self._engine_out_ready())) and not self.busy

    def step(self, fire_in, out_ready):
        issue, eng_ready = self._issue(), self._engine_out_ready()
        wv, wg = self.pipe[-1]
        done = wv and wg == self.groups - 1
        self.engine.step(fire_in, eng_ready)
        if fire_in:
            self.busy = 1
        self.pipe = [(int(issue), self.grp)] + self.pipe[:-1]
        if issue:
            self.grp = 0 if self.grp == self.groups - 1 else self.grp + 1
        if out_ready:
            self.ov = 0
        if done:
            last_t = self.t == self.steps - 1
            self.busy = 0
            self.t = 0 if last_t else self.t + 1
            if self.seq or last_t:
                self.ov = 1


class RecurrentSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`Recurrent`: the checked arguments, the
    op's ``cell`` (:data:`CELLS`) and ``gate_depth``, the engine's spec (``engine``, also
    ``children``), exact ranges, the index requantizer plan (``classes``,
    :meth:`plan_requant`) and the gate unit's ``gate_estimate``; lstm also ``cell_bits`` and
    ``cell_range`` (``(cmin, cmax)``)."""

    def __init__(self, op, weight, bias, multiplier, shift, lut_lo, lut_hi, tanh_table,
                 in_type, state_type, steps, return_sequences=0, sigmoid_table=None,
                 gate_frac=None, fold=None, gate_lanes=None, regs_every=2, dense_style="cse",
                 cell_bits=None):
        self._setup(op, weight, bias, multiplier, shift, lut_lo, lut_hi, tanh_table,
                    in_type, state_type, steps, return_sequences, sigmoid_table, gate_frac,
                    fold, gate_lanes, regs_every, dense_style, cell_bits)

    # -- checks ----------------------------------------------------------------------------------
    def _setup(self, op, weight, bias, multiplier, shift, lut_lo, lut_hi, tanh_table, in_type,
               state_type, steps, return_sequences, sigmoid_table, gate_frac, fold, gate_lanes,
               regs_every, dense_style, cell_bits):
        if op not in OPS:
            raise ValueError(f"op must be one of {OPS}, not {op!r}")
        check_int_type("in_type", in_type)
        check_int_type("state_type", state_type)
        if not state_type.signed:
            raise ValueError(f"state_type must be signed, not {state_type}")
        self.op, self.cell, opdef = op, CELLS[op], IR_OPS[op]
        self.gate_depth = self.cell.depth
        self.g = g = opdef.gates
        self.weight, self.bias = check_weight_bias(weight, bias)
        if self.weight.shape[0] % g:
            raise ValueError(f"{op} weight has {self.weight.shape[0]} rows, not a multiple of {g}")
        self.hidden = h = self.weight.shape[0] // g
        self.n_in = i = self.weight.shape[1] - h
        if i < 1:
            raise ValueError(f"{op} weight {self.weight.shape} leaves no input columns for "
                             f"hidden size {h}")
        self.steps = check_pos_int("steps", steps)
        if return_sequences not in (0, 1, False, True):
            raise ValueError(f"return_sequences must be 0 or 1, not {return_sequences!r}")
        self.return_sequences = int(return_sequences)
        n_rq = opdef.requants * h
        self.multiplier = self._int_array("multiplier", multiplier, n_rq)
        self.shift = self._int_array("shift", shift, n_rq)
        if np.any(self.shift < 0) or np.any(self.shift > 62):
            raise ValueError(f"shift must be in 0..62, got {self.shift.tolist()}")
        self.lut_lo, self.lut_hi = int(lut_lo), int(lut_hi)
        n_lut = self.lut_hi - self.lut_lo + 1
        if n_lut < 1:
            raise ValueError(f"empty lookup table range [{lut_lo}, {lut_hi}]")
        self.tanh_table = self._int_array("tanh_table", tanh_table, n_lut)
        if self.tanh_table.min() < state_type.min or self.tanh_table.max() > state_type.max:
            raise ValueError(f"tanh_table values [{self.tanh_table.min()}, "
                             f"{self.tanh_table.max()}] do not fit state_type {state_type}")
        self.in_type, self.state_type = in_type, state_type
        if opdef.gated:
            self.gate_frac = check_pos_int("gate_frac", gate_frac, 0)
            self.sigmoid_table = self._int_array("sigmoid_table", sigmoid_table, n_lut)
            if self.sigmoid_table.min() < 0 or self.sigmoid_table.max() > 1 << self.gate_frac:
                raise ValueError(f"sigmoid_table values must be in [0, 2**gate_frac = "
                                 f"{1 << self.gate_frac}]")
        else:
            self.gate_frac, self.sigmoid_table = 0, None
        if np.any(self.weight[~opdef.weight_mask(i, h)]):
            raise ValueError(opdef.mask_rule)
        self.cell.setup(self, cell_bits)

        # exact ranges: state, engine input, accumulators
        self.h_lo = min(0, int(self.tanh_table.min()))
        self.h_hi = max(0, int(self.tanh_table.max()))
        self.u_type = IntType.for_range(min(in_type.min, self.h_lo), max(in_type.max, self.h_hi))
        lo, hi = dense_range(self.weight, self.bias, self.u_type)
        self.acc_type = IntType.for_range(int(min(lo)), int(max(hi)))
        a_lo, a_hi = column_range(self.weight, self.bias, [in_type.min] * i + [self.h_lo] * h,
                                  [in_type.max] * i + [self.h_hi] * h)
        self.acc_range = [(int(a), int(b)) for a, b in zip(a_lo, a_hi)]

        # engine
        self.fold = None if fold is None else tuple(fold)
        if self.fold is None:
            self.engine = DenseSpec(self.weight, self.bias, self.u_type, self.acc_type,
                                    regs_every=regs_every, style=dense_style)
        else:
            if len(self.fold) != 2:
                raise ValueError(f"fold must be (pe, simd), not {fold!r}")
            pe, simd = self.fold
            _check_fold("pe", pe, g * h)
            _check_fold("simd", simd, i + h)
            self.engine = FoldedDenseSpec(self.weight, self.bias, self.u_type, self.acc_type,
                                          pe=pe, simd=simd, single_buffer=True)
        if gate_lanes is None:
            gate_lanes = h if self.fold is None else 1
        gl = check_pos_int("gate_lanes", gate_lanes)
        if h % gl:
            raise ValueError(f"gate_lanes {gl} must divide the hidden size {h}")
        self.gate_lanes, self.groups = gl, h // gl
        self.step_cycles = self.engine.latency + self.groups + self.gate_depth - 1
        self.ii = self.steps * self.step_cycles
        self.latency = self.step_cycles if self.return_sequences else self.ii
        self.children = (self.engine,)
        self.pre_ranges = self.cell.pre_ranges(self)
        self.plan_requant()
        self.gate_estimate = self._gate_estimate()
        # a single-buffered engine has no output register (see FoldedDense)
        self.engine_ffs_saved = 0 if self.fold is None else (g * h) * self.acc_type.bits
        self.in_shape = data.ArrayLayout(int_shape(in_type), i)
        self.out_shape = data.ArrayLayout(int_shape(state_type), h)

    @staticmethod
    def _int_array(name, v, n):
        a = np.asarray(v) if v is not None else None
        if a is None or a.shape != (n,) or a.dtype.kind not in "iu":
            got = "None" if a is None else f"{a.dtype} shape {a.shape}"
            raise ValueError(f"{name} must be an integer array of shape ({n},), got {got}")
        return a.astype(np.int64)

    # -- planning --------------------------------------------------------------------------------
    def plan_requant(self):
        """``self.classes[q][l]`` for requant block q (the op's ``multiplier`` blocks: rnn
        [n]; gru [r, z, n]; lstm [i, f, g, o, c]) and gate lane l: ``(classes, keys, var)``:
        ``classes`` ``{(mult, shift): (lo, hi)}`` over the lane's hidden units, ``keys`` the
        class of each group, ``var`` None (one constant-coefficient circuit per class,
        multiplexed) or ``(S, [M_g], (lo, hi))``: one multiplier by a per-group constant
        ``M_g = mult_g << (S - shift_g)`` and one rounding shift by ``S`` (``round_shift(v *
        m, s) == round_shift(v * (m << (S - s)), S)`` exactly), chosen when the lane has
        several classes and that is cheaper. The input ranges are the cell's
        (``pre_ranges``)."""
        h, gl, ng = self.hidden, self.gate_lanes, self.groups
        pre = self.pre_ranges
        idx_bits = max(1, (self.lut_hi - self.lut_lo).bit_length())
        self.classes = []
        for q in range(len(pre) // h):
            lanes = []
            for lane in range(gl):
                cls, keys = {}, []
                for grp in range(ng):
                    c = q * h + grp * gl + lane
                    key = (int(self.multiplier[c]), int(self.shift[c]))
                    lo, hi = cls.get(key, pre[c])
                    cls[key] = (min(lo, pre[c][0]), max(hi, pre[c][1]))
                    keys.append(key)
                var = None
                if len(cls) > 1:
                    big_s = max(sh for _, sh in keys)
                    mults = [mm << (big_s - sh) for mm, sh in keys]
                    lo = min(v[0] for v in cls.values())
                    hi = max(v[1] for v in cls.values())
                    vb, mb = shape_for(lo, hi).width, shape_for(min(mults), max(mults)).width
                    var_cost = vb * mb + vb + mb + 4 * idx_bits
                    const_cost = sum(requant_luts(shape_for(*r).width, mm, ss, idx_bits)
                                     for (mm, ss), r in cls.items()) + len(cls) * idx_bits
                    if var_cost < const_cost:
                        var = (big_s, mults, (lo, hi))
                lanes.append((cls, keys, var))
            self.classes.append(lanes)


    def _gate_estimate(self):
        """Rough gate-unit cost: requantizers, table ROMs (LUTs below 512 bits per port),
        the cell's arithmetic and pipeline registers (:meth:`Cell.lane_cost`), state and
        control registers."""
        n_lut = self.lut_hi - self.lut_lo + 1
        sb, ab = self.state_type.bits, self.acc_type.bits
        idx_bits = max(1, (n_lut - 1).bit_length())
        luts = ffs = 0
        for q, lanes in enumerate(self.classes):
            for cls, _, var in lanes:
                if var is not None:
                    big_s, mults, (lo, hi) = var
                    vb, mb = shape_for(lo, hi).width, shape_for(min(mults), max(mults)).width
                    luts += vb * mb + vb + mb + 4 * idx_bits + len(mults) * mb // 4
                    continue
                for (mm, ss), (lo, hi) in cls.items():
                    luts += requant_luts(shape_for(lo, hi).width, mm, ss, idx_bits)
                luts += (len(cls) - 1) * idx_bits
        gl, gf = self.gate_lanes, self.gate_frac
        ports = self.cell.reads * gl
        rom_bits = n_lut * (sb if self.sigmoid_table is None else max(sb, gf + 1))
        brams = ports if rom_bits > 512 else 0
        luts += 0 if brams else int(0.07 * rom_bits * ports)
        lane_luts, lane_ffs = self.cell.lane_cost(self, idx_bits)
        luts += gl * lane_luts
        ffs += gl * lane_ffs
        luts += (self.groups > 1) * (self.g * gl * ab * self.groups // 2 + gl * sb)
        luts += self.n_in * 0 + self.hidden * sb // 2 + 40      # h gating, control
        ffs += self.hidden * self.cell.state_bits(self) + 3 * 8 + 16
        return {"luts": int(luts), "ffs": int(ffs), "dsps": 0, "brams": int(brams)}

    def cycle_model(self):
        return RecurrentModel(self)

    def features(self):
        """The gate unit (its rough counts, as :attr:`gate_estimate`: requantizers, table
        ROMs, multipliers, registers; its constant and variable multipliers for the DSP rule)
        less the flip-flops a single-buffered engine saves, plus the engine (``parts``)."""
        consts, var = [], []
        for lanes in self.classes:
            for classes, _, v in lanes:
                if v is not None:
                    big_s, mults, (lo, hi) = v
                    var.append((max((-lo - 1).bit_length(), hi.bit_length()) + 1,
                                max(abs(m) for m in mults).bit_length() + 1))
                else:
                    consts += [[(max((-lo - 1).bit_length(), hi.bit_length()) + 1, m, True)]
                               for (m, _), (lo, hi) in classes.items()]
        var += self.cell.var_muls(self) * self.gate_lanes
        g = self.gate_estimate
        return cost_features(luts={"raw": g["luts"]},
                             ffs={"raw": g["ffs"] - self.engine_ffs_saved},
                             brams=g["brams"], const_muls=consts, var_muls=var,
                             parts=(self.engine,))


class GateUnit:
    """What a :class:`Cell` builds its gate pipeline with (plain Python, inside
    :meth:`Recurrent.elaborate`): the module ``m``, the block's ``spec``, sizes (``hidden``,
    ``gl`` gate lanes, ``ng`` groups), shapes, the ``h`` registers ``hreg``, the stage valid
    and group signals ``v[k]``/``g[k]`` (stage 0: the issue cycle; :meth:`stages` extends
    them) and helpers for accumulators, pipeline registers, index requantizers, table ROMs
    and state registers."""

    def __init__(self, m, spec, eng, hreg, first, issue, grp):
        self.m, self.spec, self.eng, self.hreg, self.first = m, spec, eng, hreg, first
        self.hidden, self.gl, self.ng = spec.hidden, spec.gate_lanes, spec.groups
        self.state_shape = int_shape(spec.state_type)
        self.tanh_shape = shape_for(int(spec.tanh_table.min()), int(spec.tanh_table.max()))
        self.sigmoid_shape = unsigned((1 << spec.gate_frac).bit_length())
        self.a_bits = max(1, (spec.lut_hi - spec.lut_lo).bit_length())
        self.v, self.g = [issue], [grp]

    def stages(self, n):
        """Extend the stage valid/group registers to ``n`` stages (``v[n-1]``, ``g[n-1]``)."""
        while len(self.v) < n:
            k = len(self.v)
            self.v.append(self.pipe(self.v[-1], f"v{k}"))
            self.g.append(self.pipe(self.g[-1], f"g{k}"))

    def pipe(self, v, name):
        """A register carrying ``v`` one stage on."""
        r = Signal(v.shape(), name=name)
        self.m.d.sync += r.eq(v)
        return r

    def acc(self, q, lane):
        """Accumulator of row block ``q``, gate lane ``lane``, the group at stage 0."""
        h, gl, ng = self.hidden, self.gl, self.ng
        vals = [self.eng.o.payload[q * h + gi * gl + lane] for gi in range(ng)]
        if ng == 1:
            return vals[0]
        s = Signal(int_shape(self.spec.acc_type), name=f"acc{q}_{lane}")
        self.m.d.comb += s.eq(Array(vals)[self.g[0]])
        return s

    def lane_signal(self, ranges, q, lane, name):
        """A signal wide enough for ``ranges[q * H + unit]`` of every unit of ``lane``."""
        units = [q * self.hidden + gi * self.gl + lane for gi in range(self.ng)]
        return Signal(shape_for(min(ranges[u][0] for u in units),
                                max(ranges[u][1] for u in units)), name=name)

    def hold(self, regs, lane, grp):
        """The state register of ``lane`` in group ``grp`` (one of ``regs``, per hidden unit),
        read as 0 at the first step of a sequence."""
        sel = [regs[gi * self.gl + lane] for gi in range(self.ng)]
        return Mux(self.first, 0, sel[0] if self.ng == 1 else Array(sel)[grp])

    def write(self, regs, values, valid, grp):
        """When ``valid``, write ``values`` (``{lane: value}``) to the registers (``regs``, one
        per hidden unit) of those lanes in group ``grp``."""
        with self.m.If(valid):
            if self.ng == 1:
                self.m.d.sync += [regs[lane].eq(v) for lane, v in values.items()]
            else:
                with self.m.Switch(grp):
                    for gi in range(self.ng):
                        with self.m.Case(gi):
                            self.m.d.sync += [regs[gi * self.gl + lane].eq(v)
                                              for lane, v in values.items()]

    def addr(self, idx):
        """The table address of index ``idx``."""
        return (idx - self.spec.lut_lo)[:self.a_bits]

    def requant(self, v, grp, q, lane, name):
        """Table index of ``v`` for lane ``lane`` of requant block ``q`` in group ``grp`` (the
        plan of :meth:`RecurrentSpec.plan_requant`)."""
        m = self.m
        cls, keys, var = self.spec.classes[q][lane]
        lo, hi = self.spec.lut_lo, self.spec.lut_hi
        if var is not None:
            big_s, mults, _ = var
            mg = Signal(shape_for(min(mults), max(mults)), name=f"{name}_mult")
            with m.Switch(grp):
                for g_, mv in enumerate(mults):
                    with m.Case(g_):
                        m.d.comb += mg.eq(mv)
            p = Signal((v * mg).shape(), name=f"{name}_prod")
            m.d.comb += p.eq(v * mg)
            t = p if big_s == 0 else (p + (1 << (big_s - 1))) >> big_s
            out = Signal(shape_for(lo, hi), name=name)
            m.d.comb += out.eq(Mux(t < lo, lo, Mux(t > hi, hi, t)))
            return out

        def expr(key):
            rlo, rhi = cls[key]
            return requant_channel(v, rlo, rhi, key[0], key[1], lo, hi)[0]
        out = Signal(shape_for(lo, hi), name=name)
        order = sorted(cls)
        if len(order) == 1:
            m.d.comb += out.eq(expr(order[0]))
            return out
        sel = Signal(range(len(order)), name=f"{name}_class")
        with m.Switch(grp):
            for g_, key in enumerate(keys):
                with m.Case(g_):
                    m.d.comb += sel.eq(order.index(key))
        with m.Switch(sel):
            for c, key in enumerate(order):
                with m.Case(c):
                    m.d.comb += out.eq(expr(key))
        return out

    def rom(self, name, table, shape, ports):
        """``ports`` synchronous read ports on copies of ``table``, one ROM each (YoWASP yosys
        trapped in memory_libmap on one ROM with 32 read ports)."""
        out = []
        for k in range(ports):
            mem = memory.Memory(shape=shape, depth=len(table), init=[int(v) for v in table])
            self.m.submodules[f"{name}{k}"] = mem
            out.append(mem.read_port())
        return out


class Recurrent(SpecComponent, spec=RecurrentSpec):
    """An ``rnn``, ``gru`` or ``lstm`` layer over sequences of ``steps`` beats, exactly the
    op's golden kernel (:mod:`ddnhw.ir.ops.recurrent` and the op's module).

    Parameters
    ----------
    op : ``"rnn"`` (G = 1), ``"gru"`` (G = 4: row blocks r, z, n_x, n_h) or ``"lstm"`` (G = 4:
        i, f, g, o).
    weight, bias : integer arrays ``(G*H, I+H)``, ``(G*H,)``.
    multiplier, shift : per pre-activation requantization to a table index (``H`` entries for
        rnn, ``3*H`` for gru, ``5*H`` for lstm: i, f, g, o and the cell state);
        ``lut_lo``/``lut_hi``: the index range.
    tanh_table, sigmoid_table : integer tables of ``lut_hi - lut_lo + 1`` entries (sigmoid:
        gru and lstm only, values in ``[0, 2**gate_frac]``).
    in_type : :class:`ddnhw.ir.IntType` of ``x``; state_type : signed type of ``h``.
    steps : T, the fixed sequence length. return_sequences : 0 (one output beat per sequence,
        ``h_T``) or 1 (``T`` beats, every ``h_t``).
    fold : None (the MAC engine is an unrolled :class:`~ddnhw.hw.Dense`, ``regs_every`` and
        ``dense_style`` as there) or ``(pe, simd)`` (a single-buffered
        :class:`~ddnhw.hw.FoldedDense`).
    gate_lanes : hidden units the gate unit processes per cycle (a divisor of H; default H
        with an unrolled engine, 1 with a folded one).
    cell_bits : lstm only (and required there): the cell state's signed width (2..30); ``c``
        is clipped to it.

    Ports: ``i`` is ``In(stream.Signature(ArrayLayout(x shape, I)))``, one time step per beat,
    sequences back to back; ``o`` is ``Out(stream.Signature(ArrayLayout(state shape, H)))``.

    Operation: one time step is in flight at a time. An input beat is accepted when the
    previous step's state is written; the engine gets ``u = [x_t, h]`` (``h`` read as 0 at the
    first step of every sequence) in one beat of ``I + H`` lanes of ``u_type`` and returns the
    ``G*H`` accumulators in one beat. The gate unit then issues ``H / gate_lanes`` groups on
    consecutive cycles; each passes through its op's :class:`Cell` pipeline of
    :data:`GATE_DEPTH` cycles (rnn: index requantization, table read, state write; gru and
    lstm: see :class:`GruCell`, :class:`LstmCell`). Tables are ``lib.memory.Memory`` ROMs
    with synchronous read ports (yosys may map them to block RAM). A lane's index requantizer
    is one constant-coefficient circuit per distinct ``(multiplier, shift)`` among its hidden
    units, or (when cheaper) one multiplier by a per-group constant and one shift (see
    :meth:`RecurrentSpec.plan_requant`). ``o.payload`` is the state register itself: a step
    whose state is on ``o`` waits (before its first state write) until that beat is taken.

    Timing (no idle input, no backpressure): one step takes ``step_cycles = engine.latency +
    H / gate_lanes + GATE_DEPTH[op] - 1`` cycles from its input handshake to the next one;
    ``ii = steps * step_cycles`` cycles per sequence; ``latency`` (first input beat to first
    output beat) is ``step_cycles`` with ``return_sequences``, else ``ii``. Arbitrary idle
    cycles and backpressure are tolerated.

    Attributes (from ``spec``, a :class:`RecurrentSpec`, except ``engine``: the MAC block,
    a component): ``latency``, ``ii``, ``step_cycles``, ``u_type``,
    ``acc_type``, ``gate_lanes``, ``groups``, ``fold``, ``gate_estimate`` (the gate unit's
    rough ``luts``/``ffs``/``dsps``/``brams``; the whole block's cost is ``spec.features()``).
    """

    def _setup(self):
        # the engine component (the spec holds the engine's spec under the same name)
        object.__setattr__(self, "engine", self.spec.engine.build())
        super()._setup()

    # -- HDL -------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = eng = self.engine
        h, i, ng = self.hidden, self.n_in, self.groups
        s_shape = int_shape(self.state_type)

        hreg = [Signal(s_shape, name=f"h{k}") for k in range(h)]
        busy = Signal()          # a step is in flight
        t = Signal(range(max(self.steps, 2)))
        first = Signal()
        done = Signal()          # the step's last state write happens this cycle
        m.d.comb += first.eq(t == 0)

        # -- input -> engine: u = [x_t, h] -------------------------------------------------
        m.d.comb += [eng.i.valid.eq(self.i.valid & ~busy),
                     self.i.ready.eq(eng.i.ready & ~busy)]
        for j in range(i):
            m.d.comb += eng.i.payload[j].eq(self.i.payload[j])
        for k in range(h):
            m.d.comb += eng.i.payload[i + k].eq(Mux(first, 0, hreg[k]))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += busy.eq(1)

        # -- gate issue: groups of gl hidden units on consecutive cycles -------------------
        grp = Signal(range(max(ng, 2)))
        issue = Signal()
        last_grp = Signal()
        m.d.comb += [issue.eq(eng.o.valid & ~self.o.valid), last_grp.eq(grp == ng - 1),
                     eng.o.ready.eq(issue & last_grp)]
        with m.If(issue):
            m.d.sync += grp.eq(Mux(last_grp, 0, grp + 1))

        # -- the op's gate pipeline, then the state write ----------------------------------
        unit = GateUnit(m, self.spec, eng, hreg, first, issue, grp)
        unit.stages(3)
        new = self.cell.build(unit)
        unit.stages(self.gate_depth)
        wv, wg = unit.v[-1], unit.g[-1]
        unit.write(hreg, dict(enumerate(new)), wv, wg)

        # -- step end, output --------------------------------------------------------------
        m.d.comb += done.eq(wv & (wg == ng - 1))
        last_t = Signal()
        m.d.comb += last_t.eq(t == self.steps - 1)
        m.d.comb += [self.o.payload[k].eq(hreg[k]) for k in range(h)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(done):
            m.d.sync += [busy.eq(0), t.eq(Mux(last_t, 0, t + 1))]
            if self.return_sequences:
                m.d.sync += self.o.valid.eq(1)
            else:
                with m.If(last_t):
                    m.d.sync += self.o.valid.eq(1)
        return m
