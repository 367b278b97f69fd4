"""QAT recurrent networks: a quantized Elman RNN (tanh), GRU and LSTM with lookup-table
activations.

The integer semantics are those of the IR ops ``rnn``/``gru``/``lstm`` (``ddnhw/ir/ops/``,
:mod:`ddnhw.ir.ops.recurrent`); the fake-quantized float forward follows them step by step, so the
trained model *is* the integer model (STE for every rounding):

- input ``x``: unsigned ``in_bits`` on the grid ``2**-in_frac`` (:class:`QuantInput`);
- state ``h``: signed ``state_bits`` with ``state_frac`` fraction bits (default
  ``state_bits - 2``: s8.6 holds tanh's [-1, 1] with headroom), starting at 0;
- weights: signed ``w_bits``, a power-of-two exponent per row, separately for the input part
  ``W_ih`` and the recurrent part ``W_hh`` of a row. The integer dense over ``[x_t, h]`` puts
  each row on the finer of the two accumulator scales ``2**E``, ``E = min(e_x - in_frac,
  e_h - state_frac)``, by shifting the other part's integer weights left (exact); the bias is an
  integer at ``2**E``. ``E`` is also capped at the index grid (``-lut_frac``; the GRU's ``n``
  rows at ``gate_frac - lut_frac``), so the requantization of a pre-activation to a table
  index is a rounding shift with multiplier 1;
- activations: the pre-activation is requantized (round half up, clip) to the lookup-table
  index grid ``k * 2**-lut_frac``, ``k`` in ``lut_lo..lut_hi`` (``lut_bits`` bits, default
  ``lut_frac = lut_bits - 3``: [-4, 4)); ``tanh`` tables give state values, ``sigmoid``
  tables gate values on ``2**-gate_frac`` (the tables come from
  :func:`ddnhw.ir.ops.recurrent.tanh_table` / :func:`~ddnhw.ir.ops.recurrent.sigmoid_table`, the one
  definition, and the QAT forward reads the very same tables);
- GRU (PyTorch's convention, gate order r, z, n)::

      r = sigmoid(W_ir x + W_hr h + b_r)          z likewise
      n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
      h' = n + round(z * (h - n))                 # = (1 - z) * n + z * h on the state grid

  ``W_in x + b_in`` and ``W_hn h + b_hn`` are two IR rows (``n_x``, ``n_h``) on one scale.
- LSTM (PyTorch's convention, gate order i, f, g, o; one IR row block per gate)::

      i, f, o = sigmoid(W_*x x + W_*h h + b_*)    g = tanh(W_gx x + W_gh h + b_g)
      c' = clip(round(f * c + i * g), s<cell_bits>)  # on the state grid 2**-state_frac
      h' = round(o * tanh(c'))

  The cell state ``c`` has the state's ``state_frac`` fraction bits and ``cell_bits`` bits
  (default ``state_bits + 2``: s10.6 holds [-8, 8), twice the tanh table's input range);
  ``tanh(c')`` reads the same tanh table, its index ``c' * 2**(lut_frac - state_frac)`` is the
  last ``H`` entries of ``multiplier``/``shift`` (a shift for ``lut_frac <= state_frac``).

Defaults: 4-bit inputs and weights, s8.6 state, 6-bit LUT index on [-4, 4) in steps of 1/8,
gates in 1/64 (``gate_frac = 6``).

Unsupported configurations (a bidirectional or stacked PyTorch RNN, ``relu`` nonlinearity,
projections) raise :class:`ddnhw.DdnhwError` naming the layer and attribute.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ddnhw import DdnhwError
from ddnhw.ir import Graph, IntType
from ddnhw.ir.ops import dense_acc_type
from ddnhw.ir.ops.recurrent import MAX_LUT, sigmoid_table, tanh_table
from .modules import QuantInput, QuantLinear
from .quantizers import (check_bits, fake_quant, int_pow2_scale, int_round_shift, int_weight,
                         pow2_weight_exponent, round_ste)

__all__ = ["QuantRNN", "QuantGRU", "QuantLSTM", "QuantSeqClassifier", "SeqConfig",
           "from_torch", "seq_graph", "export_seq", "train_seq", "CELLS"]

CELLS = ("gru", "rnn", "lstm")
CELL_BITS_MAX = 30
STATE_BITS = (3, 16)
LUT_BITS = (2, MAX_LUT.bit_length() - 1)
GATE_FRAC = (1, 14)


def _check_int(v, lo, hi, what):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
        raise DdnhwError(f"{what} must be an integer, not {v!r}")
    if not lo <= int(v) <= hi:
        raise DdnhwError(f"{what} = {v} is not supported (use {lo}..{hi})")
    return int(v)


def _part_exponent(w, bits):
    """Per-row power-of-two exponents of ``w`` and the mask of rows that are not all zero
    (an all-zero part adds nothing, so its exponent must not set the row's scale)."""
    e = pow2_weight_exponent(w, bits, True)
    return e, (w.detach().abs().amax(dim=1) > 0)


def _pow2(t):
    return torch.pow(2.0, t)


def _requant(v, m, s, lo, hi):
    return torch.clamp(int_round_shift(v * m, s), lo, hi)


class _LUT(torch.autograd.Function):
    """Table value in the forward pass, the smooth function's derivative in the backward."""

    @staticmethod
    def forward(ctx, v, table, lo, scale, smooth):
        ctx.save_for_backward(v)
        ctx.smooth = smooth
        idx = torch.round(v.detach() * scale).long()     # v is on the index grid: exact
        return table[idx - lo].to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        with torch.enable_grad():
            vv = v.detach().requires_grad_(True)
            y = ctx.smooth(vv)
            (d,) = torch.autograd.grad(y, vv, torch.ones_like(y))
        return g * d, None, None, None, None


class _QuantRecurrent(nn.Module):
    """Shared parameters and numerics of :class:`QuantRNN` (G = 1), :class:`QuantGRU` (G = 3)
    and :class:`QuantLSTM` (G = 4).

    Parameters in PyTorch's layout: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``,
    ``bias_hh`` (G*H,). ``forward(x, frac_in)``: ``x`` (N, T, I); returns ``h_T`` (N, H) or,
    with ``return_sequences``, every ``h_t`` (N, T, H). ``frac_in=None`` or ``quantize=False``:
    the float layer.

    A cell defines its step twice, ``_step`` (float / fake-quantized) and ``_int_step``
    (integer, the IR op's semantics), and how its torch rows become IR rows (``_int_rows``,
    ``_index_cap``). The recurrent state is ``h`` itself, or a tuple whose first entry is ``h``
    (``_zero_state``/``_h``).
    """

    op = None
    G = 1
    kind = None
    sigmoid = False        # gated cell: the op has a sigmoid table and gate_frac

    def __init__(self, input_size, hidden_size, w_bits=4, state_bits=8, state_frac=None,
                 lut_bits=6, lut_frac=None, gate_frac=6, return_sequences=False, name=None):
        super().__init__()
        self.name = name = name or self.op
        what = f"layer {name} ({self.kind})"
        self.input_size = _check_int(input_size, 1, 1 << 16, f"{what}: input_size")
        self.hidden_size = _check_int(hidden_size, 1, 1 << 12, f"{what}: hidden_size")
        self.w_bits = check_bits(w_bits, f"{what} weights")
        self.state_bits = _check_int(state_bits, *STATE_BITS, f"{what}: state_bits")
        self.state_frac = _check_int(state_bits - 2 if state_frac is None else state_frac,
                                     0, self.state_bits - 2, f"{what}: state_frac")
        self.lut_bits = _check_int(lut_bits, *LUT_BITS, f"{what}: lut_bits")
        self.lut_frac = _check_int(max(0, lut_bits - 3) if lut_frac is None else lut_frac, 0, 16,
                                   f"{what}: lut_frac")
        self.gate_frac = _check_int(gate_frac, *GATE_FRAC, f"{what}: gate_frac")
        if return_sequences not in (0, 1, False, True):
            raise DdnhwError(f"{what}: return_sequences={return_sequences!r} must be a bool")
        self.return_sequences = bool(return_sequences)
        self.quantize = True
        g, h, i = self.G, self.hidden_size, self.input_size
        self.weight_ih = nn.Parameter(torch.empty(g * h, i))
        self.weight_hh = nn.Parameter(torch.empty(g * h, h))
        self.bias_ih = nn.Parameter(torch.empty(g * h))
        self.bias_hh = nn.Parameter(torch.empty(g * h))
        k = 1.0 / h ** 0.5
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)
        self._tables = {}

    # -- grids ------------------------------------------------------------------------------
    @property
    def state_type(self) -> IntType:
        return IntType(True, self.state_bits, self.state_frac)

    @property
    def lut_range(self):
        return -(1 << (self.lut_bits - 1)), (1 << (self.lut_bits - 1)) - 1

    def tables(self):
        """``(tanh_table, sigmoid_table or None)`` as int64 tensors (ddnhw.ir.ops.recurrent's)."""
        key = (self.lut_bits, self.lut_frac, self.state_bits, self.state_frac, self.gate_frac)
        if key not in self._tables:
            lo, hi = self.lut_range
            tanh = torch.as_tensor(tanh_table(lo, hi, self.lut_frac, self.state_type))
            sig = (torch.as_tensor(sigmoid_table(lo, hi, self.lut_frac, self.gate_frac))
                   if self.sigmoid else None)
            self._tables = {key: (tanh, sig)}
        return self._tables[key]

    def exponents(self, frac_in):
        """``(e_x, e_h, E)`` per row of the G*H torch rows (float tensors): the weight
        exponents of the input and recurrent parts and the row's accumulator exponent."""
        with torch.no_grad():
            e_x, nz_x = _part_exponent(self.weight_ih, self.w_bits)
            e_h, nz_h = _part_exponent(self.weight_hh, self.w_bits)
            ax = torch.where(nz_x, e_x - frac_in, torch.full_like(e_x, float("inf")))
            ah = torch.where(nz_h, e_h - self.state_frac, torch.full_like(e_h, float("inf")))
            big = torch.minimum(ax, ah)
            acc = torch.where(torch.isinf(big), e_x - frac_in, big)
            # no coarser than the table index grid: the index is then a pure rounding shift of
            # the accumulator (multiplier 1, no hardware multiplier)
            acc = torch.minimum(acc, self._index_cap(acc))
        return e_x, e_h, acc

    def _index_cap(self, acc):
        """Largest accumulator exponent per torch row: the index grid ``-lut_frac``."""
        return torch.full_like(acc, -float(self.lut_frac))

    # -- float and fake-quantized forward ---------------------------------------------------
    def _lut(self, v, sigmoid):
        """Index-grid requantization of pre-activations ``v`` (reals), then the table."""
        lo, hi = self.lut_range
        scale = float(1 << self.lut_frac)
        q = torch.clamp(round_ste(v * scale), lo, hi) / scale   # STE inside the range
        tanh, sig = self.tables()
        if sigmoid:
            return _LUT.apply(q, sig, lo, scale, torch.sigmoid) / float(1 << self.gate_frac)
        return _LUT.apply(q, tanh, lo, scale, torch.tanh) / float(1 << self.state_frac)

    def _quant_params(self, frac_in):
        e_x, e_h, acc = self.exponents(frac_in)
        qmax = (1 << (self.w_bits - 1)) - 1
        wx = fake_quant(self.weight_ih, -e_x.unsqueeze(1), -qmax, qmax)
        wh = fake_quant(self.weight_hh, -e_h.unsqueeze(1), -qmax, qmax)
        return wx, wh, acc

    @staticmethod
    def _qbias(b, acc_exp):
        s = _pow2(-acc_exp)
        return round_ste(b * s) / s

    def _zero_state(self, h0):
        """The state at t = 0 from the zero hidden state ``h0`` (N, H)."""
        return h0

    @staticmethod
    def _h(state):
        return state

    def _scan(self, x_proj, state, step, rec_weight):
        """Run ``state = step(x_proj[:, k], h @ rec_weight.T, state)`` over the time steps;
        every ``h_t`` (N, T, H) or the last one."""
        outs = []
        for k in range(x_proj.shape[1]):
            state = step(x_proj[:, k], self._h(state) @ rec_weight.T, state)
            outs.append(self._h(state))
        return torch.stack(outs, 1) if self.return_sequences else outs[-1]

    def forward(self, x, frac_in=None):
        quant = self.quantize and frac_in is not None
        if quant:
            wx, wh, acc = self._quant_params(frac_in)
        else:
            wx, wh, acc = self.weight_ih, self.weight_hh, None
        h0 = x.new_zeros(x.shape[0], self.hidden_size)
        return self._scan(x @ wx.T, self._zero_state(h0),     # x part of all steps at once
                          lambda gx, gh, s: self._step(gx, gh, s, acc), wh)

    # -- integer model ----------------------------------------------------------------------
    @staticmethod
    def _int_bias(b, e):
        return torch.floor(b * _pow2(-e) + 0.5).long()

    def _int_rows(self, wx, wh, bi, bh, acc):
        """The IR ``weight``, ``bias`` and every requantizer's index exponent ``t`` (index =
        value * 2**t, float tensor) from the integer weights of the torch rows (on the
        accumulator scale ``2**acc``) and the float biases: here one IR row per torch row."""
        return torch.cat([wx, wh], 1), self._int_bias(bi + bh, acc), acc + self.lut_frac

    def _extra_attrs(self) -> dict:
        return {}

    def int_attrs(self, frac_in) -> dict:
        """The IR node's attributes (numpy int64; :mod:`ddnhw.ir.ops.recurrent`)."""
        for nm, p in (("weight_ih", self.weight_ih), ("weight_hh", self.weight_hh),
                      ("bias_ih", self.bias_ih), ("bias_hh", self.bias_hh)):
            if not torch.all(torch.isfinite(p)):
                raise DdnhwError(f"layer {self.name}: {nm} contains NaN or Inf")
        with torch.no_grad():
            e_x, e_h, acc = (v.double() for v in self.exponents(frac_in))
            wx = int_weight(self.weight_ih, e_x.unsqueeze(1), self.w_bits)
            wh = int_weight(self.weight_hh, e_h.unsqueeze(1), self.w_bits)
            # zero parts may have any exponent: their (zero) shift is clamped at 0
            sx = torch.clamp(e_x - frac_in - acc, min=0).long().unsqueeze(1)
            sh = torch.clamp(e_h - self.state_frac - acc, min=0).long().unsqueeze(1)
            weight, bias, t = self._int_rows(wx << sx, wh << sh, self.bias_ih.double(),
                                             self.bias_hh.double(), acc)
            t = t.long()
            mult, shift = int_pow2_scale(t)
        if int(shift.max()) > 62 or int(t.max()) > 40:
            raise DdnhwError(f"layer {self.name}: weight/bias scales too extreme for the integer "
                             f"requantization (shift {int(shift.max())}, multiplier "
                             f"2**{int(t.max())})")
        lo, hi = self.lut_range
        tanh, sig = self.tables()
        attrs = dict(weight=weight.numpy(), bias=bias.numpy(), multiplier=mult.numpy(),
                     shift=shift.numpy(), lut_lo=lo, lut_hi=hi, tanh_table=tanh.numpy().copy(),
                     return_sequences=int(self.return_sequences))
        if self.sigmoid:
            attrs.update(gate_frac=self.gate_frac, sigmoid_table=sig.numpy().copy())
        attrs.update(self._extra_attrs())
        return attrs

    @staticmethod
    def _int_act(a, table, v, k, hs):
        """``act(table, v, rows)`` of the IR for requantizer block ``k`` (rows ``k*H..``)."""
        rows = slice(k * hs, (k + 1) * hs)
        lo, hi = a["lut_lo"], a["lut_hi"]
        return a[table][_requant(v, a["multiplier"][rows], a["shift"][rows], lo, hi) - lo]

    def int_forward(self, x_int, frac_in):
        """Integer-mode forward on integer input codes ``(N, T, I)`` (torch int64 ops): every
        state ``(N, T, H)`` or the last ``(N, H)``, exactly as the IR op's golden kernel."""
        a = {k: (torch.as_tensor(v) if isinstance(v, np.ndarray) else v)
             for k, v in self.int_attrs(frac_in).items()}
        x = x_int.long()
        w, b = a["weight"], a["bias"]
        ni, hs = x.shape[2], self.hidden_size
        h0 = torch.zeros(x.shape[0], hs, dtype=torch.long)
        with torch.no_grad():
            # acc = bias + weight @ [x_t, h]: the x columns of all steps at once
            return self._scan(x @ w[:, :ni].T + b, self._zero_state(h0),
                              lambda ax, ah, s: self._int_step(ax + ah, s, a), w[:, ni:])


class QuantRNN(_QuantRecurrent):
    """Elman RNN, ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``; IR op ``rnn``."""

    op, G, kind = "rnn", 1, "QuantRNN"

    def _step(self, gx, gh, h, acc):
        if acc is None:
            return torch.tanh(gx + gh + self.bias_ih + self.bias_hh)
        return self._lut(gx + gh + self._qbias(self.bias_ih + self.bias_hh, acc), False)

    def _int_step(self, acc, h, a):
        return self._int_act(a, "tanh_table", acc, 0, self.hidden_size)


class QuantGRU(_QuantRecurrent):
    """GRU in PyTorch's convention (gate order r, z, n); IR op ``gru``."""

    op, G, kind, sigmoid = "gru", 3, "QuantGRU", True

    def _index_cap(self, acc):
        # n rows: 2**(gate_frac - lut_frac) before r's scale
        cap = super()._index_cap(acc)
        cap[2 * self.hidden_size:] = float(self.gate_frac - self.lut_frac)
        return cap

    def _int_rows(self, wx, wh, bi, bh, acc):
        # IR row blocks r, z (x and h), n_x (x only), n_h (h only); n's index is
        # (n_x << gate_frac) + r * n_h, so its exponent drops by gate_frac
        h, ib = self.hidden_size, self._int_bias
        zx, zh = torch.zeros_like(wx[:h]), torch.zeros_like(wh[:h])
        weight = torch.cat([torch.cat([wx[:2 * h], wh[:2 * h]], 1),
                            torch.cat([wx[2 * h:], zh], 1),
                            torch.cat([zx, wh[2 * h:]], 1)], 0)
        bias = torch.cat([ib(bi[:2 * h] + bh[:2 * h], acc[:2 * h]),
                          ib(bi[2 * h:], acc[2 * h:]), ib(bh[2 * h:], acc[2 * h:])])
        t = acc + self.lut_frac
        return weight, bias, torch.cat([t[:2 * h], t[2 * h:] - self.gate_frac])

    def _step(self, gx, gh, h, acc):
        hs = self.hidden_size
        if acc is None:
            rz = torch.sigmoid(gx[:, :2 * hs] + gh[:, :2 * hs] + self.bias_ih[:2 * hs]
                               + self.bias_hh[:2 * hs])
            r, z = rz[:, :hs], rz[:, hs:]
            n = torch.tanh(gx[:, 2 * hs:] + self.bias_ih[2 * hs:]
                           + r * (gh[:, 2 * hs:] + self.bias_hh[2 * hs:]))
            return (1 - z) * n + z * h
        b_rz = self._qbias(self.bias_ih[:2 * hs] + self.bias_hh[:2 * hs], acc[:2 * hs])
        rz = self._lut(gx[:, :2 * hs] + gh[:, :2 * hs] + b_rz, True)
        r, z = rz[:, :hs], rz[:, hs:]
        nx = gx[:, 2 * hs:] + self._qbias(self.bias_ih[2 * hs:], acc[2 * hs:])
        nh = gh[:, 2 * hs:] + self._qbias(self.bias_hh[2 * hs:], acc[2 * hs:])
        n = self._lut(nx + r * nh, False)
        sf = float(1 << self.state_frac)
        return n + round_ste(z * (h - n) * sf) / sf

    def _int_step(self, acc, h, a):
        hs, gf = self.hidden_size, a["gate_frac"]
        r = self._int_act(a, "sigmoid_table", acc[:, :hs], 0, hs)
        z = self._int_act(a, "sigmoid_table", acc[:, hs:2 * hs], 1, hs)
        pre = (acc[:, 2 * hs:3 * hs] << gf) + r * acc[:, 3 * hs:]
        n = self._int_act(a, "tanh_table", pre, 2, hs)
        return n + int_round_shift(z * (h - n), torch.full_like(z, gf))


class QuantLSTM(_QuantRecurrent):
    """LSTM in PyTorch's convention (gate order i, f, g, o); IR op ``lstm``.

    Arguments as :class:`QuantGRU`, and ``cell_bits``: the width of the cell state ``c``
    (signed, ``state_frac`` fraction bits, clipped; ``state_bits..30``, default
    ``state_bits + 2``). The state is ``(h, c)``, both starting at 0.
    """

    op, G, kind, sigmoid = "lstm", 4, "QuantLSTM", True

    def __init__(self, *args, cell_bits=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.cell_bits = _check_int(self.state_bits + 2 if cell_bits is None else cell_bits,
                                    self.state_bits, CELL_BITS_MAX,
                                    f"layer {self.name} ({self.kind}): cell_bits")

    @property
    def cell_type(self) -> IntType:
        return IntType(True, self.cell_bits, self.state_frac)

    def _zero_state(self, h0):
        return h0, h0

    @staticmethod
    def _h(state):
        return state[0]

    def _int_rows(self, wx, wh, bi, bh, acc):
        weight, bias, t = super()._int_rows(wx, wh, bi, bh, acc)
        # 4H..5H: tanh(c), c on the state grid 2**-state_frac, its index on 2**-lut_frac
        t_c = torch.full_like(t[:self.hidden_size], float(self.lut_frac - self.state_frac))
        return weight, bias, torch.cat([t, t_c])

    def _extra_attrs(self) -> dict:
        return {"cell_bits": self.cell_bits}

    def _step(self, gx, gh, state, acc):
        _, c = state
        hs = self.hidden_size
        if acc is None:
            i, f, g, o = (gx + gh + self.bias_ih + self.bias_hh).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c
        pre = gx + gh + self._qbias(self.bias_ih + self.bias_hh, acc)
        i, f, o = self._lut(torch.cat([pre[:, :2 * hs], pre[:, 3 * hs:]], 1), True).chunk(3, 1)
        g = self._lut(pre[:, 2 * hs:3 * hs], False)
        ct = self.cell_type
        c = fake_quant(f * c + i * g, self.state_frac, ct.min, ct.max)
        sf = float(1 << self.state_frac)
        return round_ste(o * self._lut(c, False) * sf) / sf, c

    def _int_step(self, acc, state, a):
        _, c = state
        hs, gf = self.hidden_size, a["gate_frac"]
        i, f, o = (self._int_act(a, "sigmoid_table", acc[:, k * hs:(k + 1) * hs], k, hs)
                   for k in (0, 1, 3))
        g = self._int_act(a, "tanh_table", acc[:, 2 * hs:3 * hs], 2, hs)
        gfs = torch.full_like(i, gf)
        ct = self.cell_type
        c = torch.clamp(int_round_shift(f * c + i * g, gfs), ct.min, ct.max)
        return int_round_shift(o * self._int_act(a, "tanh_table", c, 4, hs), gfs), c


_TORCH_CELLS = (((nn.LSTM, nn.LSTMCell), QuantLSTM), ((nn.GRU, nn.GRUCell), QuantGRU),
                ((nn.RNN, nn.RNNCell), QuantRNN))
_CELL_CLASSES = {"gru": QuantGRU, "rnn": QuantRNN, "lstm": QuantLSTM}


def from_torch(module, w_bits=4, name=None, **kwargs):
    """A :class:`QuantLSTM`/:class:`QuantGRU`/:class:`QuantRNN` with the parameters of a
    PyTorch ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` (tanh), ``nn.LSTMCell``, ``nn.GRUCell`` or
    ``nn.RNNCell`` (``kwargs``: the quantized layer's settings). Bidirectional or stacked
    layers, ``relu`` nonlinearity, projections (``proj_size``) and dropout raise
    :class:`DdnhwError` naming the attribute. The quantized layer takes ``(N, T, I)`` inputs
    (batch first) whatever the module's ``batch_first``."""
    cls = type(module).__name__
    name = name or cls.lower()
    what = f"layer {name} ({cls})"
    qcls = next((q for types, q in _TORCH_CELLS if isinstance(module, types)), None)
    if qcls is None:
        raise DdnhwError(f"{what}: not a recurrent layer ddnhw supports (nn.LSTM, nn.GRU, "
                         f"nn.RNN, nn.LSTMCell, nn.GRUCell, nn.RNNCell)")
    cell = isinstance(module, nn.RNNCellBase)
    if not cell:
        if module.bidirectional:
            raise DdnhwError(f"{what}: bidirectional=True is not supported")
        if module.num_layers != 1:
            raise DdnhwError(f"{what}: num_layers={module.num_layers} is not supported (only 1; "
                             f"stack layers as separate modules)")
        if getattr(module, "proj_size", 0):
            raise DdnhwError(f"{what}: proj_size={module.proj_size} is not supported")
        if module.dropout:
            raise DdnhwError(f"{what}: dropout={module.dropout} is not supported")
    if getattr(module, "nonlinearity", "tanh") != "tanh":
        raise DdnhwError(f"{what}: nonlinearity={module.nonlinearity!r} is not supported "
                         f"(only 'tanh')")
    q = qcls(module.input_size, module.hidden_size, w_bits=w_bits, name=name, **kwargs)
    sfx = "" if cell else "_l0"
    with torch.no_grad():
        q.weight_ih.copy_(getattr(module, f"weight_ih{sfx}"))
        q.weight_hh.copy_(getattr(module, f"weight_hh{sfx}"))
        for b in ("bias_ih", "bias_hh"):
            if module.bias:
                getattr(q, b).copy_(getattr(module, f"{b}{sfx}"))
            else:
                getattr(q, b).zero_()
    return q


class QuantSeqClassifier(nn.Module):
    """``QuantInput → QuantGRU/QuantRNN/QuantLSTM → QuantLinear`` (logits) on sequences
    ``(N, T, I)`` (or ``(N, T*I)``, reshaped). ``return_sequences``: the classifier reads every
    state (flattened, ``T*H`` inputs) instead of the last one. ``cell_bits``: the LSTM's cell
    state width (only for ``cell="lstm"``). The classifier is per tensor, so the integer logits
    compare like the real ones."""

    def __init__(self, cell="gru", input_size=8, hidden=16, n_classes=10, steps=8, in_bits=4,
                 w_bits=4, state_bits=8, state_frac=None, lut_bits=6, lut_frac=None,
                 gate_frac=6, return_sequences=False, cell_bits=None):
        super().__init__()
        if not isinstance(cell, str) or cell.lower() not in CELLS:
            raise DdnhwError(f"layer rec (QuantSeqClassifier): cell={cell!r} is not supported "
                             f"(use one of {CELLS})")
        self.cell = cell.lower()
        self.steps = _check_int(steps, 1, 1 << 16, "QuantSeqClassifier: steps")
        self.n_classes = _check_int(n_classes, 1, 1 << 16, "QuantSeqClassifier: n_classes")
        self.inp = QuantInput(in_bits)
        extra = {}
        if self.cell == "lstm":
            extra["cell_bits"] = cell_bits
        elif cell_bits is not None:
            raise DdnhwError(f"layer rec (QuantSeqClassifier): cell_bits={cell_bits!r} is an "
                             f"LSTM setting (cell={self.cell!r})")
        self.rec = _CELL_CLASSES[self.cell](input_size, hidden, w_bits, state_bits, state_frac,
                                            lut_bits, lut_frac, gate_frac, return_sequences,
                                            name=self.cell, **extra)
        n_feat = hidden * (self.steps if return_sequences else 1)
        self.fc = QuantLinear(n_feat, self.n_classes, w_bits, per_channel=False, name="fc")
        self.config = dict(cell=self.cell, input_size=int(input_size), hidden=int(hidden),
                           n_classes=self.n_classes, steps=self.steps, in_bits=in_bits,
                           w_bits=w_bits, state_bits=self.rec.state_bits,
                           state_frac=self.rec.state_frac, lut_bits=self.rec.lut_bits,
                           lut_frac=self.rec.lut_frac, gate_frac=self.rec.gate_frac,
                           return_sequences=bool(return_sequences))
        if self.cell == "lstm":
            self.config["cell_bits"] = self.rec.cell_bits

    def set_quantize(self, on: bool):
        for m in self.modules():
            if hasattr(m, "quantize"):
                m.quantize = on

    def _seq(self, x):
        n = x.shape[0]
        want = self.steps * self.rec.input_size
        if int(np.prod(x.shape[1:])) != want:
            raise DdnhwError(f"QuantSeqClassifier: input of shape {tuple(x.shape)} is not "
                             f"(N, {self.steps}, {self.rec.input_size})")
        return x.reshape(n, self.steps, self.rec.input_size)

    def forward(self, x):
        x = self.inp(self._seq(x))
        frac = self.inp.frac if self.inp.quantize else None
        h = self.rec(x, frac)
        h = h.flatten(1)
        return self.fc(h, self.rec.state_frac if frac is not None else None)

    def int_forward(self, x_int):
        """Integer logits from integer input codes ``(N, T, I)``: what the hardware computes."""
        x = self._seq(torch.as_tensor(x_int)).long()
        with torch.no_grad():
            h = self.rec.int_forward(x, self.inp.frac).flatten(1)
            w, b, _ = self.fc.int_params_common(self.rec.state_frac)
            return h @ w.T + b


def export_seq(model: QuantSeqClassifier, meta=None) -> Graph:
    """The IR graph ``x (T, I) → rnn/gru/lstm → [flatten] → dense`` (logits) of ``model``,
    checked (:func:`seq_graph` and :meth:`Graph.check`)."""
    return seq_graph(model, meta).check()


def seq_graph(model: QuantSeqClassifier, meta=None) -> Graph:
    """The graph of :func:`export_seq`, not yet checked."""
    rec, fc = model.rec, model.fc
    for nm, arr in (("weight", fc.weight), ("bias", fc.bias)):
        if not torch.all(torch.isfinite(arr)):
            raise DdnhwError(f"layer {fc.name}: {nm} contains NaN or Inf")
    frac = model.inp.frac
    attrs = rec.int_attrs(frac)
    st = rec.state_type
    info = {"kind": "seq", **model.config}
    info.update(meta or {})
    g = Graph(meta=info)
    g.add_tensor("x", (model.steps, rec.input_size), IntType(False, model.inp.bits, frac))
    hs = rec.hidden_size
    g.add_tensor("h", (model.steps, hs) if rec.return_sequences else (hs,), st)
    g.add_node(rec.name, rec.op, ["x"], ["h"], **attrs)
    cur = "h"
    if rec.return_sequences:
        g.add_tensor("h_flat", (model.steps * hs,), st)
        g.add_node("flatten", "flatten", ["h"], ["h_flat"])
        cur = "h_flat"
    w, b, e = fc.int_params_common(rec.state_frac)
    w, b = w.numpy(), b.numpy()
    acc = dense_acc_type(w, b, st)
    g.add_tensor("logits", (model.n_classes,), IntType(acc.signed, acc.bits,
                                                      st.frac - int(e[0])))
    g.add_node(fc.name, "dense", [cur], ["logits"], weight=w, bias=b)
    g.inputs, g.outputs = ["x"], ["logits"]
    return g


class SeqConfig:
    """Settings of :func:`train_seq` (keyword arguments; model ones as
    :class:`QuantSeqClassifier`)."""

    def __init__(self, cell="gru", input_size=8, hidden=16, n_classes=10, steps=8, in_bits=4,
                 w_bits=4, state_bits=8, lut_bits=6, gate_frac=6, return_sequences=False,
                 float_epochs=40, qat_epochs=40, batch=64, lr=1e-2, qat_lr=3e-3,
                 weight_decay=1e-4, seed=0, cell_bits=None, distill=0.0, temperature=4.0,
                 input_norm=False):
        self.distill, self.temperature, self.input_norm = distill, temperature, input_norm
        self.model = dict(cell=cell, input_size=input_size, hidden=hidden, n_classes=n_classes,
                          steps=steps, in_bits=in_bits, w_bits=w_bits, state_bits=state_bits,
                          lut_bits=lut_bits, gate_frac=gate_frac,
                          return_sequences=return_sequences, cell_bits=cell_bits)
        self.float_epochs, self.qat_epochs = float_epochs, qat_epochs
        self.batch, self.lr, self.qat_lr, self.weight_decay = batch, lr, qat_lr, weight_decay
        self.seed = seed


def train_seq(xtr, ytr, xte, yte, cfg: SeqConfig = None, log=None):
    """Float training, then QAT; returns a :class:`~ddnhw.quant.train.TrainResult` (its
    ``quant_accuracy`` from the fake-quantized forward). ``x``: (N, T*I) or (N, T, I) in
    [0, 1]."""
    from .train import float_then_qat

    cfg = cfg or SeqConfig()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = QuantSeqClassifier(**cfg.model)
    xtr_t = model._seq(torch.as_tensor(np.asarray(xtr, np.float32)))
    xte_t = model._seq(torch.as_tensor(np.asarray(xte, np.float32)))
    ytr_t, yte_t = torch.as_tensor(ytr), torch.as_tensor(yte)
    return float_then_qat(model, xtr_t, ytr_t, xte_t, yte_t, cfg, gen, log, t0, calibrate=False)
