"""Hand-written QONNX graphs (onnx.helper), for the operator semantics Brevitas does not
easily produce: every rounding mode, narrow range, signed/unsigned, any bit width."""
from __future__ import annotations

import numpy as np

QDOMAIN = "qonnx.custom_op.general"


def quant(helper, name, x, scale, bits, signed, narrow, mode, inits, zp=0.0):
    from onnx import numpy_helper
    for k, v in (("s", scale), ("z", zp), ("b", float(bits))):
        inits.append(numpy_helper.from_array(np.asarray(v, dtype=np.float32), f"{name}_{k}"))
    return helper.make_node("Quant", [x, f"{name}_s", f"{name}_z", f"{name}_b"], [name],
                            domain=QDOMAIN, name=name, signed=int(signed), narrow=int(narrow),
                            rounding_mode=mode)


def mlp_model(n=16, f=12, h=8, o=5, in_bits=6, w_bits=4, a_bits=4, mode="ROUND",
              narrow=False, act_signed=False, relu=True, seed=0, opset=13, zp=0.0,
              in_scale=2.0 ** -4, w_scale=2.0 ** -3, a_scale=2.0 ** -2, extra=None):
    """x -> Quant -> MatMul(Quant(W1)) -> Add(b1) [-> Relu] -> Quant -> MatMul(Quant(W2))."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    nodes.append(quant(helper, "qx", "x", in_scale, in_bits, True, narrow, mode, inits))
    w1 = rng.standard_normal((f, h)).astype(np.float32)
    w2 = rng.standard_normal((h, o)).astype(np.float32)
    inits += [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
              numpy_helper.from_array((rng.integers(-40, 40, h) * in_scale * w_scale / 2
                                       ).astype(np.float32), "b1")]
    nodes.append(quant(helper, "qw1", "w1", w_scale, w_bits, True, True, "ROUND", inits))
    nodes.append(quant(helper, "qw2", "w2", w_scale, w_bits, True, True, "ROUND", inits))
    nodes.append(helper.make_node("MatMul", ["qx", "qw1"], ["mm1"], name="mm1"))
    nodes.append(helper.make_node("Add", ["mm1", "b1"], ["acc1"], name="bias1"))
    last = "acc1"
    if relu:
        nodes.append(helper.make_node("Relu", ["acc1"], ["r1"], name="relu1"))
        last = "r1"
    nodes.append(quant(helper, "qa", last, a_scale, a_bits, act_signed, narrow, mode, inits,
                       zp=zp))
    nodes.append(helper.make_node("MatMul", ["qa", "qw2"], ["y"], name="mm2"))
    if extra is not None:
        nodes, inits = extra(nodes, inits)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                          [n, f])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, o])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                    helper.make_opsetid(QDOMAIN, 1)])
    model.ir_version = 8
    return model
