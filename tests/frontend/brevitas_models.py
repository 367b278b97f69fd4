"""Small Brevitas models for the QONNX import tests and the bench, exported with Brevitas'
own ``export_qonnx``. Power-of-two (fixed-point) quantizers, so that qonnx's float32
executor is itself exact and can be compared bit for bit."""
from __future__ import annotations

import numpy as np


def _q():
    import brevitas.nn as qnn
    from brevitas import quant as bq
    return qnn, bq


def mlp(sizes=(64, 32, 10), w_bits=8, a_bits=8, in_bits=8, per_channel=False,
        bias="int32", out_quant=False, narrow_act=False):
    """QuantIdentity -> (QuantLinear -> QuantReLU)* -> QuantLinear [-> QuantIdentity]."""
    import torch
    qnn, bq = _q()
    layers = [qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=in_bits,
                                return_quant_tensor=True)]
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = k == len(sizes) - 2
        layers.append(qnn.QuantLinear(
            i, o, bias=True, weight_quant=bq.Int8WeightPerTensorFixedPoint,
            weight_bit_width=w_bits, weight_scaling_per_output_channel=per_channel,
            bias_quant=bq.Int32Bias if bias == "int32" else None,
            return_quant_tensor=not last or out_quant))
        if not last:
            layers.append(qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFixedPoint,
                                        bit_width=a_bits, return_quant_tensor=True))
    if out_quant:
        layers.append(qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=8,
                                        return_quant_tensor=False))
    return torch.nn.Sequential(*layers)


def cnn(channels=2, size=10):
    """conv (per-channel 4-bit) -> ReLU -> maxpool -> depthwise conv -> ReLU -> TruncAvgPool
    -> flatten -> linear."""
    import torch
    qnn, bq = _q()
    return torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=8,
                          return_quant_tensor=True),
        qnn.QuantConv2d(channels, 4, 3, padding=1, weight_quant=bq.Int8WeightPerTensorFixedPoint,
                        weight_scaling_per_output_channel=True, weight_bit_width=4,
                        bias_quant=bq.Int32Bias, return_quant_tensor=True),
        qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFixedPoint, bit_width=4,
                      return_quant_tensor=True),
        torch.nn.MaxPool2d(2),
        qnn.QuantConv2d(4, 4, 3, groups=4, weight_quant=bq.Int8WeightPerTensorFixedPoint,
                        bias=False, return_quant_tensor=True),
        qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFixedPoint, bit_width=4,
                      return_quant_tensor=True),
        qnn.TruncAvgPool2d(2, bit_width=4, return_quant_tensor=True),
        torch.nn.Flatten(),
        qnn.QuantLinear(4, 3, bias=True, weight_quant=bq.Int8WeightPerTensorFixedPoint,
                        bias_quant=bq.Int32Bias))


class Residual:
    """A residual block: x -> q -> q(shared) -> conv -> ReLU-q -> conv -> q(shared) +
    q(shared)(x) -> ReLU-q -> global average pool -> q -> flatten -> linear."""

    @staticmethod
    def build(channels=3, size=6):
        import torch
        qnn, bq = _q()

        class Block(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inp = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint,
                                             bit_width=8, return_quant_tensor=True)
                self.c1 = qnn.QuantConv2d(channels, channels, 3, padding=1, bias_quant=bq.Int32Bias,
                                          weight_quant=bq.Int8WeightPerTensorFixedPoint,
                                          weight_bit_width=4, return_quant_tensor=True)
                self.r1 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFixedPoint, bit_width=4,
                                        return_quant_tensor=True)
                self.c2 = qnn.QuantConv2d(channels, channels, 3, padding=1, bias_quant=bq.Int32Bias,
                                          weight_quant=bq.Int8WeightPerTensorFixedPoint,
                                          weight_bit_width=4, return_quant_tensor=True)
                self.shared = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint,
                                                bit_width=6, return_quant_tensor=True)
                self.r2 = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFixedPoint, bit_width=4,
                                        return_quant_tensor=True)
                self.pool = torch.nn.AdaptiveAvgPool2d(1)
                self.pq = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint,
                                            bit_width=8, return_quant_tensor=True)
                self.fc = qnn.QuantLinear(channels, 4, bias=True, bias_quant=bq.Int32Bias,
                                          weight_quant=bq.Int8WeightPerTensorFixedPoint)

            def forward(self, x):
                x = self.shared(self.inp(x))      # the skip re-quantized by the same quantizer
                y = self.c2(self.r1(self.c1(x)))
                y = self.shared(y) + self.shared(x)
                y = self.pq(self.pool(self.r2(y)))
                return self.fc(torch.flatten(y, 1))

        return Block()


def bipolar(sizes=(16, 12, 4)):
    """Bipolar input, binary weights, bipolar activations (BNN style), a final linear."""
    import torch
    qnn, bq = _q()
    act = bq.SignedBinaryActPerTensorConst.let(scaling_const=1.0)
    wq = bq.SignedBinaryWeightPerTensorConst.let(scaling_const=0.25)
    layers = [qnn.QuantIdentity(act_quant=act, return_quant_tensor=True)]
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = k == len(sizes) - 2
        layers.append(qnn.QuantLinear(i, o, bias=not last, bias_quant=None,
                                      weight_quant=wq,
                                      return_quant_tensor=not last))
        if not last:
            layers.append(qnn.QuantIdentity(act_quant=act, return_quant_tensor=True))
    return torch.nn.Sequential(*layers)


#: name -> (builder, input shape without batch)
MODELS = {
    "mlp_w8a8": (lambda: mlp(), (64,)),
    "mlp_w4a4_perchannel_floatbias": (lambda: mlp(w_bits=4, a_bits=4, per_channel=True,
                                                  bias="float", out_quant=True), (64,)),
    "mlp_w2a2": (lambda: mlp(sizes=(32, 16, 8), w_bits=2, a_bits=2, in_bits=4), (32,)),
    "cnn": (lambda: cnn(), (2, 10, 10)),
    "residual_gap": (lambda: Residual.build(), (3, 6, 6)),
    "bipolar": (lambda: bipolar(), (16,)),
}


def calibrate(model, shape, seed=0):
    """Randomise the float parameters a little (so biases are not tiny), run a few batches so
    that statistics-based scales settle, then eval()."""
    import torch
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.5, 0.5)
    model.train()
    for _ in range(3):
        model(torch.randn((32,) + tuple(shape)))
    return model.eval()


def export(name, path, batch=64, seed=0, dynamo=False):
    """Build, calibrate and export model ``name`` to ``path`` (QONNX, input batch ``batch``);
    returns the torch model."""
    import torch
    from brevitas.export import export_qonnx
    build, shape = MODELS[name]
    torch.manual_seed(seed)
    model = calibrate(build(), shape, seed)
    with torch.no_grad():
        export_qonnx(model, torch.randn((batch,) + tuple(shape)), str(path), dynamo=dynamo)
    return model


def test_inputs(shape, n, scale, lo, hi, seed=0):
    """``n`` float inputs: Gaussian, saturating extremes, and exact rounding ties of the input
    quantizer (``(k + 1/2) * scale``)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + tuple(shape)).astype(np.float32) * (hi * scale / 2)
    k = rng.integers(lo, hi, size=x.shape)
    tie = rng.random(x.shape) < 0.3
    x[tie] = ((k[tie] + 0.5) * scale).astype(np.float32)
    sat = rng.random(x.shape) < 0.05
    x[sat] = np.float32(10 * hi * scale) * rng.choice([-1, 1], size=int(sat.sum()))
    return x
