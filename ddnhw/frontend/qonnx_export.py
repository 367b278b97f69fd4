"""Export of an IR graph as a QONNX model: ``save(graph, path)`` / ``to_onnx(graph)``.

Every IR tensor ``t`` becomes an ONNX tensor holding its real value ``code * 2**-frac(t)``
(power-of-two scales, so qonnx's float32 executor computes every value exactly while the
integers stay below 2**24; a wider tensor is an error naming it). Weights are ``Quant`` nodes
on their integer codes, each ``requant`` a ``Quant`` with the matching rounding mode (ddnhw's
default half-up, ties towards +inf, is QONNX ``FLOOR`` after adding half a step), clipping by
the quantizer's range or an extra ``Clip``; images are NCHW as ONNX expects (the IR's NHWC
flatten order is kept by a ``Transpose`` before ``Flatten``). The model's input is quantized by
the imported model's own input quantizer (``meta["input_quant"]``) or, for a ddnhw-trained
model, by ``Quant(x, 2**-frac)`` with ``HALF_UP`` (ties away from zero: ddnhw rounds negative
ties up, so only inputs exactly on a negative half step differ); the output is multiplied by
the imported model's output scale. ``qonnx.core.onnx_exec.execute_onnx`` on the file gives the
golden model's outputs exactly (``tests/frontend/test_qonnx_export.py``).

Not exported: the recurrent ops (``rnn``, ``gru``, ``lstm``; QONNX has no integer form of
their table lookups).
"""
from __future__ import annotations

import os

import numpy as np

from ddnhw import DdnhwError
from ddnhw.atomic import atomic_open

QDOMAIN = "qonnx.custom_op.general"
OPSET = 13
#: ddnhw rounding mode -> QONNX rounding mode (half_up is FLOOR after adding half a step)
QONNX_MODE = {"half_even": "ROUND", "floor": "FLOOR", "ceil": "CEIL", "zero": "DOWN",
              "away": "UP", "half_away": "HALF_UP", "half_zero": "HALF_DOWN"}
#: float32 holds every integer below this exactly
EXACT_LIMIT = 1 << 24


class QonnxExportError(DdnhwError, ValueError):
    """A graph that has no exact QONNX form; the message names the node and the reason."""


def save(graph, path, batch=1) -> None:
    """Write ``graph`` as a QONNX ``.onnx`` file (atomically); ``batch``: the input's batch
    size (qonnx's executor takes fixed shapes)."""
    model = to_onnx(graph, batch)
    with atomic_open(os.fspath(path), "wb") as f:
        f.write(model.SerializeToString())


def to_onnx(graph, batch=1):
    """The ``onnx.ModelProto`` of ``graph`` (see the module doc)."""
    return _Exporter(graph, batch).run()


class _Exporter:
    def __init__(self, graph, batch=1):
        from onnx import helper, numpy_helper
        self.batch = int(batch)
        self.h, self.nh = helper, numpy_helper
        self.g = graph
        self.nodes, self.inits = [], []
        self.k = 0

    # -- helpers ------------------------------------------------------------------------------
    def err(self, node, msg):
        raise QonnxExportError(f"node {node.name!r} ({node.op}): {msg}")

    def name(self, base):
        self.k += 1
        return f"{base}_{self.k}"

    def const(self, value, base):
        n = self.name(base)
        self.inits.append(self.nh.from_array(np.asarray(value, dtype=np.float32), n))
        return n

    def node(self, op, inputs, base, domain="", **attrs):
        out = self.name(base)
        self.nodes.append(self.h.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def quant(self, x, scale, bits, signed, narrow, mode, base):
        return self.node("Quant", [x, self.const(scale, base + "_scale"),
                                   self.const(0.0, base + "_zeropt"),
                                   self.const(float(bits), base + "_bitwidth")],
                         base, domain=QDOMAIN, signed=int(signed), narrow=int(narrow),
                         rounding_mode=mode)

    def scale(self, t):
        return 2.0 ** -self.g.tensors[t].dtype.frac

    def exact(self, node, what, lo, hi):
        if max(abs(int(lo)), abs(int(hi))) >= EXACT_LIMIT:
            self.err(node, f"{what} reaches [{int(lo)}, {int(hi)}]: float32 QONNX holds "
                           f"integers exactly only below 2**24")

    def image(self, t):
        return len(self.g.tensors[t].shape) == 3

    # -- run ----------------------------------------------------------------------------------
    def run(self):
        from onnx import TensorProto
        g = self.g
        xt = g.input
        q = g.meta.get("input_quant")
        img = len(xt.shape) == 3
        b = self.batch
        onnx_in = ((b, xt.shape[2], xt.shape[0], xt.shape[1]) if img else (b,) + tuple(xt.shape))
        x = "global_in"
        if q is not None:
            if q["rounding"] == "BIPOLAR":
                cur = self.node("BipolarQuant", [x, self.const(q["scale"], "in_scale")], "in_q",
                                domain=QDOMAIN)
            else:
                cur = self.quant(x, q["scale"], q["bits"], q["signed"], q["narrow"],
                                 q["rounding"], "in_q")
            s = float(np.float32(q["scale"]))
            if s != self.scale(xt.name):      # to the IR's scale: exact integers again
                cur = self.node("Div", [cur, self.const(s, "in_s")], "in_codes")
                cur = self.node("Round", [cur], "in_round")
                cur = self.node("Mul", [cur, self.const(self.scale(xt.name), "in_f")], "in_real")
        else:
            t = xt.dtype
            cur = self.quant(x, self.scale(xt.name), t.bits, t.signed, False, "HALF_UP", "in_q")
        env = {xt.name: cur}
        for n in g.nodes:
            fn = getattr(self, "op_" + n.op, None)
            if fn is None:
                self.err(n, "no QONNX form for this op (recurrent ops are not exported)")
            env[n.outputs[0]] = fn(n, *(env[t] for t in n.inputs))
        out = g.outputs[0]
        cur = env[out]
        ot = g.tensors[out]
        if "output_scale" in g.meta:
            cur = self.node("Div", [cur, self.const(self.scale(out), "out_s")], "out_codes")
            sc = np.asarray(g.meta["output_scale"], dtype=np.float32)
            if self.image(out):
                sc = sc.reshape(-1, 1, 1)
            cur = self.node("Mul", [cur, self.const(sc, "out_scale")], "out_real")
        if self.image(out) and g.meta.get("output_layout") != "nchw":
            cur = self.node("Transpose", [cur], "out_nhwc", perm=[0, 2, 3, 1])
        if g.meta.get("output_layout") == "nc11":
            shp = self.name("out_shape")
            self.inits.append(self.nh.from_array(np.asarray([b, -1, 1, 1], np.int64), shp))
            cur = self.node("Reshape", [cur, shp], "out_nc11")
        if "output_perm" in g.meta:
            idx = self.name("out_perm")
            self.inits.append(self.nh.from_array(np.asarray(g.meta["output_perm"], np.int64),
                                                 idx))
            cur = self.node("Gather", [cur, idx], "out_gather", axis=1)
        self.nodes.append(self.h.make_node("Identity", [cur], ["global_out"], name="out"))
        oshape = ((b, ot.shape[2], ot.shape[0], ot.shape[1])
                  if self.image(out) and g.meta.get("output_layout") == "nchw"
                  else (b, ot.shape[0], 1, 1) if g.meta.get("output_layout") == "nc11"
                  else (b,) + tuple(ot.shape))
        graph = self.h.make_graph(
            self.nodes, "ddnhw",
            [self.h.make_tensor_value_info(x, TensorProto.FLOAT, list(onnx_in))],
            [self.h.make_tensor_value_info("global_out", TensorProto.FLOAT, list(oshape))],
            initializer=self.inits)
        model = self.h.make_model(graph, producer_name="ddnhw",
                                  opset_imports=[self.h.make_opsetid("", OPSET),
                                                 self.h.make_opsetid(QDOMAIN, 1)])
        model.ir_version = 8
        return model

    # -- ops ----------------------------------------------------------------------------------
    def weights(self, n, w, wf):
        """A Quant of integer weights ``w`` with scale ``2**-wf``."""
        w = np.asarray(w, dtype=np.int64)
        self.exact(n, "a weight", w.min(), w.max())
        bits = max(2, int(max(abs(int(w.min())), abs(int(w.max())))).bit_length() + 1)
        return self.quant(self.const(w * 2.0 ** -wf, n.name + "_w"), 2.0 ** -wf, bits, True,
                          False, "ROUND", n.name + "_wq")

    def mac_scales(self, n):
        fx = self.g.tensors[n.inputs[0]].dtype.frac
        fa = self.g.tensors[n.outputs[0]].dtype.frac
        t = self.g.tensors[n.outputs[0]].dtype
        self.exact(n, "the accumulator", t.min, t.max)
        return fa - fx, 2.0 ** -fa

    def op_dense(self, n, x):
        wf, sa = self.mac_scales(n)
        w = self.weights(n, n.attrs["weight"].T, wf)          # (in, out)
        y = self.node("MatMul", [x, w], n.name)
        return self.node("Add", [y, self.const(n.attrs["bias"] * sa, n.name + "_b")],
                         n.name + "_bias")

    def op_conv2d(self, n, x):
        wf, sa = self.mac_scales(n)
        a = n.attrs
        w = self.weights(n, a["weight"].transpose(0, 3, 1, 2), wf)   # (O, Cg, KH, KW)
        p = int(a["padding"])
        kh, kw = a["weight"].shape[1:3]
        return self.node("Conv", [x, w, self.const(a["bias"] * sa, n.name + "_b")], n.name,
                         kernel_shape=[int(kh), int(kw)], strides=[int(a["stride"])] * 2,
                         pads=[p] * 4, group=int(a.get("groups", 1)), dilations=[1, 1])

    def op_requant(self, n, x):
        a = n.attrs
        m, s = np.asarray(a["multiplier"]), np.asarray(a["shift"])
        lo, hi = int(a["lo"]), int(a["hi"])
        mode = a.get("rounding", "half_up")
        it, ot = self.g.tensors[n.inputs[0]].dtype, self.g.tensors[n.outputs[0]].dtype
        sx = 2.0 ** -it.frac
        prod = np.concatenate([m * it.min, m * it.max])
        self.exact(n, "the product", prod.min(), prod.max())
        img = self.image(n.inputs[0])
        shape = (-1, 1, 1) if img else (-1,)
        pow2 = np.all(m > 0) and np.all(m & (m - 1) == 0)
        if pow2:
            qscale = sx * 2.0 ** s / m
        else:
            x = self.node("Mul", [x, self.const(m.reshape(shape), n.name + "_m")], n.name + "_mul")
            qscale = sx * 2.0 ** s
        qscale = np.asarray(qscale, dtype=np.float64)
        if mode == "half_up":      # floor(v + 1/2): add half a quantizer step, then FLOOR
            x = self.node("Add", [x, self.const((qscale / 2).reshape(shape), n.name + "_half")],
                          n.name + "_addhalf")
            qmode = "FLOOR"
        else:
            qmode = QONNX_MODE[mode]
        if np.all(qscale == qscale[0]):
            qs = float(qscale[0])
        else:
            qs = qscale.reshape(shape)
        spec = _range_spec(lo, hi)
        if spec is not None:
            bits, signed, narrow = spec
            y = self.quant(x, qs, bits, signed, narrow, qmode, n.name)
        else:           # a clip range no quantizer has: a wide quantizer, then Clip
            wide = max(int(abs(lo)), int(abs(hi))).bit_length() + 2
            y = self.quant(x, qs, min(wide + 24, 32), True, False, qmode, n.name)
            y = self.node("Clip", [y, self.const(lo * qscale.min(), n.name + "_lo"),
                                   self.const(hi * qscale.min(), n.name + "_hi")],
                          n.name + "_clip") if np.all(qscale == qscale[0]) else \
                self.err(n, "a per-channel scale with a clip range no quantizer has")
        so = 2.0 ** -ot.frac
        if not np.all(qscale == so):
            y = self.node("Mul", [y, self.const((so / qscale).reshape(shape)
                                                if qscale.size > 1 else so / float(qscale[0]),
                                                n.name + "_rescale")], n.name + "_out")
        return y

    def op_maxpool2d(self, n, x):
        (kh, kw) = _kernel(n)
        st = int(n.attrs["stride"])
        return self.node("MaxPool", [x], n.name, kernel_shape=[kh, kw], strides=[st, st])

    def op_avgpool2d(self, n, x):
        (kh, kw) = _kernel(n)
        st = int(n.attrs["stride"])
        y = self.node("AveragePool", [x], n.name, kernel_shape=[kh, kw], strides=[st, st])
        s = self.scale(n.outputs[0])
        y = self.node("Add", [y, self.const(s / 2, n.name + "_half")], n.name + "_addhalf")
        t = self.g.tensors[n.outputs[0]].dtype
        return self.quant(y, s, t.bits, t.signed, False, "FLOOR", n.name + "_round")

    def op_flatten(self, n, x):
        if self.image(n.inputs[0]):
            x = self.node("Transpose", [x], n.name + "_nhwc", perm=[0, 2, 3, 1])
        return self.node("Flatten", [x], n.name, axis=1)

    def op_add(self, n, x0, x1):
        return self.node("Add", [x0, x1], n.name)


def _kernel(n):
    k = n.attrs["kernel"]
    return (int(k[0]), int(k[1])) if isinstance(k, (list, tuple)) else (int(k), int(k))


def _range_spec(lo, hi):
    """``(bits, signed, narrow)`` of the QONNX quantizer whose range is ``[lo, hi]``, or None."""
    for bits in range(1, 33):
        for signed in (0, 1):
            for narrow in (0, 1):
                if signed and bits == 1:
                    continue
                qlo = (-(1 << (bits - 1)) + narrow) if signed else 0
                qhi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - narrow
                if (qlo, qhi) == (lo, hi):
                    return bits, signed, narrow
    return None
