"""The digits CNN example end to end: QAT training, IR, RTL, Amaranth-simulator and Verilator
cosimulation checks vs golden.

``conv 3x3 (8 channels, padding 1) → ReLU → maxpool 2 → flatten → dense 10`` on the 8x8 digits,
4-bit inputs, weights and activations. Images stream into the hardware one pixel per beat.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ddnhw import golden
from ddnhw.datasets import load_digits_split
from ddnhw.hw.sim import run_beats
from ddnhw.lower import build_network, generate

__all__ = ["DEMO_CNN_LAYERS", "train_digits_cnn", "digits_images", "sim_check", "cosim_check",
           "random_images"]

DEMO_CNN_LAYERS = [{"op": "conv", "out": 8, "kernel": 3, "padding": 1},
                   {"op": "maxpool", "kernel": 2}, {"op": "flatten"},
                   {"op": "linear", "out": 10}]


def train_digits_cnn(channels=8, bits=4, float_epochs=40, qat_epochs=40, seed=0, log=None):
    """``(graph, metrics)``: the exported IR and float / fake-quant / golden test accuracy."""
    import torch
    from ddnhw.quant.cnn import CNNConfig, export_cnn, train_cnn

    torch.set_num_threads(1)
    xtr, ytr, xte, yte = load_digits_split()
    layers = [dict(s) for s in DEMO_CNN_LAYERS]
    layers[0]["out"] = int(channels)
    cfg = CNNConfig(layers=layers, in_bits=bits, w_bits=bits, a_bits=bits,
                    float_epochs=float_epochs, qat_epochs=qat_epochs, seed=seed)
    r = train_cnn(xtr, ytr, xte, yte, cfg, log=log)
    graph = export_cnn(r.model, meta={"name": "digits_cnn", "channels": int(channels),
                                      "bits": int(bits)})
    x, y = digits_images(graph)
    gold = float(np.mean(golden.predict(graph, x) == y))
    return graph, {"float_accuracy": r.float_accuracy, "quant_accuracy": r.quant_accuracy,
                   "golden_accuracy": gold, "train_seconds": r.seconds,
                   "channels": int(channels), "bits": int(bits)}


def digits_images(graph):
    """The digits test split as integer NHWC images for ``graph`` and the labels."""
    _, _, xte, yte = load_digits_split()
    return golden.quantize_input(graph, xte.reshape(-1, 8, 8, 1)), yte


def sim_check(graph, x, *, idle=0.2, stall=0.2, seed=0, **options):
    """Run images ``x`` (N, H, W, C) through the lowered network in the Amaranth simulator
    under random idle/stall; returns ``dict(outputs, mismatches, cycles, seconds)``."""
    t = time.perf_counter()
    net = build_network(graph, **options)
    out, log = run_beats(net, x.reshape(-1, x.shape[-1]), len(x), idle=idle, stall=stall,
                         seed=seed)
    want = golden.run(graph, x)
    bad = int(np.sum(np.any(out != want, axis=1))) + len(log["protocol"])
    return {"outputs": out, "mismatches": bad, "cycles": int(log["out"][-1] + 1),
            "seconds": time.perf_counter() - t, "ii_cycles": int(net.ii)}


def generate_cnn(graph, outdir, **options):
    """Verilog + manifest (pixels in, logits out)."""
    return generate(graph, outdir, **options)


def random_images(graph, n, seed=0):
    """``n`` random integer images in the input range of ``graph``; the first ones are all-min,
    all-max, a min/max checkerboard and its inverse."""
    t = graph.input.dtype
    lo, hi = (-(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1) if t.signed else (0, (1 << t.bits) - 1)
    shape = tuple(graph.input.shape)
    x = np.random.default_rng(seed).integers(lo, hi + 1, (max(n, 4),) + shape)
    x[0], x[1] = lo, hi
    checker = (np.add.outer(np.arange(shape[0]), np.arange(shape[1])) % 2).astype(bool)
    x[2][checker], x[2][~checker] = hi, lo
    x[3][checker], x[3][~checker] = lo, hi
    return x[:n]


def cosim_check(graph, x, rtl_dir, *, simulator="verilator", idle=0.3, stall=0.3, seed=0,
                mode="bulk", build_dir=None):
    """Cosimulate images ``x`` (N, H, W, C) through the generated RTL in ``rtl_dir``
    (``ddnhw_top.v`` + ``manifest.json``, one pixel per beat) under random idle/backpressure
    and compare with golden; returns ``dict(outputs, mismatches, cycles, seconds, ...)``."""
    from ddnhw.host.cosim import cosim

    rtl_dir = Path(rtl_dir)
    want = golden.run(graph, x)
    r = cosim(rtl_dir / "ddnhw_top.v", rtl_dir / "manifest.json", x, expected=want,
              simulator=simulator, mode=mode, seed=seed, idle_prob=idle, stall_prob=stall,
              build_dir=build_dir)
    bad = int(np.sum(np.any(r.outputs != want, axis=1))) if r.outputs.shape == want.shape \
        else len(want)
    return {"outputs": r.outputs, "mismatches": max(bad, int(r.mismatches or 0)),
            "cycles": r.cycles, "seconds_build": r.seconds_build, "seconds_run": r.seconds_run,
            "simulator": simulator, "message": r.message}
