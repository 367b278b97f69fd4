"""Recurrent layer (Elman ``rnn`` or ``gru``): a MAC engine over ``[x_t, h]`` and a pipelined
lookup-table gate unit; the hidden state stays in registers between time steps."""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory

from ddnhw.ir.ops import dense_range
from ddnhw.ir.recurrent import column_range
from ddnhw.ir.types import IntType

from ._types import check_int_type, check_pos_int, check_weight_bias, int_shape, shape_for
from .dense import DenseSpec
from .folded import FoldedDenseSpec, _check_fold
from .protocol import BlockSpec, SpecComponent, cost_features
from .requant import requant_channel, requant_luts

__all__ = ["Recurrent", "RecurrentSpec", "RecurrentModel", "GATE_DEPTH"]

OPS = ("rnn", "gru")
# cycles from a gate group's issue to its hidden-state write, inclusive (see Recurrent)
GATE_DEPTH = {"rnn": 3, "gru": 6}


class RecurrentModel:
    """Cycle model of :class:`Recurrent`: its engine's model, the step's ``busy`` flag, the
    group counter, the gate pipeline's valid/group registers, the step counter and the
    output register."""

    def __init__(self, spec):
        self.engine = spec.engine.cycle_model()
        self.groups, self.steps = spec.groups, spec.steps
        self.seq = spec.return_sequences
        self.busy = self.t = self.grp = self.ov = 0
        self.pipe = [(0, 0)] * (GATE_DEPTH[spec.op] - 1)     # (valid, group) per stage

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
    engine's spec (``engine``, also ``children``), exact ranges, the index requantizer plan
    (``classes``, :meth:`plan_requant`) and the gate unit's ``gate_estimate``."""

    def __init__(self, op, weight, bias, multiplier, shift, lut_lo, lut_hi, tanh_table,
                 in_type, state_type, steps, return_sequences=0, sigmoid_table=None,
                 gate_frac=None, fold=None, gate_lanes=None, regs_every=2, dense_style="cse"):
        self._setup(op, weight, bias, multiplier, shift, lut_lo, lut_hi, tanh_table,
                    in_type, state_type, steps, return_sequences, sigmoid_table, gate_frac,
                    fold, gate_lanes, regs_every, dense_style)

    # -- checks ----------------------------------------------------------------------------------
    def _setup(self, op, weight, bias, multiplier, shift, lut_lo, lut_hi, tanh_table, in_type,
               state_type, steps, return_sequences, sigmoid_table, gate_frac, fold, gate_lanes,
               regs_every, dense_style):
        if op not in OPS:
            raise ValueError(f"op must be one of {OPS}, not {op!r}")
        check_int_type("in_type", in_type)
        check_int_type("state_type", state_type)
        if not state_type.signed:
            raise ValueError(f"state_type must be signed, not {state_type}")
        self.op = op
        self.g = g = 4 if op == "gru" else 1
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
        n_rq = 3 * h if g == 4 else h
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
        if g == 4:
            self.gate_frac = check_pos_int("gate_frac", gate_frac, 0)
            self.sigmoid_table = self._int_array("sigmoid_table", sigmoid_table, n_lut)
            if self.sigmoid_table.min() < 0 or self.sigmoid_table.max() > 1 << self.gate_frac:
                raise ValueError(f"sigmoid_table values must be in [0, 2**gate_frac = "
                                 f"{1 << self.gate_frac}]")
            if np.any(self.weight[2 * h:3 * h, i:]) or np.any(self.weight[3 * h:, :i]):
                raise ValueError("gru rows n_x must be zero on the h columns and rows n_h zero "
                                 "on the x columns")
        else:
            self.gate_frac, self.sigmoid_table = 0, None

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
        self.step_cycles = self.engine.latency + self.groups + GATE_DEPTH[op] - 1
        self.ii = self.steps * self.step_cycles
        self.latency = self.step_cycles if self.return_sequences else self.ii
        self.children = (self.engine,)
        self.pre_ranges = self._pre_ranges()
        self.plan_requant()
        self.gate_estimate = self._gate_estimate()
        # a single-buffered engine has no output register (see FoldedDense)
        self.engine_ffs_saved = 0 if self.fold is None else (g * h) * self.acc_type.bits
        est = dict(getattr(self.engine, "estimate", {}))
        est["ffs"] = est.get("ffs", 0) - self.engine_ffs_saved
        self.estimate = {k: int(est.get(k, 0) + self.gate_estimate.get(k, 0))
                         for k in ("luts", "ffs", "dsps", "brams")}
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
    def _pre_ranges(self):
        """Per requantized channel (rnn: H, gru: 3H), the exact range of its pre-activation."""
        h, ar = self.hidden, self.acc_range
        if self.g == 1:
            return list(ar)
        gf, r_max = self.gate_frac, 1 << self.gate_frac
        out = list(ar[:2 * h])
        for k in range(h):
            (nxl, nxh), (nhl, nhh) = ar[2 * h + k], ar[3 * h + k]
            out.append(((nxl << gf) + min(0, nhl * r_max), (nxh << gf) + max(0, nhh * r_max)))
        return out

    def plan_requant(self):
        """``self.classes[q][l]`` for requant block q (rnn: [n]; gru: [r, z, n]) and gate lane
        l: ``(classes, keys, var)``: ``classes`` ``{(mult, shift): (lo, hi)}`` over the lane's
        hidden units, ``keys`` the class of each group, ``var`` None (one constant-coefficient
        circuit per class, multiplexed) or ``(S, [M_g], (lo, hi))``: one multiplier by a
        per-group constant ``M_g = mult_g << (S - shift_g)`` and one rounding shift by ``S``
        (``round_shift(v * m, s) == round_shift(v * (m << (S - s)), S)`` exactly), chosen
        when the lane has several classes and that is cheaper."""
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
        multipliers (LUT bit products), state and pipeline registers."""
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
        ports = (3 if self.g == 4 else 1) * gl
        rom_bits = n_lut * (sb if self.g == 1 else max(sb, gf + 1))
        brams = ports if rom_bits > 512 else 0
        luts += 0 if brams else int(0.07 * rom_bits * ports)
        if self.g == 4:
            luts += gl * ((gf + 1) * (ab + 1) + (gf + 1) * (sb + 1) + 3 * (ab + gf + sb))
            ffs += gl * (2 * idx_bits + 2 * ab + (ab + gf + 2) + 3 * (gf + 1) + idx_bits)
        else:
            ffs += gl * idx_bits
        luts += (self.groups > 1) * (self.g * gl * ab * self.groups // 2 + gl * sb)
        luts += self.n_in * 0 + self.hidden * sb // 2 + 40      # h gating, control
        ffs += self.hidden * sb + 3 * 8 + 16
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
        if self.op == "gru":   # r * acc_nh and z * (h - n) per gate lane
            gb = self.gate_frac + 1
            var += [(gb, self.acc_type.bits), (gb, self.state_type.bits + 1)] * self.gate_lanes
        g = self.gate_estimate
        return cost_features(luts={"raw": g["luts"]},
                             ffs={"raw": g["ffs"] - self.engine_ffs_saved},
                             brams=g["brams"], const_muls=consts, var_muls=var,
                             parts=(self.engine,))


class Recurrent(SpecComponent, spec=RecurrentSpec):
    """An ``rnn`` or ``gru`` layer over sequences of ``steps`` beats, exactly
    :func:`ddnhw.golden.recurrent.recurrent` (semantics: :mod:`ddnhw.ir.recurrent`).

    Parameters
    ----------
    op : ``"rnn"`` (G = 1) or ``"gru"`` (G = 4: row blocks r, z, n_x, n_h).
    weight, bias : integer arrays ``(G*H, I+H)``, ``(G*H,)``.
    multiplier, shift : per pre-activation requantization to a table index (``H`` entries for
        rnn, ``3*H`` for gru); ``lut_lo``/``lut_hi``: the index range.
    tanh_table, sigmoid_table : integer tables of ``lut_hi - lut_lo + 1`` entries (sigmoid:
        gru only, values in ``[0, 2**gate_frac]``).
    in_type : :class:`ddnhw.ir.IntType` of ``x``; state_type : signed type of ``h``.
    steps : T, the fixed sequence length. return_sequences : 0 (one output beat per sequence,
        ``h_T``) or 1 (``T`` beats, every ``h_t``).
    fold : None (the MAC engine is an unrolled :class:`~ddnhw.hw.Dense`, ``regs_every`` and
        ``dense_style`` as there) or ``(pe, simd)`` (a single-buffered
        :class:`~ddnhw.hw.FoldedDense`).
    gate_lanes : hidden units the gate unit processes per cycle (a divisor of H; default H
        with an unrolled engine, 1 with a folded one).

    Ports: ``i`` is ``In(stream.Signature(ArrayLayout(x shape, I)))``, one time step per beat,
    sequences back to back; ``o`` is ``Out(stream.Signature(ArrayLayout(state shape, H)))``.

    Operation: one time step is in flight at a time. An input beat is accepted when the
    previous step's state is written; the engine gets ``u = [x_t, h]`` (``h`` read as 0 at the
    first step of every sequence) in one beat of ``I + H`` lanes of ``u_type`` and returns the
    ``G*H`` accumulators in one beat. The gate unit then issues ``H / gate_lanes`` groups on
    consecutive cycles; each passes through a pipeline of :data:`GATE_DEPTH` cycles (rnn: index
    requantization, table read, state write; gru: r/z index, r/z table read, ``(acc_nx <<
    gate_frac) + r * acc_nh``, n index, tanh table read, ``n + round_shift(z * (h - n),
    gate_frac)`` and state write). Tables are ``lib.memory.Memory`` ROMs with synchronous read
    ports (yosys may map them to block RAM). A lane's index requantizer is one constant-coefficient
    circuit per distinct ``(multiplier, shift)`` among its hidden units, or (when cheaper) one
    multiplier by a per-group constant and one shift (see :meth:`RecurrentSpec.plan_requant`).
    ``o.payload`` is the state register itself: a step whose state is on ``o`` waits (before
    its first state write) until that beat is taken.

    Timing (no idle input, no backpressure): one step takes ``step_cycles = engine.latency +
    H / gate_lanes + GATE_DEPTH[op] - 1`` cycles from its input handshake to the next one;
    ``ii = steps * step_cycles`` cycles per sequence; ``latency`` (first input beat to first
    output beat) is ``step_cycles`` with ``return_sequences``, else ``ii``. Arbitrary idle
    cycles and backpressure are tolerated.

    Attributes (from ``spec``, a :class:`RecurrentSpec`, except ``engine``: the MAC block,
    a component): ``latency``, ``ii``, ``step_cycles``, ``u_type``,
    ``acc_type``, ``gate_lanes``, ``groups``, ``fold``, ``estimate`` (``luts``/``ffs``/
    ``dsps``/``brams``: the engine's plus the gate unit's ``gate_estimate``, rough).
    """

    def _setup(self):
        # the engine component (the spec holds the engine's spec under the same name)
        object.__setattr__(self, "engine", self.spec.engine.build())
        super()._setup()

    # -- HDL -------------------------------------------------------------------------------------
    def _requant(self, m, v, grp, q, lane, name):
        """Table index of lane ``lane`` of requant block ``q`` for group ``grp``."""
        cls, keys, var = self.classes[q][lane]
        lo, hi = self.lut_lo, self.lut_hi
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

    def _rom(self, m, name, table, shape, ports):
        """``ports`` synchronous read ports on copies of ``table``, one ROM each (YoWASP yosys
        trapped in memory_libmap on one ROM with 32 read ports)."""
        out = []
        for k in range(ports):
            mem = memory.Memory(shape=shape, depth=len(table), init=[int(v) for v in table])
            m.submodules[f"{name}{k}"] = mem
            out.append(mem.read_port())
        return out

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = eng = self.engine
        h, i, gl, ng, g = self.hidden, self.n_in, self.gate_lanes, self.groups, self.g
        s_shape = int_shape(self.state_type)
        n_lut = self.lut_hi - self.lut_lo + 1
        a_bits = max(1, (n_lut - 1).bit_length())

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

        def acc(q, lane):
            """Accumulator of row block q, gate lane ``lane``, current group."""
            vals = [eng.o.payload[q * h + gi * gl + lane] for gi in range(ng)]
            if ng == 1:
                return vals[0]
            s = Signal(int_shape(self.acc_type), name=f"acc{q}_{lane}")
            m.d.comb += s.eq(Array(vals)[grp])
            return s

        def pipe(v, name):
            """A register carrying ``v`` one stage on."""
            r = Signal(v.shape(), name=name)
            m.d.sync += r.eq(v)
            return r

        v1, g1 = pipe(issue, "v1"), pipe(grp, "g1")
        v2, g2 = pipe(v1, "v2"), pipe(g1, "g2")
        tanh_sh = shape_for(int(self.tanh_table.min()), int(self.tanh_table.max()))
        if g == 1:
            # S0: index; S1: table read; S2: state write
            tports = self._rom(m, "tanh", self.tanh_table, tanh_sh, gl)
            for lane in range(gl):
                idx = self._requant(m, acc(0, lane), grp, 0, lane, f"idx{lane}")
                a1 = pipe((idx - self.lut_lo)[:a_bits], f"addr{lane}")
                m.d.comb += tports[lane].addr.eq(a1)
            new = [p.data for p in tports]
            wv, wg = v2, g2
        else:
            gf = self.gate_frac
            sig_sh = unsigned((1 << gf).bit_length())
            rz_ports = self._rom(m, "sigmoid", self.sigmoid_table, sig_sh, 2 * gl)
            tports = self._rom(m, "tanh", self.tanh_table, tanh_sh, gl)
            v3, g3 = pipe(v2, "v3"), pipe(g2, "g3")
            v4, g4 = pipe(v3, "v4"), pipe(g3, "g4")
            v5, g5 = pipe(v4, "v5"), pipe(g4, "g5")
            new, pre_ranges = [], self.pre_ranges
            for lane in range(gl):
                # S0: r, z indices; n_x, n_h accumulators carried
                ir_ = self._requant(m, acc(0, lane), grp, 0, lane, f"idx_r{lane}")
                iz_ = self._requant(m, acc(1, lane), grp, 1, lane, f"idx_z{lane}")
                m.d.comb += [
                    rz_ports[2 * lane].addr.eq(pipe((ir_ - self.lut_lo)[:a_bits], f"ar{lane}")),
                    rz_ports[2 * lane + 1].addr.eq(pipe((iz_ - self.lut_lo)[:a_bits],
                                                        f"az{lane}"))]
                nx_lo = min(self.acc_range[2 * h + gi * gl + lane][0] for gi in range(ng))
                nx_hi = max(self.acc_range[2 * h + gi * gl + lane][1] for gi in range(ng))
                nh_lo = min(self.acc_range[3 * h + gi * gl + lane][0] for gi in range(ng))
                nh_hi = max(self.acc_range[3 * h + gi * gl + lane][1] for gi in range(ng))
                nx0 = Signal(shape_for(nx_lo, nx_hi), name=f"nx{lane}")
                nh0 = Signal(shape_for(nh_lo, nh_hi), name=f"nh{lane}")
                m.d.comb += [nx0.eq(acc(2, lane)), nh0.eq(acc(3, lane))]
                nx2 = pipe(pipe(nx0, f"nx{lane}_1"), f"nx{lane}_2")
                nh2 = pipe(pipe(nh0, f"nh{lane}_1"), f"nh{lane}_2")
                # S2: pre = (n_x << gf) + r * n_h
                r, z = rz_ports[2 * lane].data, rz_ports[2 * lane + 1].data
                pre_lo = min(pre_ranges[2 * h + gi * gl + lane][0] for gi in range(ng))
                pre_hi = max(pre_ranges[2 * h + gi * gl + lane][1] for gi in range(ng))
                pre3 = Signal(shape_for(pre_lo, pre_hi), name=f"pre{lane}")
                m.d.sync += pre3.eq((nx2 << gf) + r * nh2)
                z3 = pipe(z, f"z{lane}_3")
                # S3: n index; S4: tanh read
                in_ = self._requant(m, pre3, g3, 2, lane, f"idx_n{lane}")
                m.d.comb += tports[lane].addr.eq(pipe((in_ - self.lut_lo)[:a_bits],
                                                      f"an{lane}"))
                z5 = pipe(pipe(z3, f"z{lane}_4"), f"z{lane}_5")
                # S5: h' = n + round_shift(z * (h - n), gf)
                n5 = tports[lane].data
                hsel = [hreg[gi * gl + lane] for gi in range(ng)]
                hold = Mux(first, 0, hsel[0] if ng == 1 else Array(hsel)[g5])
                prod = z5 * (hold - n5)
                rs = prod if gf == 0 else (prod + (1 << (gf - 1))) >> gf
                hn = Signal(s_shape, name=f"hnew{lane}")
                m.d.comb += hn.eq(n5 + rs)
                new.append(hn)
            wv, wg = v5, g5

        # -- state write, step end, output -------------------------------------------------
        with m.If(wv):
            if ng == 1:
                m.d.sync += [hreg[lane].eq(new[lane]) for lane in range(gl)]
            else:
                with m.Switch(wg):
                    for gi in range(ng):
                        with m.Case(gi):
                            m.d.sync += [hreg[gi * gl + lane].eq(new[lane])
                                         for lane in range(gl)]
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
