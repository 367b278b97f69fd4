"""Import QONNX models (as Brevitas' ``export_qonnx`` writes them) into the ddnhw IR, exactly.

``load(path) -> Graph``. The model is read with ``onnx``, normalised with qonnx's own cleanup
(constant folding, shape inference, batch size 1), then interpreted node by node. Every
tensor of the ONNX graph becomes one of

* a constant (initializers, folded subgraphs), or a quantized constant (a ``Quant`` /
  ``BipolarQuant`` of a constant: integer codes and their scale, computed exactly as qonnx);
* an integer IR tensor with a real scale per channel (``real = code * scale``; scales are held
  as exact fractions of the float32 values of the model);
* a pending accumulator: a ``dense``/``conv2d`` whose bias, ReLU and following quantizer are
  not yet known, so that they become one exact integer mapping.

A ``Quant`` after an accumulator becomes a ``requant`` node: ``y = R(clip((acc + beta) *
s_acc / s_out))``, ``R`` the quantizer's rounding mode. When ``s_acc / s_out`` is an integer
times a power of two the mapping is exact (a fractional bias is carried with one more bit:
the rounding of ``(E + f) / 2**k`` for an integer ``E`` and ``0 < f < 1`` is that of ``(E +
1/2) / 2**k``); when it is not, an exact multiplier and shift is searched and checked over
every accumulator value when the accumulator's range is small (average pools), else the import
stops with an error naming the node, unless ``approx=True`` (each approximation is then listed
in ``graph.meta["approximations"]``).

The model's input quantizer and output scale are kept in ``graph.meta`` (``input_quant``,
``output_scale``, ``output_perm``, ``output_layout``) for :func:`ddnhw.golden.predict`.
Images are NCHW in ONNX and NHWC in the IR; a flatten of an NCHW tensor is matched by
permuting the next layer's weight columns.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ddnhw import DdnhwError
from ddnhw.fixedpoint import round_shift
from ddnhw.ir import Graph, IntType
from ddnhw.ir.ops import conv_out_size, dense_range

#: ONNX domains whose Quant/BipolarQuant/Trunc/MultiThreshold nodes are qonnx's
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas",
                 "finn", "qonnx")
#: the ONNX (default domain) opsets this importer reads
MIN_OPSET = 7
#: QONNX rounding mode -> ddnhw rounding mode (ddnhw.fixedpoint.ROUNDING_MODES)
ROUNDING = {"ROUND": "half_even", "HALF_EVEN": "half_even", "CEIL": "ceil", "FLOOR": "floor",
            "UP": "away", "DOWN": "zero", "HALF_UP": "half_away", "HALF_DOWN": "half_zero"}
#: ops the importer understands (default domain and qonnx's)
SUPPORTED = ("Quant", "IntQuant", "BipolarQuant", "Trunc", "MatMul", "Gemm", "Conv", "Add",
             "Sub", "Mul", "Div", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
             "Flatten", "Reshape", "Transpose", "Identity", "BatchNormalization",
             "MultiThreshold")
#: the largest accumulator range an inexact scale ratio is checked over, value by value
ENUMERATE_MAX = 1 << 18
#: the largest factor a fractional bias may scale an accumulator by (bits)
MAX_REFINE_BITS = 30
#: with ``approx``: the fraction bits a bias off every power-of-two grid is rounded to
APPROX_BIAS_BITS = 8
#: with ``approx``: the same before an inexact requantization (the MAC scaled by 2**q)
APPROX_BIAS_BITS_REQUANT = 4


class QonnxImportError(DdnhwError, ValueError):
    """A QONNX model that cannot be imported exactly; the message names the file, the node,
    its op and the reason."""


# -- values -------------------------------------------------------------------------------------

@dataclass
class QConst:
    """A quantized constant: ``codes`` (int64) and ``scale`` (an array of Fractions
    broadcastable to the codes)."""
    codes: np.ndarray
    scale: np.ndarray

    def real(self) -> np.ndarray:
        return np.asarray(self.codes).astype(object) * self.scale


@dataclass
class Val:
    """An integer IR tensor (or a pending accumulator) standing for an ONNX tensor.

    ``scale``: per channel (object array of Fractions, length C, or 1). ``layout``: ``"vec"``
    (ONNX (N, F)), ``"nchw"`` (ONNX NCHW, IR NHWC), ``"nhwc"`` (ONNX NHWC, IR NHWC).
    ``perm``: for a vector flattened from an NCHW image, the IR index of each ONNX index.
    ``relu``: a ReLU not yet applied. A pending accumulator has ``pending`` set (a dict with
    the MAC's op, input, integer weights and attributes) and ``bias``: Fractions in
    accumulator units per output channel."""
    tensor: str | None
    scale: np.ndarray
    layout: str
    perm: np.ndarray | None = None
    relu: bool = False
    pending: dict | None = None
    bias: np.ndarray | None = None
    origin: str = ""

    def __post_init__(self):
        sc = np.asarray(self.scale, dtype=object).reshape(-1)
        self.scale = sc[:1] if len(sc) > 1 and all(x == sc[0] for x in sc) else sc


def _frac_array(a) -> np.ndarray:
    """Exact Fractions of a float array (float32 values stay exactly those)."""
    a = np.asarray(a, dtype=np.float64)
    out = np.empty(a.shape, dtype=object)
    for i, v in np.ndenumerate(a):
        if not math.isfinite(v):
            raise ValueError(f"non-finite value {v}")
        out[i] = Fraction(v)
    return out


def _is_pow2(f: Fraction) -> bool:
    return f > 0 and f.numerator & (f.numerator - 1) == 0 and f.denominator & (f.denominator - 1) == 0


def _log2(f: Fraction) -> int:
    """log2 of a power-of-two Fraction."""
    return f.numerator.bit_length() - f.denominator.bit_length()


def _dyadic(f: Fraction):
    """``(m, e)`` with ``f == m * 2**e``, ``m`` odd (or 0), or None when ``f`` is not a dyadic
    rational (its denominator not a power of two)."""
    if f == 0:
        return 0, 0
    d = f.denominator
    if d & (d - 1):
        return None
    n, e = f.numerator, -(d.bit_length() - 1)
    while n % 2 == 0:
        n //= 2
        e += 1
    return n, e


def _round_frac(v: Fraction, mode: str) -> int:
    """Exact rounding of a Fraction in a ddnhw rounding mode."""
    fl = math.floor(v)
    r = v - fl
    if r == 0:
        return fl
    half = Fraction(1, 2)
    neg = v < 0
    inc = {"floor": False, "ceil": True, "zero": neg, "away": not neg,
           "half_up": r >= half, "half_even": r > half or (r == half and fl % 2 == 1),
           "half_away": r > half or (r == half and not neg),
           "half_zero": r > half or (r == half and neg)}[mode]
    return fl + int(inc)


def _int_range(signed, narrow, bits):
    """QONNX's ``min_int``/``max_int``."""
    if signed:
        return -(1 << (bits - 1)) + int(bool(narrow)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(bool(narrow))


def _scale_frac(s: Fraction) -> int:
    """The IR binary point of a per-tensor scale: exact for a power of two, else the nearest
    (the IR's ``frac`` only aligns residual sums; the exact scale is in the graph's meta)."""
    return -_log2(s) if _is_pow2(s) else -int(round(math.log2(s)))


# -- reading ------------------------------------------------------------------------------------

def read_model(path):
    """The ONNX model in ``path``, checked: an ONNX protobuf, a default-domain opset this
    importer and the installed ``onnx`` know, qonnx custom ops in a qonnx domain."""
    import onnx
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise QonnxImportError(f"{path}: file does not exist")
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise QonnxImportError(f"{path}: not an ONNX model (empty file)")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise QonnxImportError(f"{path}: not an ONNX model ({type(e).__name__}: "
                               f"{str(e)[:200]})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise QonnxImportError(f"{path}: not an ONNX model (no graph or no nodes; a truncated "
                               f"or foreign file?)")
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    v = opsets.get("ai.onnx")
    top = onnx.defs.onnx_opset_version()
    if v is None:
        raise QonnxImportError(f"{path}: opset mismatch: no default ONNX opset is declared "
                               f"(opset_import lists {sorted(opsets)})")
    if not MIN_OPSET <= v <= top:
        raise QonnxImportError(f"{path}: opset mismatch: the model declares ONNX opset {v}; "
                               f"this importer reads opsets {MIN_OPSET}..{top}")
    for n in model.graph.node:
        if n.domain and n.domain not in ("ai.onnx",) + QONNX_DOMAINS:
            raise QonnxImportError(f"{path}: node {n.name or n.output[0]!r}: op {n.op_type} of "
                                   f"domain {n.domain!r} is not a QONNX op")
        if n.domain in QONNX_DOMAINS and n.domain not in opsets:
            raise QonnxImportError(f"{path}: opset mismatch: node {n.name or n.output[0]!r} "
                                   f"uses domain {n.domain!r}, which opset_import does not "
                                   f"declare")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise QonnxImportError(f"{path}: malformed ONNX model: {str(e).splitlines()[0][:300]}"
                               ) from None
    return model


def _cleanup(model, source):
    """qonnx's normalisation, keeping the node names: batch size 1, shape inference, constant
    subgraphs folded (quantizers kept)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.infer_shapes import InferShapes
    try:
        mw = ModelWrapper(model)
        for q in ("Quant", "Trunc", "BipolarQuant"):
            for n in mw.get_nodes_by_op_type(q):
                n.domain = n.domain or "qonnx.custom_op.general"
        mw = mw.transform(InferShapes()).transform(ChangeBatchSize(1))
        mw = mw.transform(InferShapes())
        return mw.transform(FoldConstants(exclude_op_types=["Quant", "BipolarQuant", "Trunc",
                                                            "MultiThreshold"]))
    except Exception as e:
        raise QonnxImportError(f"{source}: qonnx cannot normalise the model: "
                               f"{type(e).__name__}: {str(e)[:300]}") from None


def load(path, *, approx=False) -> Graph:
    """The IR graph of the QONNX model in ``path`` (see the module doc). ``approx``: allow
    inexact integer requantization (listed in ``graph.meta["approximations"]``) where the
    model's scale ratios have no exact integer form; by default that is an error."""
    model = read_model(path)
    return from_onnx(model, source=os.fspath(path), approx=approx)


def from_onnx(model, source="<model>", approx=False) -> Graph:
    """:func:`load` of an ``onnx.ModelProto`` (or a qonnx ``ModelWrapper``)."""
    mw = model if hasattr(model, "model") and hasattr(model, "get_initializer") else \
        _cleanup(model, source)
    return _Importer(mw, source, approx).run()


# -- the importer ---------------------------------------------------------------------------------

class _Importer:
    def __init__(self, mw, source, approx):
        self.mw, self.src, self.approx = mw, source, approx
        self.g = Graph(meta={"source": "qonnx", "file": os.path.basename(source)})
        self.consts, self.vals = {}, {}
        self.approximations = []
        self.searched = {}
        self.frac_fixed = set()
        self.names = set()
        for init in mw.graph.initializer:
            self.consts[init.name] = np.asarray(mw.get_initializer(init.name))
        self.node = None

    # -- helpers ----------------------------------------------------------------------------
    def err(self, msg):
        n = self.node
        where = f"node {n.name!r} ({n.op_type})" if n is not None else "model"
        raise QonnxImportError(f"{self.src}: {where}: {msg}")

    def uniq(self, base):
        base = "".join(c if c.isalnum() or c in "_" else "_" for c in base) or "t"
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def const(self, name, what="input"):
        if name in self.consts:
            return self.consts[name]
        self.err(f"{what} {name!r} must be a constant (an initializer)")

    def is_const(self, name):
        return name in self.consts

    def shape(self, name):
        s = self.mw.get_tensor_shape(name)
        if s is None:
            self.err(f"tensor {name!r} has no inferred shape")
        return tuple(int(v) for v in s)

    def val(self, name) -> Val:
        v = self.vals.get(name)
        if v is None:
            if name in self.consts:
                self.err(f"input {name!r} is a constant where a tensor computed from the model "
                         f"input is expected")
            if name == self.input_name:
                self.err(f"the model input {name!r} is used before any Quant: the hardware "
                         f"takes integer inputs, so the model must quantize its input first "
                         f"(e.g. a Brevitas QuantIdentity)")
            self.err(f"input {name!r} is not produced by an imported node")
        if isinstance(v, QConst):
            self.err(f"input {name!r} is a quantized constant where a tensor computed from the "
                     f"model input is expected")
        return v

    def add(self, op, inputs, shape, dtype, base, **attrs):
        name = self.uniq(base)
        t = self.uniq(name + "_out")
        self.g.add_tensor(t, shape, dtype)
        self.g.add_node(name, op, inputs, [t], **attrs)
        return t

    # -- run --------------------------------------------------------------------------------
    def run(self) -> Graph:
        gi = [i.name for i in self.mw.graph.input if i.name not in self.consts]
        if len(gi) != 1:
            raise QonnxImportError(f"{self.src}: the model has {len(gi)} inputs {gi}; ddnhw "
                                   f"imports models with one input")
        go = [o.name for o in self.mw.graph.output]
        if len(go) != 1:
            raise QonnxImportError(f"{self.src}: the model has {len(go)} outputs {go}; ddnhw "
                                   f"imports models with one output")
        self.input_name = gi[0]
        for node in self.mw.graph.node:
            self.node = node
            op = node.op_type
            if op not in SUPPORTED:
                self.err(f"unsupported op {op} (the importer reads {', '.join(SUPPORTED)})")
            getattr(self, "op_" + op)(node)
        self.node = None
        out = self.vals.get(go[0])
        if out is None or isinstance(out, QConst):
            raise QonnxImportError(f"{self.src}: the model output {go[0]!r} is not computed "
                                   f"from the input")
        out = self.materialize(out, "output")
        self.g.outputs = [out.tensor]
        self.g.meta["output_scale"] = [float(s) for s in out.scale]
        if out.perm is not None and not np.array_equal(out.perm, np.arange(len(out.perm))):
            self.g.meta["output_perm"] = [int(v) for v in out.perm]
        if out.layout in ("nchw", "nc11"):
            self.g.meta["output_layout"] = out.layout
        if self.approximations:
            self.g.meta["approximations"] = self.approximations
        try:
            return self.g.check()
        except DdnhwError as e:
            raise QonnxImportError(f"{self.src}: the imported graph is inconsistent: {e}") \
                from None

    # -- attributes ---------------------------------------------------------------------------
    def attr(self, node, name, default=None):
        import onnx
        for a in node.attribute:
            if a.name == name:
                v = onnx.helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        return default

    # -- quantizers -------------------------------------------------------------------------
    def op_IntQuant(self, node):
        self.op_Quant(node)

    def op_Quant(self, node):
        x, s, z, b = node.input[:4]
        scale = np.asarray(self.const(s, "scale"), dtype=np.float32)
        zp = np.asarray(self.const(z, "zero point"), dtype=np.float32)
        bits = np.asarray(self.const(b, "bit width"))
        if bits.size != 1 or float(bits.ravel()[0]) != int(bits.ravel()[0]):
            self.err(f"bit width {bits.ravel().tolist()} must be one integer")
        bits = int(bits.ravel()[0])
        if np.any(zp != 0):
            self.err(f"non-zero zero point {zp.ravel()[:4].tolist()}: ddnhw's integer tensors "
                     f"are symmetric (zero point 0); re-export with a zero-point-free quantizer")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            self.err(f"scale {scale.ravel()[:4].tolist()} must be finite and > 0")
        signed = int(self.attr(node, "signed", 1))
        narrow = int(self.attr(node, "narrow", 0))
        mode = str(self.attr(node, "rounding_mode", "ROUND")).upper()
        if mode not in ROUNDING:
            self.err(f"rounding mode {mode!r} unknown (QONNX modes: {', '.join(ROUNDING)})")
        if not 1 <= bits <= (48 if self.is_const(x) else 24):
            self.err(f"bit width {bits} is outside 1..{48 if self.is_const(x) else 24}")
        out = node.output[0]
        if bits == 1 and signed:      # qonnx: a 1-bit signed Quant is bipolar
            return self.bipolar(node, x, scale)
        lo, hi = _int_range(signed, narrow, bits)
        if self.is_const(x):
            w = np.asarray(self.consts[x], dtype=np.float32)
            y = np.clip(w / scale, lo, hi)
            y = _np_round(mode)(y)
            self.vals[out] = QConst(y.astype(np.int64), _frac_array(np.broadcast_to(scale, np.shape(scale))))
            return
        if x == self.input_name:
            return self.quant_input(node, x, scale, bits, signed, narrow, mode, lo, hi)
        v = self.val(x)
        s_out = self.channel_scale(v, scale, "scale")
        self.vals[out] = self.requant(v, s_out, lo, hi, ROUNDING[mode], node.name or out)

    def op_BipolarQuant(self, node):
        x, s = node.input[:2]
        scale = np.asarray(self.const(s, "scale"), dtype=np.float32)
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            self.err(f"scale {scale.ravel()[:4].tolist()} must be finite and > 0")
        self.bipolar(node, x, scale)

    def bipolar(self, node, x, scale):
        out = node.output[0]
        if self.is_const(x):
            w = np.asarray(self.consts[x], dtype=np.float32)
            self.vals[out] = QConst(np.where(w >= 0, 1, -1).astype(np.int64),
                                    _frac_array(np.broadcast_to(scale, np.shape(scale))))
            return
        if x == self.input_name:
            return self.quant_input(node, x, scale, 1, 1, 0, "BIPOLAR", -1, 1)
        v = self.val(x)
        s_out = self.channel_scale(v, scale, "scale")
        if v.pending is None:
            self.err("a bipolar quantizer after a non-MAC tensor is not supported (it needs "
                     "the sign of a value that is not an accumulator)")
        if v.relu:
            self.err("BipolarQuant after Relu is always +1; not supported")
        # sign(acc + beta) >= 0  <=>  acc + floor(beta) >= 0; then 2 * that + 1, clipped
        p = v.pending
        beta = v.bias if v.bias is not None else np.zeros(len(v.scale), dtype=object)
        beta = np.broadcast_to(beta, (p["out_ch"],))
        bias = np.array([2 * math.floor(b) + 1 for b in beta], dtype=np.int64)
        tensor = self.emit_mac(p, np.full(p["out_ch"], 2, dtype=np.int64), bias,
                               frac=0)
        c = p["out_ch"]
        t = self.add("requant", [tensor], self.g.tensors[tensor].shape, IntType(True, 2),
                     (node.name or out) + "_sign", multiplier=np.ones(c, np.int64),
                     shift=np.zeros(c, np.int64), lo=-1, hi=1, rounding="half_up")
        self.vals[out] = Val(t, s_out, v.layout, v.perm)

    def quant_input(self, node, x, scale, bits, signed, narrow, mode, lo, hi):
        if scale.size != 1 and not np.all(scale == scale.ravel()[0]):
            self.err("a per-channel input quantizer is not supported (the first layer needs "
                     "one input scale)")
        if self.g.inputs:
            self.err(f"the model input {x!r} is quantized twice")
        s = float(scale.ravel()[0])
        shape = self.shape(x)
        if len(shape) == 2:
            ir_shape, layout = (shape[1],), "vec"
        elif len(shape) == 4:
            ir_shape, layout = (shape[2], shape[3], shape[1]), "nchw"
        else:
            self.err(f"input shape {shape}: ddnhw takes vectors (N, F) or images (N, C, H, W)")
        sf = Fraction(s)
        dtype = IntType(lo < 0, max(2, bits) if lo < 0 else bits, _scale_frac(sf))
        name = self.uniq("x")
        self.g.add_tensor(name, ir_shape, dtype)
        self.g.inputs = [name]
        self.g.meta["input_quant"] = {"scale": s, "bits": bits, "signed": bool(signed),
                                      "narrow": bool(narrow), "rounding": mode, "lo": lo,
                                      "hi": hi, "layout": layout, "name": x,
                                      "shape": list(shape[1:])}
        self.vals[node.output[0]] = Val(name, np.array([sf], dtype=object), layout)

    def channel_scale(self, v, scale, what):
        """A quantizer's scale as per-channel Fractions of ``v`` (length C, or 1)."""
        return _frac_array(self.per_channel(v, np.asarray(scale, dtype=np.float32), what))

    def per_channel(self, v, arr, what):
        """A constant that broadcasts (ONNX rules) against ``v``'s tensor as one value per
        channel: its values, length C in the IR's channel order, or length 1."""
        arr = np.asarray(arr)
        if arr.size == 1:
            return arr.reshape(1)
        c = self.nchannels(v)
        rank = 2 if v.layout == "vec" else 4
        axis = {"vec": 1, "nchw": 1, "nhwc": 3, "nc11": 1}[v.layout]
        if arr.ndim > rank:
            self.err(f"{what} of shape {arr.shape} has more axes than the tensor")
        shape = (1,) * (rank - arr.ndim) + arr.shape
        if shape[axis] != c or any(d != 1 for k, d in enumerate(shape) if k != axis):
            self.err(f"{what} of shape {arr.shape} is not per-tensor or per-channel of a tensor "
                     f"with {c} channels")
        flat = arr.reshape(-1)
        if v.perm is not None:
            self.err(f"a per-feature {what} on a flattened image is not supported")
        return flat

    def nchannels(self, v):
        if v.pending is not None:
            return v.pending["out_ch"]
        return self.g.tensors[v.tensor].shape[-1]

    # -- requantization -----------------------------------------------------------------------
    def requant(self, v, s_out, lo, hi, mode, base):
        """A requant of ``v`` to per-channel scale ``s_out``, clip ``[lo, hi]``, rounding
        ``mode``: a Val of the new code tensor."""
        if v.relu:
            lo, hi = max(lo, 0), max(hi, 0)
        c = self.nchannels(v)
        s_in = np.broadcast_to(v.scale, (c,))
        s_o = np.broadcast_to(s_out, (c,))
        ratio = [a / b for a, b in zip(s_in, s_o)]
        beta = (np.broadcast_to(v.bias, (c,)) if v.bias is not None
                else np.zeros(c, dtype=object))
        half = [b - 1 / (2 * r) for b, r in zip(beta, ratio)]
        if mode == "floor" and all(Fraction(h).denominator == 1 for h in half):
            # floor((acc + B) * r + 1/2): round half up (what export-qonnx writes for it)
            mode, beta = "half_up", np.array(half, dtype=object)
        mult, shift, factor, bias = [], [], [], []
        for ch in range(c):
            m, k, f, b = self.channel_map(ratio[ch], beta[ch], mode, v, ch, base)
            mult.append(m), shift.append(k), factor.append(f), bias.append(b)
        if v.pending is not None:
            tensor = self.emit_mac(v.pending, np.array(factor, dtype=np.int64),
                                   np.array(bias, dtype=np.int64), frac=0)
        else:
            tensor = v.tensor
        mult, shift = np.array(mult, dtype=np.int64), np.array(shift, dtype=np.int64)
        it = self.g.tensors[tensor].dtype
        if (v.pending is None and np.all(mult == 1) and np.all(shift == 0)
                and lo <= it.min and it.max <= hi):
            # the same scale and a range that holds the input: no node (e.g. a shared
            # quantizer applied again, as on a residual skip; the hardware needs that skip
            # to be the fork's tensor itself)
            return Val(tensor, np.array(list(s_out), dtype=object), v.layout, v.perm)
        # output type: the exact range of the requant (within [lo, hi])
        it = self.g.tensors[tensor].dtype
        a = round_shift(np.minimum(mult * it.min, mult * it.max), shift, mode)
        b = round_shift(np.maximum(mult * it.min, mult * it.max), shift, mode)
        rlo, rhi = int(np.clip(a, lo, hi).min()), int(np.clip(b, lo, hi).max())
        frac = _scale_frac(s_o[0]) if all(x == s_o[0] for x in s_o) else 0
        t = IntType.for_range(rlo, rhi, frac)
        out = self.add("requant", [tensor], self.g.tensors[tensor].shape, t, base,
                       multiplier=mult, shift=shift, lo=int(lo), hi=int(hi), rounding=mode)
        return Val(out, np.array(list(s_out), dtype=object), v.layout, v.perm)

    def channel_map(self, ratio, beta, mode, v, ch, base):
        """``(multiplier, shift, factor, bias)`` of one channel such that, for every integer
        accumulator value ``acc``, ``round_shift((acc * factor + bias) * multiplier, shift,
        mode) == R((acc + beta) * ratio)`` exactly (``factor``/``bias`` apply to a pending
        MAC; for a code tensor they must be 1 and 0)."""
        d = _dyadic(ratio)
        if d is None:
            if beta == 0:
                found = self.search_multiplier(ratio, mode, v, ch)
                if found is not None:
                    return found[0], found[1], 1, 0
            if not self.approx:
                self.err(f"the scale ratio {float(ratio):.9g} (input scale / output scale, "
                         f"channel {ch}) is not an integer times a power of two, so no exact "
                         f"integer requantization exists; train with power-of-two scales "
                         f"(Brevitas *FixedPoint quantizers or restrict_scaling_type="
                         f"RestrictValueType.POWER_OF_TWO) or import with --approx")
            k = 23 - math.floor(math.log2(ratio))       # a 24-bit multiplier
            approx = (Fraction(round(ratio * (1 << k)), 1 << k) if k >= 0
                      else Fraction(round(ratio / (1 << -k)) << -k))
            self.approximate(base, "scale ratio as a 24-bit multiplier",
                             abs(approx - ratio) / ratio)
            m, e = _dyadic(approx)
            beta = Fraction(beta)
            if beta.denominator != 1:    # the bias to 2**-q accumulator units: q more bits
                if v.pending is None:
                    self.err("a fractional offset on a non-accumulator tensor is not supported")
                q = APPROX_BIAS_BITS_REQUANT
                bq = round(beta * (1 << q))
                self.approximate(base, f"bias rounded to 2**-{q} accumulator units",
                                 abs(Fraction(bq, 1 << q) - beta))
                sh = q - e
                return (m, sh, 1 << q, bq) if sh >= 0 else (m << -sh, 0, 1 << q, bq)
            if e >= 0:
                return m << e, 0, 1, int(beta)
            return m, -e, 1, int(beta)
        m, e = d
        if m <= 0:
            self.err(f"scale ratio {float(ratio)} must be > 0")
        beta = Fraction(beta)
        if beta.denominator == 1:
            if v.pending is None and beta != 0:
                self.err("an offset on a non-accumulator tensor is not supported")
            if e >= 0:
                return m << e, 0, 1, int(beta)
            return m, -e, 1, int(beta)
        if v.pending is None:
            self.err("a fractional offset on a non-accumulator tensor is not supported")
        # fractional bias: acc' = 2 m 2^t acc + 2 floor(m 2^t beta) + 1, y = R(acc' 2^(e-t-1))
        t = max(0, e + 1)
        if t > MAX_REFINE_BITS:
            self.err(f"channel {ch}: scale ratio {float(ratio)} too large to refine a "
                     f"fractional bias")
        f = 2 * m * (1 << t)
        b = 2 * math.floor(m * (1 << t) * beta) + 1
        return 1, t + 1 - e, f, b

    def approximate(self, node, what, error):
        """Record an approximation (one entry per node and kind, the largest error)."""
        for a in self.approximations:
            if a["node"] == node and a["what"] == what:
                a["max_error"] = max(a["max_error"], float(error))
                return
        self.approximations.append({"node": node, "what": what, "max_error": float(error)})

    def search_multiplier(self, ratio, mode, v, ch):
        """An exact ``(m, k)`` with ``round_shift(acc * m, k) == R(acc * ratio)`` for every
        accumulator value of channel ``ch`` of ``v``, checked value by value (ranges up to
        :data:`ENUMERATE_MAX`), or None."""
        if v.pending is not None:
            p = v.pending
            w = p["matrix"][ch:ch + 1]
            lo, hi = dense_range(w, np.zeros(1, np.int64), p["in_type"])
            lo, hi = int(lo[0]), int(hi[0])
        else:
            t = self.g.tensors[v.tensor].dtype
            lo, hi = t.min, t.max
        if hi - lo + 1 > ENUMERATE_MAX:
            return None
        key = (ratio, lo, hi, mode)
        if key in self.searched:
            return self.searched[key]
        self.searched[key] = found = self._search(ratio, mode, lo, hi)
        return found

    @staticmethod
    def _search(ratio, mode, lo, hi):
        acc = np.arange(lo, hi + 1, dtype=np.int64)
        want = np.array([_round_frac(int(a) * ratio, mode) for a in acc], dtype=np.int64)
        top = max(abs(lo), abs(hi), 1)
        for k in range(1, 62):
            base = ratio * (1 << k)
            for m in {math.floor(base), math.ceil(base)}:
                if m <= 0 or m * top >= (1 << 62):
                    continue
                if np.array_equal(round_shift(acc * m, k, mode), want):
                    return m, k
            if base * top >= (1 << 62):
                break
        return None

    def emit_mac(self, p, factor, bias, frac):
        """The IR node of a pending MAC with each output row scaled by ``factor`` and integer
        ``bias``: its output tensor's name."""
        w = p["weight"] * factor.reshape((-1,) + (1,) * (p["weight"].ndim - 1))
        attrs = dict(weight=w.astype(np.int64), bias=bias.astype(np.int64), **p["attrs"])
        mat = w.reshape(len(w), -1)
        lo, hi = dense_range(mat, bias, p["in_type"])
        acc = IntType.for_range(int(min(lo)), int(max(hi)), frac)
        return self.add(p["op"], [p["input"]], p["out_shape"], acc, p["name"], **attrs)

    def materialize(self, v, why):
        """``v`` as an integer tensor: a pending MAC emitted with its bias on an exact grid
        (the accumulator scaled by a power of two when the bias is fractional), a pending
        ReLU applied."""
        if v.pending is None and v.bias is not None and any(b != 0 for b in v.bias):
            self.err(f"a constant added to a tensor that is not a MAC's accumulator reaches "
                     f"{why} (only a following quantizer's rounding can absorb it)")
        if v.pending is not None:
            p = v.pending
            c = p["out_ch"]
            beta = (np.broadcast_to(v.bias, (c,)) if v.bias is not None
                    else np.zeros(c, dtype=object))
            j = 0
            for b in beta:
                d = Fraction(b).denominator
                if d & (d - 1):
                    if not self.approx:
                        self.err(f"the bias of {p['name']!r} is not on a power-of-two grid of "
                                 f"its accumulator (scale ratio not a power of two) before "
                                 f"{why}: no exact integer form; import with --approx")
                    j = APPROX_BIAS_BITS
                    break
                j = max(j, d.bit_length() - 1)
            if j > MAX_REFINE_BITS:
                self.err(f"the bias of {p['name']!r} needs {j} fraction bits below the "
                         f"accumulator's scale before {why} (at most {MAX_REFINE_BITS})")
            exact = [Fraction(b) * (1 << j) for b in beta]
            if any(e.denominator != 1 for e in exact):
                self.approximate(p["name"], f"bias rounded to 2**-{j} accumulator units",
                                 max(abs(e - round(e)) for e in exact) / (1 << j))
            bias = np.array([round(Fraction(b) * (1 << j)) for b in beta], dtype=np.int64)
            scale = np.array([s / (1 << j) for s in np.broadcast_to(v.scale, (c,))],
                             dtype=object)
            frac = _scale_frac(scale[0]) if all(s == scale[0] for s in scale) else 0
            t = self.emit_mac(p, np.full(c, 1 << j, dtype=np.int64), bias, frac)
            v = Val(t, scale, v.layout, v.perm, relu=v.relu)
        if v.relu:
            t = self.g.tensors[v.tensor]
            c = t.shape[-1]
            out = self.add("requant", [v.tensor], t.shape,
                           IntType.for_range(0, max(t.dtype.max, 0) or 1, t.dtype.frac),
                           v.tensor + "_relu", multiplier=np.ones(c, np.int64),
                           shift=np.zeros(c, np.int64), lo=0, hi=max(t.dtype.max, 0))
            v = Val(out, v.scale, v.layout, v.perm)
        return v

    # -- MACs -------------------------------------------------------------------------------
    def weight(self, name):
        q = self.vals.get(name)
        if isinstance(q, QConst):
            return q
        if name in self.consts:
            self.err(f"weight {name!r} is a float constant without a Quant node: the hardware "
                     f"needs integer weights (quantize them, e.g. Brevitas weight_quant)")
        self.err(f"weight {name!r} is computed from the input; only constant weights are "
                 f"supported")

    def per_out(self, q: QConst, axis, what):
        """The per-output-channel scale (Fractions, length O) of a quantized weight whose
        output channels are along ``axis``."""
        sc = np.broadcast_to(q.scale, q.codes.shape)
        moved = np.moveaxis(sc, axis, 0).reshape(q.codes.shape[axis], -1)
        for row in moved:
            if any(x != row[0] for x in row):
                self.err(f"{what} scale varies within an output channel; only per-tensor or "
                         f"per-output-channel weight scales are supported")
        return np.array([row[0] for row in moved], dtype=object)

    def op_MatMul(self, node):
        self.dense(node, node.input[0], node.input[1], None, trans_b=False)

    def op_Gemm(self, node):
        if int(self.attr(node, "transA", 0)):
            self.err("transA=1 is not supported")
        alpha, beta = float(self.attr(node, "alpha", 1.0)), float(self.attr(node, "beta", 1.0))
        if alpha != 1.0 or beta != 1.0:
            self.err(f"alpha={alpha}, beta={beta}: only alpha = beta = 1 are supported")
        self.dense(node, node.input[0], node.input[1],
                   node.input[2] if len(node.input) > 2 and node.input[2] else None,
                   trans_b=bool(int(self.attr(node, "transB", 0))))

    def dense(self, node, a, b, c, trans_b):
        v = self.materialize(self.val(a), f"{node.op_type} {node.name!r}")
        q = self.weight(b)
        w = q.codes if trans_b else q.codes.T        # (out, in)
        if w.ndim != 2:
            self.err(f"weight of shape {q.codes.shape} is not a matrix")
        s_w = self.per_out(q, 0 if trans_b else 1, "weight")
        x = self.g.tensors[v.tensor]
        if len(x.shape) != 1:
            self.err(f"input of shape {x.shape} (IR) is not a vector; flatten it first")
        if w.shape[1] != x.shape[0]:
            self.err(f"weight has {w.shape[1]} inputs, the tensor {x.shape[0]}")
        if len(v.scale) != 1 and any(s != v.scale[0] for s in v.scale):
            self.err("the input has per-channel scales; a matrix product needs one input "
                     "scale (the accumulator's scale would differ per term)")
        if v.relu:
            v = self.materialize(v, node.op_type)
        if v.perm is not None:
            wp = np.empty_like(w)
            wp[:, v.perm] = w
            w = wp
        s_acc = np.array([v.scale[0] * s for s in s_w], dtype=object)
        o = w.shape[0]
        pend = {"op": "dense", "input": v.tensor, "weight": w.astype(np.int64), "attrs": {},
                "in_type": x.dtype, "out_shape": (o,), "out_ch": o, "name":
                node.name or node.output[0], "matrix": w.astype(np.int64), "bias_shape": (o,)}
        out = Val(None, s_acc, "vec", None, pending=pend, origin=node.name)
        if c is not None:
            out = self.with_bias(out, c)
        self.vals[node.output[0]] = out

    def with_bias(self, v, name, vector=False):
        """``v`` (pending) plus the constant ``name`` (quantized or float), in accumulator
        units per channel."""
        if not (isinstance(self.vals.get(name), QConst) or name in self.consts):
            self.err(f"bias {name!r} is not a constant")
        real = _const_real(self, name)
        c = v.pending["out_ch"]
        real = np.asarray(real, dtype=object)
        if vector:        # Conv's B input: one value per output channel, 1-D
            if real.shape != (c,):
                self.err(f"bias of shape {real.shape}, expected ({c},)")
            flat = real
        else:
            flat = self.per_channel(v, real, "bias")
        if flat.size == 1:
            flat = np.repeat(flat, c)
        beta = np.array([b / s for b, s in zip(flat, np.broadcast_to(v.scale, (c,)))],
                        dtype=object)
        if v.bias is not None:
            beta = beta + v.bias
        return Val(None, v.scale, v.layout, v.perm, pending=v.pending, bias=beta,
                   origin=v.origin)

    def op_Conv(self, node):
        v = self.materialize(self.val(node.input[0]), "Conv")
        if v.layout != "nchw":
            self.err(f"input layout {v.layout}: Conv needs an NCHW image")
        q = self.weight(node.input[1])
        if q.codes.ndim != 4:
            self.err(f"weight of shape {q.codes.shape}: only 2-D convolutions are supported")
        if len(v.scale) != 1 and any(s != v.scale[0] for s in v.scale):
            self.err("the input has per-channel scales; a convolution needs one input scale")
        o, cg, kh, kw = q.codes.shape
        h, wd, c = self.g.tensors[v.tensor].shape
        group = int(self.attr(node, "group", 1))
        strides = list(self.attr(node, "strides", [1, 1]))
        pads = list(self.attr(node, "pads", [0, 0, 0, 0]))
        dil = list(self.attr(node, "dilations", [1, 1]))
        ap = self.attr(node, "auto_pad", "NOTSET")
        if ap not in ("NOTSET", "VALID"):
            self.err(f"auto_pad={ap} is not supported (give explicit pads)")
        if any(d != 1 for d in dil):
            self.err(f"dilations {dil} are not supported")
        if len(set(strides)) != 1:
            self.err(f"strides {strides} differ per axis; the IR takes one stride")
        if len(set(pads)) != 1:
            self.err(f"pads {pads} are not symmetric and equal on both axes")
        if cg * group != c:
            self.err(f"weight {q.codes.shape} with group {group} does not fit {c} channels")
        pad, st = pads[0], strides[0]
        if pad >= min(kh, kw):
            self.err(f"padding {pad} is not smaller than the kernel {kh}x{kw}")
        s_w = self.per_out(q, 0, "weight")
        w = q.codes.transpose(0, 2, 3, 1).astype(np.int64)      # (O, KH, KW, Cg)
        oh, ow = conv_out_size(h, kh, st, pad), conv_out_size(wd, kw, st, pad)
        if oh < 1 or ow < 1:
            self.err(f"kernel {kh}x{kw} does not fit the input {h}x{wd}")
        x = self.g.tensors[v.tensor]
        from ddnhw.ir.ops import conv_matrix
        pend = {"op": "conv2d", "input": v.tensor, "weight": w,
                "attrs": {"stride": st, "padding": pad, "groups": group},
                "in_type": x.dtype, "out_shape": (oh, ow, o), "out_ch": o,
                "name": node.name or node.output[0], "matrix": conv_matrix(w, c, group),
                "bias_shape": (o,)}
        s_acc = np.array([v.scale[0] * s for s in s_w], dtype=object)
        out = Val(None, s_acc, "nchw", None, pending=pend, origin=node.name)
        if len(node.input) > 2 and node.input[2]:
            out = self.with_bias(out, node.input[2], vector=True)
        self.vals[node.output[0]] = out

    # -- elementwise --------------------------------------------------------------------------
    def op_Add(self, node):
        a, b = node.input[:2]
        if self.is_const(b) or isinstance(self.vals.get(b), QConst):
            return self.bias_add(node, a, b)
        if self.is_const(a) or isinstance(self.vals.get(a), QConst):
            return self.bias_add(node, b, a)
        va = self.materialize(self.val(a), "Add")
        vb = self.materialize(self.val(b), "Add")
        ta, tb = self.g.tensors[va.tensor], self.g.tensors[vb.tensor]
        if ta.shape != tb.shape:
            self.err(f"adding tensors of shapes {ta.shape} and {tb.shape} (broadcasting is not "
                     f"supported)")
        if va.layout != vb.layout or not _same_perm(va.perm, vb.perm):
            self.err("adding tensors of different layouts")
        if len(va.scale) != 1 or len(vb.scale) != 1:
            self.err("a residual Add needs per-tensor scales on both inputs")
        sa, sb = va.scale[0], vb.scale[0]
        r = sa / sb
        if not _is_pow2(r):
            self.err(f"the inputs' scales {float(sa):.9g} and {float(sb):.9g} differ by "
                     f"{float(r):.9g}, not a power of two: their sum has no exact integer "
                     f"form (quantize both branches with one scale, e.g. a shared quantizer)")
        e = _log2(r)            # sa = sb * 2**e
        s0, s1 = (e, 0) if e > 0 else (0, -e)
        scale = min(sa, sb)
        fy = _scale_frac(scale)
        # the add op checks frac(x) + shift == frac(y): an input whose IR binary point does
        # not follow its scale (rescaled by a Mul) is re-typed by an identity requant
        va, ta = self.retype(va, ta, fy - s0)
        vb, tb = self.retype(vb, tb, fy - s1)
        lo = (ta.dtype.min << s0) + (tb.dtype.min << s1)
        hi = (ta.dtype.max << s0) + (tb.dtype.max << s1)
        t = IntType.for_range(lo, hi)
        out = self.add("add", [va.tensor, vb.tensor], ta.shape, IntType(t.signed, t.bits, fy),
                       node.name or node.output[0], shift0=s0, shift1=s1)
        self.vals[node.output[0]] = Val(out, np.array([scale], dtype=object), va.layout,
                                        va.perm)

    def retype(self, v, t, frac):
        """``(v, tensor)`` with the IR binary point ``frac``: ``v`` itself, or an identity
        requant of it typed so."""
        if t.dtype.frac == frac:
            self.frac_fixed.add(t.name)
            return v, t
        if t.name not in self.frac_fixed and t.name not in self.g.inputs:
            # the binary point is informative everywhere but in an add: re-type in place
            t.dtype = IntType(t.dtype.signed, t.dtype.bits, frac)
            self.frac_fixed.add(t.name)
            return v, t
        c = t.shape[-1]
        out = self.add("requant", [v.tensor], t.shape, IntType(t.dtype.signed, t.dtype.bits,
                                                               frac),
                       v.tensor + "_align", multiplier=np.ones(c, np.int64),
                       shift=np.zeros(c, np.int64), lo=t.dtype.min, hi=t.dtype.max)
        return Val(out, v.scale, v.layout, v.perm), self.g.tensors[out]

    def bias_add(self, node, a, c):
        v = self.val(a)
        if v.relu:
            self.err("adding a constant after Relu is not supported")
        if v.pending is None:      # an offset on a code tensor: only a rounding step folds it
            c_ = self.nchannels(v)
            real = self.per_channel(v, _const_real(self, c), "offset")
            off = np.array([r / s for r, s in zip(np.broadcast_to(real, (c_,)),
                                                  np.broadcast_to(v.scale, (c_,)))],
                           dtype=object)
            if v.bias is not None:
                off = off + v.bias
            self.vals[node.output[0]] = Val(v.tensor, v.scale, v.layout, v.perm, bias=off,
                                            origin=v.origin)
            return
        self.vals[node.output[0]] = self.with_bias(v, c)

    def op_Sub(self, node):
        a, b = node.input[:2]
        if not (self.is_const(b) or isinstance(self.vals.get(b), QConst)):
            self.err("only subtracting a constant is supported")
        q = self.vals.get(b)
        neg = (QConst(-q.codes, q.scale) if isinstance(q, QConst)
               else -np.asarray(self.consts[b], dtype=np.float32))
        tmp = self.uniq("neg_" + b)
        if isinstance(neg, QConst):
            self.vals[tmp] = neg
        else:
            self.consts[tmp] = neg
        v = self.val(a)
        if v.pending is None:
            self.err("subtracting a constant from a tensor that is not a MAC's accumulator is "
                     "not supported")
        self.vals[node.output[0]] = self.with_bias(v, tmp)

    def scale_by(self, a, out, factor):
        v = self.val(a)
        f = np.asarray(factor, dtype=np.float64)
        if not np.all(np.isfinite(f)) or np.any(f <= 0):
            self.err(f"multiplying by {f.ravel()[:4].tolist()}: only positive finite constants "
                     f"are supported")
        fr = self.channel_scale(v, np.asarray(factor, dtype=np.float32), "factor") \
            if f.size > 1 else _frac_array(f.reshape(1))
        c = self.nchannels(v)
        scale = np.array([s * k for s, k in zip(np.broadcast_to(v.scale, (c,)),
                                                np.broadcast_to(fr, (c,)))], dtype=object)
        if len(set(scale)) == 1:
            scale = scale[:1]
        # a pending bias is in accumulator units: unchanged (the scale carries the factor)
        self.vals[out] = Val(v.tensor, scale, v.layout, v.perm, v.relu, v.pending, v.bias,
                             v.origin)

    def op_Mul(self, node):
        a, b = node.input[:2]
        if self.is_const(a) and not self.is_const(b):
            a, b = b, a
        if not self.is_const(b):
            self.err("only multiplying by a constant is supported")
        self.scale_by(a, node.output[0], np.asarray(self.consts[b], dtype=np.float32))

    def op_Div(self, node):
        a, b = node.input[:2]
        if not self.is_const(b):
            self.err("only dividing by a constant is supported")
        d = np.asarray(self.consts[b], dtype=np.float64)
        if np.any(d <= 0):
            self.err("only dividing by a positive constant is supported")
        v = self.val(a)
        c = self.nchannels(v)
        fr = 1 / _frac_array(self.per_channel(v, np.asarray(self.consts[b], dtype=np.float32),
                                              "divisor"))
        scale = np.array([s * k for s, k in zip(np.broadcast_to(v.scale, (c,)),
                                                np.broadcast_to(fr, (c,)))], dtype=object)
        if len(set(scale)) == 1:
            scale = scale[:1]
        self.vals[node.output[0]] = Val(v.tensor, scale, v.layout, v.perm, v.relu, v.pending,
                                        v.bias, v.origin)

    def op_Relu(self, node):
        v = self.val(node.input[0])
        self.vals[node.output[0]] = Val(v.tensor, v.scale, v.layout, v.perm, True, v.pending,
                                        v.bias, v.origin)

    def op_Identity(self, node):
        x = node.input[0]
        if x in self.vals:
            self.vals[node.output[0]] = self.vals[x]
        elif x in self.consts:
            self.consts[node.output[0]] = self.consts[x]
        else:
            self.val(x)

    def op_BatchNormalization(self, node):
        v = self.val(node.input[0])
        if v.pending is None or v.relu:
            self.err("BatchNormalization is folded into the convolution or matrix product "
                     "right before it; here it is not right after one")
        gamma, beta, mean, var = (np.asarray(self.const(n, "BN parameter"), dtype=np.float64)
                                  for n in node.input[1:5])
        eps = float(self.attr(node, "epsilon", 1e-5))
        a = gamma / np.sqrt(var + eps)
        if not self.approx:
            self.err("BatchNormalization computes 1/sqrt(var + eps) in floating point, which "
                     "no integer mapping reproduces exactly; merge it into the layer before "
                     "export (brevitas.graph.calibrate / merge_bn) or import with --approx")
        if np.any(a <= 0):
            self.err("BatchNormalization with a non-positive gain is not supported")
        c = v.pending["out_ch"]
        fa = _frac_array(a)
        scale = np.array([s * k for s, k in zip(np.broadcast_to(v.scale, (c,)), fa)],
                         dtype=object)
        off = _frac_array(beta - mean * a)         # real offset after the affine map
        old = v.bias if v.bias is not None else np.zeros(c, dtype=object)
        bias = np.array([b + o / s for b, o, s in zip(np.broadcast_to(old, (c,)), off, scale)],
                        dtype=object)
        self.approximate(node.name, "BatchNormalization folded in float64", 0.0)
        self.vals[node.output[0]] = Val(None, scale, v.layout, v.perm, False, v.pending, bias,
                                        v.origin)

    # -- FINN thresholds -------------------------------------------------------------------
    def op_MultiThreshold(self, node):
        """FINN's ``MultiThreshold``: ``y = out_scale * #{i: x >= t[c, i]} + out_bias``. On an
        accumulator ``(acc + beta) * s`` the thresholds become integers ``A_i = ceil(t_i / s
        - beta)``; when they are equally spaced (``A_i = A_0 + i d``) the count is
        ``clip(floor((acc - A_0 + d) / d), 0, B)``: the MAC's bias and a floor requant. Other
        thresholds have no requant form (the IR has no threshold op): an error."""
        v = self.val(node.input[0])
        t = np.asarray(self.const(node.input[1], "thresholds"), dtype=np.float32)
        if t.ndim != 2:
            self.err(f"thresholds of shape {t.shape}, expected (channels, steps)")
        layout = str(self.attr(node, "data_layout", "") or "")
        if layout not in ("", "NCHW", "NC") and not (layout in ("NHWC", "NWC")
                                                      and v.layout == "nhwc"):
            self.err(f"data_layout {layout!r} does not match the tensor's layout {v.layout}")
        out_scale = Fraction(float(np.float32(self.attr(node, "out_scale", 1.0))))
        out_bias = Fraction(float(np.float32(self.attr(node, "out_bias", 0.0))))
        if out_scale <= 0:
            self.err(f"out_scale {float(out_scale)} must be > 0")
        off = out_bias / out_scale
        if off.denominator != 1:
            self.err(f"out_bias {float(out_bias)} is not an integer multiple of out_scale "
                     f"{float(out_scale)}")
        off = int(off)
        if v.pending is None:
            self.err("MultiThreshold is imported after a MatMul/Conv accumulator (a streamlined "
                     "FINN layer); here its input is not one")
        c, steps = v.pending["out_ch"], t.shape[1]
        if t.shape[0] not in (1, c):
            self.err(f"thresholds for {t.shape[0]} channels, the tensor has {c}")
        if v.perm is not None:
            self.err("MultiThreshold on a flattened image is not supported")
        s = np.broadcast_to(v.scale, (c,))
        beta = np.broadcast_to(v.bias, (c,)) if v.bias is not None else np.zeros(c, object)
        bias, mult, shift = [], [], []
        w = v.pending["matrix"]
        for ch in range(c):
            row = t[ch if t.shape[0] > 1 else 0]
            a = sorted(math.ceil(Fraction(float(x)) / s[ch] - beta[ch]) for x in row)
            if v.relu and a[0] <= 0:
                self.err(f"channel {ch}: a threshold <= 0 after Relu is not supported")
            d = a[1] - a[0] if steps > 1 else 1
            if d < 1 or any(a[i] != a[0] + i * d for i in range(steps)):
                self.err(f"channel {ch}: the thresholds (as accumulator values {a[:6]}"
                         f"{' ...' if steps > 6 else ''}) are not equally spaced: no requant "
                         f"expresses them exactly (the IR has no threshold op)")
            b = -a[0] + d + off * d
            if d & (d - 1) == 0:
                m, k = 1, d.bit_length() - 1
            else:
                # only accumulators whose count is inside [off, off + steps] matter (the
                # mapping is monotonic); a multiplier floors exactly only where they are >= 0
                lo, hi = dense_range(w[ch:ch + 1], np.array([b]), v.pending["in_type"])
                lo, hi = max(int(lo[0]), off * d - 1), min(int(hi[0]), (off + steps + 1) * d)
                found = (None if off < 0 or hi - lo + 1 > ENUMERATE_MAX or lo > hi
                         else self._search(Fraction(1, d), "floor", lo, hi))
                if found is None:
                    self.err(f"channel {ch}: threshold step {d} is not a power of two; a "
                             f"multiplier floors exactly only for an unsigned count "
                             f"(out_bias >= 0)")
                m, k = found
            bias.append(b), mult.append(m), shift.append(k)
        tensor = self.emit_mac(v.pending, np.ones(c, np.int64), np.array(bias, np.int64), 0)
        lo, hi = off, off + steps
        out = self.add("requant", [tensor], self.g.tensors[tensor].shape,
                       IntType.for_range(lo, hi, _scale_frac(out_scale)),
                       node.name or node.output[0], multiplier=np.array(mult, np.int64),
                       shift=np.array(shift, np.int64), lo=lo, hi=hi, rounding="floor")
        self.vals[node.output[0]] = Val(out, np.array([out_scale], dtype=object), v.layout,
                                        v.perm)

    # -- pooling ------------------------------------------------------------------------------
    def pool_geometry(self, node, v):
        k = list(self.attr(node, "kernel_shape"))
        strides = list(self.attr(node, "strides", k))
        pads = list(self.attr(node, "pads", [0, 0, 0, 0]))
        if any(pads):
            self.err(f"pads {pads}: pooling with padding is not supported")
        if int(self.attr(node, "ceil_mode", 0)):
            self.err("ceil_mode=1 is not supported")
        if any(d != 1 for d in self.attr(node, "dilations", [1, 1])):
            self.err("dilations are not supported")
        if len(set(strides)) != 1:
            self.err(f"strides {strides} differ per axis")
        if v.layout != "nchw":
            self.err(f"{node.op_type} needs an NCHW image, not layout {v.layout}")
        return k, strides[0]

    def op_MaxPool(self, node):
        if len(node.output) > 1 and node.output[1]:
            self.err("MaxPool with indices output is not supported")
        v = self.materialize(self.val(node.input[0]), "MaxPool")
        (kh, kw), st = self.pool_geometry(node, v)
        h, w, c = self.g.tensors[v.tensor].shape
        shape = (conv_out_size(h, kh, st, 0), conv_out_size(w, kw, st, 0), c)
        out = self.add("maxpool2d", [v.tensor], shape, self.g.tensors[v.tensor].dtype,
                       node.name or node.output[0], kernel=[kh, kw] if kh != kw else kh,
                       stride=st)
        self.vals[node.output[0]] = Val(out, v.scale, v.layout, None)

    def sum_pool(self, node, v, kh, kw, st):
        """A window sum as a depthwise conv2d of ones (exact), scale divided by the window."""
        t = self.g.tensors[v.tensor]
        h, w, c = t.shape
        ones = np.ones((c, kh, kw, 1), dtype=np.int64)
        shape = (conv_out_size(h, kh, st, 0), conv_out_size(w, kw, st, 0), c)
        lo, hi = dense_range(ones[:1].reshape(1, -1), np.zeros(1, np.int64), t.dtype)
        acc = IntType.for_range(int(lo[0]), int(hi[0]), t.dtype.frac)
        out = self.add("conv2d", [v.tensor], shape, acc, (node.name or node.output[0]) + "_sum",
                       weight=ones, bias=np.zeros(c, np.int64), stride=st, padding=0, groups=c)
        scale = np.array([s / (kh * kw) for s in v.scale], dtype=object)
        return Val(out, scale, "nchw", None)

    def op_AveragePool(self, node):
        v = self.materialize(self.val(node.input[0]), "AveragePool")
        (kh, kw), st = self.pool_geometry(node, v)
        self.vals[node.output[0]] = self.sum_pool(node, v, kh, kw, st)

    def op_GlobalAveragePool(self, node):
        """The per-channel sum of the whole image: a flatten and a dense layer of ones (no
        sliding window: the hardware collects the image once and adds), the divisor folded
        into the scale; the output is a vector standing for ONNX's (N, C, 1, 1)."""
        v = self.materialize(self.val(node.input[0]), "GlobalAveragePool")
        if v.layout != "nchw":
            self.err("GlobalAveragePool needs an NCHW image")
        t = self.g.tensors[v.tensor]
        h, w, c = t.shape
        flat = self.add("flatten", [v.tensor], (h * w * c,), t.dtype,
                        (node.name or node.output[0]) + "_flat")
        ones = np.tile(np.eye(c, dtype=np.int64), (1, h * w))          # (C, H*W*C), HWC order
        pend = {"op": "dense", "input": flat, "weight": ones, "attrs": {}, "in_type": t.dtype,
                "out_shape": (c,), "out_ch": c, "name": (node.name or node.output[0]) + "_sum",
                "matrix": ones, "bias_shape": (c,)}
        sums = self.emit_mac(pend, np.ones(c, np.int64), np.zeros(c, np.int64), t.dtype.frac)
        scale = np.array([sc / (h * w) for sc in v.scale], dtype=object)
        self.vals[node.output[0]] = Val(sums, scale, "nc11", None)

    def op_Trunc(self, node):
        x = node.input[0]
        v = self.materialize(self.val(x), "Trunc")
        scale = Fraction(float(np.float32(self.const(node.input[1], "scale")).ravel()[0]))
        zp = np.asarray(self.const(node.input[2], "zero point"))
        if np.any(zp != 0):
            self.err("non-zero zero point")
        in_bits = int(np.asarray(self.const(node.input[3], "bit width")).ravel()[0])
        mode = str(self.attr(node, "rounding_mode", "FLOOR")).upper()
        if mode not in ROUNDING:
            self.err(f"rounding mode {mode!r} unknown")
        if len(v.scale) != 1:
            self.err("Trunc needs a per-tensor scale")
        r = v.scale[0] / scale           # code at Trunc's input scale = code * r
        if r.denominator != 1:
            self.err(f"the input's scale is not an integer multiple of the Trunc scale "
                     f"(ratio {float(r)})")
        if len(node.input) >= 6:         # Trunc v2: output scale and bit width
            out_scale = Fraction(float(np.float32(self.const(node.input[4], "output scale")
                                                  ).ravel()[0]))
            out_bits = int(np.asarray(self.const(node.input[5], "bit width")).ravel()[0])
            ts = out_scale / scale
            tsr = 2.0 ** round(math.log2(float(ts)))     # qonnx: 2**round(log2(...))
            shift = int(round(math.log2(tsr)))
            signed = int(self.attr(node, "signed", 1))
            narrow = int(self.attr(node, "narrow", 0))
            lo, hi = _int_range(signed, narrow, out_bits)
            s_out = out_scale
        else:                            # Trunc v1: drop in_bits - out_bits bits, no clamp
            out_bits = int(np.asarray(self.const(node.input[4], "bit width")).ravel()[0])
            shift = in_bits - out_bits
            s_out = scale
            t = self.g.tensors[v.tensor].dtype
            lo, hi = int(round_shift(t.min * int(r), max(shift, 0), ROUNDING[mode])), \
                int(round_shift(t.max * int(r), max(shift, 0), ROUNDING[mode]))
        mult, sh = int(r), shift
        if sh < 0:
            mult, sh = mult << -sh, 0
        c = self.nchannels(v)
        t = self.g.tensors[v.tensor]
        a = round_shift(np.array([t.dtype.min * mult, t.dtype.max * mult]), sh, ROUNDING[mode])
        rlo, rhi = max(int(a[0]), lo), min(int(a[1]), hi)
        ot = IntType.for_range(min(rlo, rhi), max(rlo, rhi), _scale_frac(s_out))
        out = self.add("requant", [v.tensor], t.shape, ot, node.name or node.output[0],
                       multiplier=np.full(c, mult, np.int64), shift=np.full(c, sh, np.int64),
                       lo=lo, hi=hi, rounding=ROUNDING[mode])
        self.vals[node.output[0]] = Val(out, np.array([s_out], dtype=object), v.layout, v.perm)

    # -- layout -------------------------------------------------------------------------------
    def flatten(self, node, v):
        v = self.materialize(v, node.op_type)
        t = self.g.tensors[v.tensor]
        if len(t.shape) == 1:
            self.vals[node.output[0]] = Val(v.tensor, v.scale, "vec", v.perm)
            return
        h, w, c = t.shape
        out = self.add("flatten", [v.tensor], (h * w * c,), t.dtype,
                       node.name or node.output[0])
        if v.layout == "nchw":           # ONNX index (c, y, x) -> IR index (y, x, c)
            cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
            perm = ((yy * w + xx) * c + cc).reshape(-1)
        else:
            perm = None
        if len(v.scale) != 1:
            self.err("flattening a tensor with per-channel scales is not supported")
        self.vals[node.output[0]] = Val(out, v.scale, "vec", perm)

    def op_Flatten(self, node):
        if int(self.attr(node, "axis", 1)) != 1:
            self.err("only Flatten with axis=1 is supported")
        self.flatten(node, self.val(node.input[0]))

    def op_Reshape(self, node):
        v = self.val(node.input[0])
        shape = self.shape(node.output[0])
        if len(shape) == 2 and shape[0] == 1:
            return self.flatten(node, v)
        self.err(f"Reshape to {shape}: only flattening to (N, features) is supported")

    def op_Transpose(self, node):
        x = node.input[0]
        perm = list(self.attr(node, "perm", [])) or None
        q = self.vals.get(x)
        if isinstance(q, QConst):          # a transposed quantized weight
            sc = np.broadcast_to(q.scale, q.codes.shape)
            self.vals[node.output[0]] = QConst(q.codes.transpose(perm), sc.transpose(perm))
            return
        if x in self.consts:
            self.consts[node.output[0]] = np.transpose(self.consts[x], perm)
            return
        v = self.val(x)
        perm = perm or []
        if v.layout == "nchw" and perm == [0, 2, 3, 1]:
            lay = "nhwc"
        elif v.layout == "nhwc" and perm == [0, 3, 1, 2]:
            lay = "nchw"
        elif v.layout == "vec" and perm == [0, 1]:
            lay = "vec"
        else:
            self.err(f"Transpose perm {perm} on a {v.layout} tensor: only NCHW <-> NHWC is "
                     f"supported")
        self.vals[node.output[0]] = Val(v.tensor, v.scale, lay, v.perm, v.relu, v.pending,
                                        v.bias, v.origin)


def _const_real(imp, name):
    """The real values (Fractions) of a constant or quantized constant."""
    q = imp.vals.get(name)
    if isinstance(q, QConst):
        return q.real()
    return _frac_array(np.asarray(imp.consts[name], dtype=np.float32))


def _same_perm(a, b):
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(a, b)


def _np_round(mode):
    from ddnhw.golden import QONNX_ROUNDING
    return QONNX_ROUNDING[mode]


def layer_table(graph: Graph) -> str:
    """One line per IR node: name, op, output shape and type (what ``ddnhw import`` prints)."""
    rows = [f"{'node':<28} {'op':<10} {'output':<16} {'type':<8} details"]
    for n in graph.nodes:
        t = graph.tensors[n.outputs[0]]
        a = n.attrs
        if n.op in ("dense", "conv2d"):
            w = a["weight"]
            det = f"weights {tuple(w.shape)} in [{int(w.min())}, {int(w.max())}]"
            if n.op == "conv2d":
                det += f", stride {a['stride']}, pad {a['padding']}, groups {a.get('groups', 1)}"
        elif n.op == "requant":
            m, s = a["multiplier"], a["shift"]
            det = (f"x{int(m.min())}" + (f"..{int(m.max())}" if m.min() != m.max() else "")
                   + f" >> {int(s.min())}" + (f"..{int(s.max())}" if s.min() != s.max() else "")
                   + f", clip [{a['lo']}, {a['hi']}], {a.get('rounding', 'half_up')}")
        elif n.op == "add":
            det = f"shifts {a['shift0']}, {a['shift1']}"
        elif n.op in ("maxpool2d", "avgpool2d"):
            det = f"kernel {a['kernel']}, stride {a['stride']}"
        else:
            det = ""
        rows.append(f"{n.name:<28} {n.op:<10} {str(t.shape):<16} {str(t.dtype):<8} {det}")
    return "\n".join(rows)
