#!/usr/bin/env python3
"""What wins back the 2-bit digits MLP (64-16-10, 2-bit weights and activations, 4-bit pixels):
one QAT setting changed at a time from the same float model (120 epochs, seed 0).

    python bench/quant_2bit_ablation.py [names...]     # default: all; prints one line per run

Test accuracy (fake-quantized forward == golden model). ``fr_*``: full-range weight codes
{-2, -1, 0, 1} (``WeightSpec(full_range=True)``); the others symmetric {-1, 0, 1}.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from ddnhw.datasets import load_digits_split  # noqa: E402
from ddnhw.quant.qat import SchemeConfig, pretrain_float, train_scheme  # noqa: E402
from ddnhw.quant.schemes import ActSpec, WeightSpec as U  # noqa: E402

RUNS = {
    "base": dict(qat_epochs=80, qat_lr=1e-2, distill=0.5),
    "long_lowlr_kd9": dict(qat_epochs=300, qat_lr=3e-3, distill=0.9),
    "long_kd5": dict(qat_epochs=300, qat_lr=1e-2, distill=0.5),
    "long500_kd5": dict(qat_epochs=500, qat_lr=1e-2, distill=0.5),
    "kd1_T2": dict(qat_epochs=200, qat_lr=5e-3, distill=1.0, temperature=2.0),
    "act_mse": dict(qat_epochs=200, qat_lr=5e-3, distill=0.7,
                    acts=ActSpec(bits=2, calib="mse")),
    "fr_base": dict(qat_epochs=80, qat_lr=1e-2, distill=0.5, w=U(bits=2, full_range=True)),
    "fr_long_kd5": dict(qat_epochs=300, qat_lr=1e-2, distill=0.5,
                        w=U(bits=2, full_range=True)),
    "fr_long_kd9": dict(qat_epochs=300, qat_lr=3e-3, distill=0.9,
                        w=U(bits=2, full_range=True)),
    "fr_minmax": dict(qat_epochs=300, qat_lr=1e-2, distill=0.5,
                      w=U(bits=2, full_range=True, calib="minmax")),
}


def main(names):
    torch.set_num_threads(1)
    xtr, ytr, xte, yte = load_digits_split()
    fm = pretrain_float(xtr, ytr, (64, 16, 10), epochs=120)
    for name in names or RUNS:
        kw = dict(RUNS[name])
        w, acts = kw.pop("w", U(bits=2)), kw.pop("acts", ActSpec(bits=2))
        t = time.perf_counter()
        _, met = train_scheme(fm, xtr, ytr, xte, yte, SchemeConfig(weights=w, acts=acts, **kw))
        print(f"{name}: PTQ {met['ptq_accuracy']:.4f}, QAT {met['quant_accuracy']:.4f}, float "
              f"{met['float_accuracy']:.4f} ({time.perf_counter() - t:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
