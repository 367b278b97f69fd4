"""The case generator of ``bench/trust.py`` (and of its CI slice, ``tests/stress/test_trust.py``):
seeded random layers and small networks of every op, each with its integer-mode PyTorch
function where one exists.

``make_case(family, seed)`` returns a :class:`Case`: the IR graph, ``torch_fn`` (integer input
codes ``(N, *input shape)`` -> integer outputs through PyTorch, or None), the lowering options,
and the tags it is counted under (ops, widths). Families:

- ``ir-dense``: dense [-> requant -> dense] with input types of 1-16 bits (signed or unsigned;
  seeds 31r..31r+30 take each of the 31 types once, as input and as first-layer weights) and
  weights of 1-16 bits; PyTorch: int64 matmul + rounding shift + clamp, written here.
- ``ir-conv``: conv2d (dense or depthwise) -> requant -> max/avg/no pool -> flatten -> dense,
  inputs of 1-16 bits, weights of 2-16 bits; ``ir-residual``: a residual block (``add``).
- ``ir-rnn``, ``ir-gru``, ``ir-lstm``: a recurrent layer + classifier, inputs 1-8 bits,
  weights 2-8 bits, states 4-12 bits.
- ``q-mlp``, ``q-cnn`` (conv, max/avg pool, residual ``add``), ``q-rnn``, ``q-gru``,
  ``q-lstm``: the QAT modules with random weights, calibrated, exported; PyTorch: their
  ``int_forward``.
- ``scheme-<kind>``: ``SchemeMLP`` for every weight quantizer (uniform, pow2, ternary,
  binary with bipolar activations: the XNOR layer, codebook) and both requant realizations.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FAMILIES = ("ir-dense", "ir-conv", "ir-residual", "ir-rnn", "ir-gru", "ir-lstm", "q-mlp",
            "q-cnn", "q-rnn", "q-gru", "q-lstm", "scheme-uniform", "scheme-pow2",
            "scheme-ternary", "scheme-binary", "scheme-codebook")


@dataclass
class Case:
    family: str
    seed: int
    graph: object
    torch_fn: object = None
    options: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)      # ops, in_width, weight_widths


def _t(signed, bits):
    return f"{'s' if signed else 'u'}{bits}"


def _type(rng, lo_bits=1, hi_bits=16, signed=None):
    from ddnhw.ir import IntType
    s = bool(rng.integers(2)) if signed is None else signed
    return IntType(s, int(rng.integers(max(lo_bits, 2 if s else 1), hi_bits + 1)))


def _weights(rng, shape, wt):
    """Random weights of type ``wt`` with extreme, zero and one-hot rows mixed in."""
    w = rng.integers(wt.min, wt.max + 1, size=shape, dtype=np.int64)
    for r in range(shape[0]):
        kind = rng.integers(8)
        if kind == 0:
            w[r] = 0
        elif kind == 1:
            w[r] = wt.max
        elif kind == 2:
            w[r] = wt.min
        elif kind == 3:
            w[r][rng.random(w[r].shape) < 0.7] = 0
    return w


def _requant(rng, c, out_bits=None, signed=None):
    from ddnhw.ir import IntType
    ot = _type(rng, 1, out_bits or 16, signed)
    return {"multiplier": rng.integers(-3 if rng.integers(4) == 0 else 1, 2**int(rng.integers(1, 9)),
                                       size=c),
            "shift": rng.integers(0, 12, size=c), "lo": ot.min, "hi": ot.max, "out_type": ot}


# -- PyTorch integer references (written here, independent of the golden model) -------------

def _torch_requant(acc, node):
    import torch
    from ddnhw.quant.quantizers import int_round_shift
    m = torch.as_tensor(node.attrs["multiplier"])
    s = torch.as_tensor(node.attrs["shift"])
    return torch.clamp(int_round_shift(acc * m, s), int(node.attrs["lo"]), int(node.attrs["hi"]))


def torch_chain(graph):
    """Integer-mode PyTorch for a chain of ``dense``/``requant`` nodes (int64 throughout)."""
    import torch

    def run(x):
        h = torch.as_tensor(np.asarray(x, np.int64))
        for n in graph.nodes:
            if n.op == "dense":
                h = h @ torch.as_tensor(n.attrs["weight"]).T + torch.as_tensor(n.attrs["bias"])
            elif n.op == "requant":
                h = _torch_requant(h, n)
            else:
                raise ValueError(n.op)
        return h.numpy()
    return run


# -- families --------------------------------------------------------------------------------

def all_types():
    """Every input/weight type the issue names: u1..u16, s2..s16 (31 types)."""
    from ddnhw.ir import IntType
    return [IntType(False, b) for b in range(1, 17)] + [IntType(True, b) for b in range(2, 17)]


def _ir_dense(rng, seed):
    from ddnhw.ir.builder import mlp_graph
    types = all_types()
    # seeds 31r .. 31r+30 sweep every input type and every first-layer weight type once
    it = types[seed % len(types)]
    sizes = [int(rng.integers(1, 9)) for _ in range(int(rng.integers(2, 4)))]
    layers, wts = [], []
    for k in range(len(sizes) - 1):
        wt = types[(seed * 12 + 5) % len(types)] if k == 0 else _type(rng)
        wts.append(wt)
        w = _weights(rng, (sizes[k + 1], sizes[k]), wt)
        layer = {"weight": w, "bias": rng.integers(wt.min, wt.max + 1, size=sizes[k + 1]) * 3}
        if k < len(sizes) - 2:
            layer["requant"] = _requant(rng, sizes[k + 1])
        layers.append(layer)
    g = mlp_graph(it, layers, meta={"name": f"trust_ir_dense_{seed}"})
    return g, torch_chain(g), {}, it, wts


def _ir_conv(rng, seed):
    from ddnhw.ir.builder import chain_graph
    it = _type(rng, signed=False) if rng.integers(2) else _type(rng, 2, 16, True)
    h, w_, c = int(rng.integers(3, 6)), int(rng.integers(3, 6)), int(rng.integers(1, 3))
    depthwise = c > 1 and rng.integers(3) == 0
    k = int(rng.integers(1, 4))
    o, cg, groups = (c, 1, c) if depthwise else (int(rng.integers(1, 4)), c, 1)
    wt = _type(rng, 2, 16)
    pad = int(rng.integers(0, k // 2 + 1))
    layers = [{"op": "conv2d", "name": "conv0", "weight": _weights(rng, (o, k, k, cg), wt),
               "bias": rng.integers(-50, 51, size=o), "groups": groups, "padding": pad,
               "stride": 1, "requant": _requant(rng, o, 8, False)}]
    oh = h + 2 * pad - k + 1
    if min(oh, w_ + 2 * pad - k + 1) >= 2 and rng.integers(3):
        layers.append({"op": f"{'max' if rng.integers(2) else 'avg'}pool2d", "name": "pool0",
                       "kernel": 2})
    layers.append({"op": "flatten", "name": "flat"})
    g0 = chain_graph(it, (h, w_, c), layers)
    wt2 = _type(rng, 2, 8)
    n_out = int(rng.integers(1, 4))
    layers.append({"op": "dense", "name": "fc",
                   "weight": _weights(rng, (n_out, g0.output.shape[0]), wt2),
                   "bias": rng.integers(-20, 21, size=n_out)})
    g = chain_graph(it, (h, w_, c), layers, meta={"name": f"trust_ir_conv_{seed}"})
    return g, None, {}, it, [wt, wt2]


def _ir_residual(rng, seed):
    from ddnhw.ir.testing import random_residual_cnn
    bits = int(rng.integers(2, 9))
    wb = int(rng.integers(2, 9))
    g = random_residual_cnn(seed, in_shape=(int(rng.integers(3, 5)), int(rng.integers(3, 5)),
                                            int(rng.integers(1, 3))),
                            kernel=int(rng.choice([1, 3])), convs=int(rng.integers(1, 3)),
                            stem=int(rng.integers(0, 3)), n_out=2, in_bits=bits, w_bits=wb,
                            a_bits=int(rng.integers(2, 7)))
    from ddnhw.ir import IntType
    return g, None, {}, g.input.dtype, [IntType(True, wb)]


def _ir_recurrent(op):
    def make(rng, seed):
        from ddnhw.ir import IntType
        from ddnhw.ir.testing import random_lstm_classifier, random_recurrent_classifier
        kw = dict(steps=int(rng.integers(1, 5)), n_in=int(rng.integers(1, 4)),
                  hidden=int(rng.integers(1, 4)), in_bits=int(rng.integers(2, 9)),
                  w_bits=int(rng.integers(2, 9)), state_bits=int(rng.integers(4, 13)),
                  in_signed=bool(rng.integers(2)))
        kw["lut_bits"] = int(rng.integers(3, min(kw["state_bits"], 10) + 1))
        if op != "rnn":
            kw["gate_frac"] = int(rng.integers(2, 9))
        if op == "lstm":
            kw["cell_bits"] = kw["state_bits"] + int(rng.integers(0, 4))
            g = random_lstm_classifier(seed, n_out=2, **kw)
        else:
            g = random_recurrent_classifier(seed, op=op, n_out=2, **kw)
        return g, None, {}, g.input.dtype, [IntType(True, kw["w_bits"])]
    return make


def _inputs(rng, n, shape):
    import torch
    x = torch.rand((n,) + tuple(shape), generator=torch.Generator().manual_seed(
        int(rng.integers(2**31))))
    x[0], x[1] = 0.0, 1.0
    return x


def _q_mlp(rng, seed):
    import torch
    from ddnhw.ir import IntType
    from ddnhw.quant import QuantMLP, export_mlp
    torch.manual_seed(seed)
    sizes = tuple(int(rng.integers(1, 10)) for _ in range(int(rng.integers(2, 4))))
    bits = [int(rng.integers(2, 9)) for _ in range(3)]
    m = QuantMLP(sizes, in_bits=bits[0], w_bits=bits[1], a_bits=bits[2],
                 out_per_channel=bool(rng.integers(2)))
    with torch.no_grad():
        for layer in m.layers:
            layer.weight.mul_(float(rng.choice([1e-2, 1.0, 10.0])))
    m.calibrate(_inputs(rng, 64, (sizes[0],)))
    g = export_mlp(m)
    return g, (lambda x: m.int_forward(torch.as_tensor(x)).numpy()), {}, g.input.dtype, \
        [IntType(True, bits[1])]


def _q_cnn(rng, seed):
    import torch
    from ddnhw.ir import IntType
    from ddnhw.quant.cnn import QuantCNN, export_cnn
    torch.manual_seed(seed)
    c, h, w = int(rng.integers(1, 3)), int(rng.integers(4, 7)), int(rng.integers(4, 7))
    k = int(rng.choice([1, 3]))
    layers = [{"op": "conv", "out": int(rng.integers(1, 4)), "kernel": k,
               "padding": int(rng.integers(0, 2)) if k == 3 else 0}]
    if rng.integers(2):
        layers.append({"op": "res", "kernel": int(rng.choice([1, 3]))})
    if rng.integers(3):
        layers.append({"op": str(rng.choice(["maxpool", "avgpool"])), "kernel": 2})
    layers += [{"op": "flatten"}, {"op": "linear", "out": int(rng.integers(1, 4))}]
    bits = [int(rng.integers(2, 9)) for _ in range(3)]
    m = QuantCNN(layers, (c, h, w), in_bits=bits[0], w_bits=bits[1], a_bits=bits[2])
    m.eval()
    m.set_quantize(False)
    x = _inputs(rng, 32, (c, h, w))
    m(x)
    m.fold_batchnorm()
    m.set_quantize(True)
    m.calibrate(x)
    g = export_cnn(m)

    def run(x):   # golden takes NHWC codes, the module NCHW
        return m.int_forward(torch.as_tensor(np.asarray(x)).permute(0, 3, 1, 2)).numpy()
    return g, run, {}, g.input.dtype, [IntType(True, bits[1])]


def _q_seq(cell):
    def make(rng, seed):
        import torch
        from ddnhw.ir import IntType
        from ddnhw.quant.rnn import QuantSeqClassifier, export_seq
        torch.manual_seed(seed)
        kw = dict(in_bits=int(rng.integers(2, 9)), w_bits=int(rng.integers(2, 9)),
                  state_bits=int(rng.integers(5, 13)))
        kw["lut_bits"] = int(rng.integers(4, min(kw["state_bits"], 10) + 1))
        if cell != "rnn":
            kw["gate_frac"] = int(rng.integers(2, 9))
        m = QuantSeqClassifier(cell, input_size=int(rng.integers(1, 4)),
                               hidden=int(rng.integers(1, 4)), n_classes=2,
                               steps=int(rng.integers(1, 5)), **kw)
        with torch.no_grad():
            for p in m.parameters():
                p.mul_(3.0 * float(rng.random()) + 0.2)
        g = export_seq(m)
        return g, (lambda x: m.int_forward(torch.as_tensor(x)).numpy()), {}, g.input.dtype, \
            [IntType(True, kw["w_bits"])]
    return make


SCHEMES = {
    "uniform": lambda rng: ([_spec("WeightSpec", bits=int(rng.integers(2, 9)))],
                            [_spec("ActSpec", bits=int(rng.integers(2, 9)),
                                   realize=str(rng.choice(["mult", "pow2"])))]),
    "pow2": lambda rng: ([_spec("WeightSpec", "pow2", int(rng.integers(2, 6)))],
                         [_spec("ActSpec", bits=int(rng.integers(2, 7)), realize="pow2")]),
    "ternary": lambda rng: ([_spec("WeightSpec", "ternary", 2)],
                            [_spec("ActSpec", bits=int(rng.integers(2, 6)), calib="mse")]),
    "binary": lambda rng: ([_spec("WeightSpec", "binary", 1)], [_spec("ActSpec", "bipolar", 2)]),
    "codebook": lambda rng: ([_spec("WeightSpec", "codebook", 2,
                                    codebook_bits=int(rng.integers(3, 9)))],
                             [_spec("ActSpec", bits=int(rng.integers(2, 7)))]),
}


def _spec(cls, *a, **kw):
    from ddnhw.quant import schemes
    return getattr(schemes, cls)(*a, **kw)


def _scheme(kind):
    def make(rng, seed):
        import torch
        from ddnhw.ir import IntType
        from ddnhw.quant.schemes import SchemeMLP, export_scheme_mlp
        torch.manual_seed(seed)
        w, a = SCHEMES[kind](rng)
        sizes = tuple(int(rng.integers(2, 10)) for _ in range(int(rng.integers(2, 4))))
        n = len(sizes) - 1
        m = SchemeMLP(sizes, int(rng.integers(2, 9)), w * n, a * (n - 1))
        with torch.no_grad():
            for layer in m.layers:
                layer.weight.mul_(float(rng.choice([0.5, 1.0, 5.0])))
        m.calibrate(_inputs(rng, 128, (sizes[0],)))
        g = export_scheme_mlp(m)
        wmax = max(int(np.abs(node.attrs["weight"]).max()) for node in g.nodes
                   if node.op == "dense")
        wbits = max(wmax, 1).bit_length() + 1
        return g, (lambda x: np.asarray(m.int_forward(np.asarray(x)))), {}, g.input.dtype, \
            [IntType(True, wbits)]
    return make


MAKERS = {"ir-dense": _ir_dense, "ir-conv": _ir_conv, "ir-residual": _ir_residual,
          "ir-rnn": _ir_recurrent("rnn"), "ir-gru": _ir_recurrent("gru"),
          "ir-lstm": _ir_recurrent("lstm"), "q-mlp": _q_mlp, "q-cnn": _q_cnn,
          "q-rnn": _q_seq("rnn"), "q-gru": _q_seq("gru"), "q-lstm": _q_seq("lstm"),
          **{f"scheme-{k}": _scheme(k) for k in SCHEMES}}


def make_case(family: str, seed: int) -> Case:
    """The seeded case ``seed`` of ``family`` (same arguments, same case)."""
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    g, fn, options, it, wts = MAKERS[family](rng, seed)
    ops = sorted({n.op for n in g.nodes} | ({"xnor"} if family == "scheme-binary" else set()))
    return Case(family, seed, g, fn, options,
                {"ops": ops, "in_width": _t(it.signed, it.bits),
                 "weight_widths": sorted({_t(w.signed, w.bits) for w in wts})})


def vectors(graph, n, seed):
    """``n`` input vectors: all-min, all-max, alternating extremes, then uniform random."""
    from ddnhw.flow import random_vectors
    return random_vectors(graph, n, seed)


# -- bundles: several single-beat designs behind one stream, one Verilator build -------------

def single_beat(case) -> bool:
    """A design that takes one input beat and gives one output beat per vector."""
    return len(case.graph.input.shape) == 1 and len(case.graph.output.shape) == 1


def bundle_top(cases, lfsr_seed=1):
    """An Amaranth component running the networks of ``cases`` (single-beat designs) side by
    side behind one stream pair: the input payload is every design's input vector, each in its
    own byte-aligned field (the bytes of :func:`bundle_bytes`), the output likewise.

    Per design, a holding register feeds its core and another takes its result, so the cores
    never wait on each other combinationally; a 16-bit LFSR withholds each core's input
    (valid) and output (ready) in about a quarter of the cycles each, so every core sees its
    own random idle cycles and backpressure. Returns ``(component, in_fields, out_fields)``,
    the fields ``(byte offset, Lanes)`` of each design."""
    from amaranth.hdl import Cat, Module, Signal, Value
    from amaranth.lib import stream, wiring
    from amaranth.lib.wiring import In, Out
    from ddnhw.lower import build_network

    f_in, n_in, f_out, n_out = bundle_fields(cases)

    class Bundle(wiring.Component):
        def __init__(self):
            super().__init__({"i": In(stream.Signature(8 * n_in)),
                              "o": Out(stream.Signature(8 * n_out))})

        def elaborate(self, platform):
            m = Module()
            lfsr = Signal(16, init=(lfsr_seed * 0x9E37) & 0xFFFF or 1)
            m.d.sync += lfsr.eq(Cat(lfsr[1:], lfsr[0] ^ lfsr[2] ^ lfsr[3] ^ lfsr[5]))
            fulls_in, fulls_out, results = [], [], []
            for k, case in enumerate(cases):
                core = build_network(case.graph, **case.options)
                m.submodules[f"core{k}"] = core
                (oi, li), (oo, lo) = f_in[k], f_out[k]
                held, full_in = Signal(li.width, name=f"in{k}"), Signal(name=f"in_full{k}")
                res, full_out = Signal(8 * lo.nbytes, name=f"out{k}"), Signal(name=f"out_full{k}")
                go_i = lfsr[k % 16] | lfsr[(k + 5) % 16]
                go_o = lfsr[(k + 3) % 16] | lfsr[(k + 9) % 16]
                m.d.comb += [core.i.payload.eq(held), core.i.valid.eq(full_in & go_i),
                             core.o.ready.eq(~full_out & go_o)]
                with m.If(core.i.valid & core.i.ready):
                    m.d.sync += full_in.eq(0)
                with m.If(core.o.valid & core.o.ready):
                    m.d.sync += [full_out.eq(1), res.eq(Value.cast(core.o.payload))]
                fulls_in.append(full_in)
                fulls_out.append(full_out)
                results.append(res)
                with m.If(self.i.valid & self.i.ready):
                    m.d.sync += [held.eq(self.i.payload[8 * oi:8 * oi + li.width]),
                                 full_in.eq(1)]
                with m.If(self.o.valid & self.o.ready):
                    m.d.sync += full_out.eq(0)
            m.d.comb += [self.i.ready.eq(~Cat(*fulls_in).any()),
                         self.o.valid.eq(Cat(*fulls_out).all()),
                         self.o.payload.eq(Cat(*results))]
            return m

    return Bundle(), f_in, f_out


def bundle_fields(cases):
    """``(in_fields, in_bytes, out_fields, out_bytes)``: each design's ``(byte offset, Lanes)``
    in the bundle's input and output payloads, and their sizes in bytes."""
    from ddnhw.hw.lanes import Lanes

    def fields(tensors):
        out, off = [], 0
        for t in tensors:
            lanes = Lanes(int(t.shape[0]), int(t.dtype.bits), bool(t.dtype.signed))
            out.append((off, lanes))
            off += lanes.nbytes
        return out, off
    f_in, n_in = fields([c.graph.input for c in cases])
    f_out, n_out = fields([c.graph.output for c in cases])
    return f_in, n_in, f_out, n_out


def bundle_bytes(rows_per_case, field_list):
    """The bundle's payload bytes ``(N, total bytes)`` from each design's rows of lane values."""
    from ddnhw.hw.lanes import pack_bytes
    return np.concatenate([pack_bytes(np.asarray(r), lanes)
                           for r, (_, lanes) in zip(rows_per_case, field_list)], axis=1)
