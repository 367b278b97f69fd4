"""Calibration of the iCE40UP5K coefficients against published bench measurements.

Source: tinyvision-ai-inc/ice40_power (GitHub, README "Results"), core rail of an
iCE40UP5K-SG48 on Lattice's iCE40 UltraPlus breakout board, 1.219 V, measured with a Joulescope
JS110; designs built with the icestorm toolchain. The rows used here (core current in µA):

==============================================================  =======
External halted clock (0 kHz) + 24-bit counter (28 LCs)            92.1
External 12 MHz + 28-bit counter (32 LCs)                          613.5
External 12 MHz + 28*2-bit counter (60 LCs)                        616.65
External 12 MHz + 28*4-bit counter (116 LCs)                       624.2
External 12 MHz + 28*8-bit counter (228 LCs)                       641.3
HFOSC 12 MHz + 24-bit counter (28 LCs)                             645
HFOSC 12 MHz + math, no DSP + 24-bit counter (208 LCs)             996
HFOSC 12 MHz + math, 1 DSP + 24-bit counter (72 LCs)               882
HFOSC 6 / 24 / 48 MHz + 24-bit counter (28 LCs)          388.4 / 1162 / 2184
==============================================================  =======

"math" is two 8-bit counters (stepping by 3 and by 5) multiplied every cycle into a 16-bit
product, in logic or in one DSP. The designs are rebuilt here from that description (our own
Verilog; the product is kept alive through its XOR reduction: the original's AND reduction
``&result`` is constant 0, which today's yosys proves, removing the multiplier the 2021 build
kept: 208 LCs were measured), synthesized with yosys ``synth_ice40`` and simulated gate-level (:mod:`.gatesim`) to
count their events per cycle; the coefficients of :mod:`.model` are then the non-negative least
squares fit of ``I = I_static + f * E_cycle / V`` to those rows (the HFOSC rows as differences
from the HFOSC counter, which cancels the oscillator's own current). The HFOSC frequency sweep is
not fitted: it checks the per-cycle slope.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import ddnhw.energy.gatesim as gatesim

__all__ = ["MEASUREMENTS", "VCORE", "designs", "simulate", "fit", "predict", "calibrate"]

VCORE = 1.219          # V, the core rail in the measurements
SOURCE = "tinyvision-ai-inc/ice40_power README (iCE40UP5K-SG48, core rail 1.219 V, Joulescope JS110)"

# name -> (design, clock source, MHz, core µA)
MEASUREMENTS = {
    "halted": ("counter24", "ext", 0.0, 92.1),
    "counter28": ("counter28", "ext", 12.0, 613.5),
    "counter56": ("counter56", "ext", 12.0, 616.65),
    "counter112": ("counter112", "ext", 12.0, 624.2),
    "counter224": ("counter224", "ext", 12.0, 641.3),
    "hfosc12": ("counter24", "hfosc", 12.0, 645.0),
    "math_fabric": ("math_fabric", "hfosc", 12.0, 996.0),
    "math_dsp": ("math_dsp", "hfosc", 12.0, 882.0),
    "hfosc6": ("counter24", "hfosc", 6.0, 388.4),
    "hfosc24": ("counter24", "hfosc", 24.0, 1162.0),
    "hfosc48": ("counter24", "hfosc", 48.0, 2184.0),
}
FITTED = ("counter28", "counter56", "counter112", "counter224", "math_fabric", "math_dsp")


def _counter(name, bits):
    return (f"module {name}(input clk, output o);\n"
            f"    reg [{bits - 1}:0] c = 0;\n"
            f"    always @(posedge clk) c <= c + 1'b1;\n"
            f"    assign o = c[{bits - 1}];\nendmodule\n")


def _math(name):
    return (f"module {name}(input clk, output o);\n"
            "    reg [23:0] c = 0;\n    reg [7:0] a = 0, b = 0;\n"
            "    wire [15:0] p = a * b;\n"
            "    always @(posedge clk) begin c <= c + 1'b1; a <= a + 8'd3; b <= b + 8'd5; end\n"
            "    assign o = c[23] | (&a) | (&b) | (^p);\nendmodule\n")


def designs():
    """``{name: (verilog, synth options)}`` of the rebuilt bench designs."""
    out = {f"counter{n}": (_counter(f"counter{n}", n), ()) for n in (24, 28, 56, 112, 224)}
    out["math_fabric"] = (_math("math_fabric"), ())
    out["math_dsp"] = (_math("math_dsp"), ("-dsp",))
    return out


def simulate(work_dir, cycles=4096, extra=None, per_instance=False):
    """Synthesize every design (and ``extra``: more ``{name: (verilog, synth options)}``
    modules with a ``clk`` input and optionally ``rst``; other inputs stay 0) and run them
    together (one Verilator build); returns ``{design: {"cells", "events", "cycles",
    "instances"}}``: events per cycle by cell type, and with ``per_instance`` each cell output's
    toggles over the run."""
    work_dir = Path(work_dir)
    nets, srcs = {}, {**designs(), **(extra or {})}
    for name, (src, opts) in srcs.items():
        nets[name] = gatesim.synthesize([(f"{name}.v", src)], name, "ice40",
                                        work_dir / "synth" / name, synth_opts=opts)
    tb = ("module ddnhw_gate_tb(input wire clk, input wire rst);\n"
          + "".join(f"    {n} {n}_i (.clk(clk){', .rst(rst)' if 'input rst' in srcs[n][0] else ''});\n"
                    for n in nets) + "endmodule\n")
    binary, _, _ = gatesim.build_sim(list(nets.values()), [("cal_tb.v", tb)], work_dir / "sim",
                                     per_instance=per_instance)
    acts, _ = gatesim.run_sim(binary, work_dir / "run", cycles=cycles)
    out = {}
    for name, net in nets.items():
        act = acts[name]
        out[name] = {"cells": net.cells, "cycles": act.cycles,
                     "events": {cell: {k: v / act.cycles for k, v in e.items()}
                                for cell, e in act.by_cell.items()},
                     "instances": dict(act.instances)}
    return out


def _features(sim):
    """Per design the per-cycle feature vector of the model's dynamic coefficients."""
    from ddnhw.energy.model import ICE40, per_cycle_features
    return {name: per_cycle_features(ICE40, d["cells"], d["events"]) for name, d in sim.items()}


def fit(sim):
    """Non-negative least squares of the dynamic coefficients (pJ) on the fitted rows,
    relative residuals. Returns ``{coefficient: pJ}`` and the static power (mW)."""
    from scipy.optimize import nnls
    from ddnhw.energy.model import DYNAMIC_KEYS
    feats = _features(sim)
    static_ua = MEASUREMENTS["halted"][3]
    base = MEASUREMENTS["hfosc12"]
    rows, rhs = [], []
    for key in FITTED:
        design, osc, mhz, ua = MEASUREMENTS[key]
        x = np.array([feats[design][k] for k in DYNAMIC_KEYS])
        if osc == "hfosc":   # difference from the HFOSC counter at the same clock
            x = x - np.array([feats[base[0]][k] for k in DYNAMIC_KEYS])
            ua = ua - base[3]
        else:
            ua = ua - static_ua
        # µA = MHz * pJ / V
        a = x * mhz / VCORE
        rows.append(a / ua)
        rhs.append(1.0)
    coef, _ = nnls(np.array(rows), np.array(rhs))
    return dict(zip(DYNAMIC_KEYS, map(float, coef))), static_ua * VCORE / 1000


def predict(sim, coeffs=None):
    """``{row: (measured µA, modelled µA)}`` for every measurement; the HFOSC rows get the
    oscillator's current from the 12 MHz HFOSC row (measured minus modelled)."""
    from ddnhw.energy.model import DYNAMIC_KEYS, ICE40
    coeffs = coeffs or ICE40.dynamic
    feats = _features(sim)
    static_ua = ICE40.static_mw * 1000 / VCORE

    def model_ua(design, mhz):
        e = sum(coeffs[k] * feats[design][k] for k in DYNAMIC_KEYS)
        return static_ua + mhz * e / VCORE

    osc = MEASUREMENTS["hfosc12"][3] - model_ua("counter24", 12.0)
    out = {}
    for key, (design, src, mhz, ua) in MEASUREMENTS.items():
        if key == "hfosc12":
            continue
        out[key] = (ua, model_ua(design, mhz) + (osc if src == "hfosc" else 0.0))
    return out


def calibrate(work_dir, cycles=4096):
    """Simulate, fit and predict: a dict with the fitted coefficients, the predictions and the
    relative errors (fitted rows and the unfitted HFOSC frequency rows)."""
    sim = simulate(work_dir, cycles)
    coeffs, static_mw = fit(sim)
    pred = predict(sim, coeffs)
    err = {k: (m - meas) / meas for k, (meas, m) in pred.items()}
    return {"coefficients_pj": coeffs, "static_mw": static_mw, "predicted_ua": pred,
            "relative_error": err, "source": SOURCE,
            "cells": {k: v["cells"] for k, v in sim.items()}}
