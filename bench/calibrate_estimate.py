"""Build single folded/unrolled layers for iCE40 and ECP5 and record nextpnr's numbers next to
the block parameters: the data that ``ddnhw/lower/estimate.py`` is calibrated on.

    .venv/bin/python bench/calibrate_estimate.py [ice40|ecp5] ...

Writes ``bench/results/calibration_<family>.json`` (one row per build). With
``CAL_ONLY=name,name`` only those builds run and their rows are appended.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddnhw.board import build  # noqa: E402
from ddnhw.hw import DenseSpec, FoldedDenseSpec, RequantizerSpec  # noqa: E402
from ddnhw.ir.testing import random_mlp  # noqa: E402
from ddnhw.lower.estimate import block_features  # noqa: E402

BOARDS = {"ice40": "icebreaker", "ecp5": "ulx3s-85f"}


def cores():
    g = random_mlp(11, sizes=(64, 16, 10))
    fc0, rq, fc1 = g.nodes
    t = g.tensors

    def dense(node, **kw):
        return (node.attrs["weight"], node.attrs["bias"], t[node.inputs[0]].dtype,
                t[node.outputs[0]].dtype)

    for pe, simd in [(1, 1), (2, 4), (4, 8), (16, 16)]:
        yield f"fold_fc0_{pe}x{simd}", lambda pe=pe, simd=simd: FoldedDenseSpec(
            *dense(fc0), pe=pe, simd=simd)
    for pe, simd in [(2, 2), (10, 16)]:
        yield f"fold_fc1_{pe}x{simd}", lambda pe=pe, simd=simd: FoldedDenseSpec(
            *dense(fc1), pe=pe, simd=simd)
    yield "dense_fc1", lambda: DenseSpec(*dense(fc1))
    yield "dense_fc0", lambda: DenseSpec(*dense(fc0))     # fully parallel 64 x 16
    a = rq.attrs
    fused = (a["multiplier"], a["shift"], a["lo"], a["hi"])
    for pe, simd in [(1, 16), (4, 8), (16, 4)]:       # requantizer fused into the PE lanes
        yield f"fold_fc0_{pe}x{simd}_rq", lambda pe=pe, simd=simd: FoldedDenseSpec(
            *dense(fc0)[:3], t[rq.outputs[0]].dtype, pe=pe, simd=simd, requant=fused)
    yield "requant_rq", lambda: RequantizerSpec(a["multiplier"], a["shift"], a["lo"], a["hi"],
                                             t[rq.inputs[0]].dtype, t[rq.outputs[0]].dtype)
    # the shipped demo model (64-16-10, pruned, unrolled): its layers one by one
    from ddnhw.ir import load_graph
    d = load_graph(ROOT / "examples" / "digits_mlp.npz")
    dt = d.tensors
    for node in d.nodes:
        if node.op == "dense":
            yield f"demo_dense_{node.name}", lambda node=node: DenseSpec(
                node.attrs["weight"], node.attrs["bias"], dt[node.inputs[0]].dtype,
                dt[node.outputs[0]].dtype)
        else:
            yield f"demo_requant_{node.name}", lambda a=node.attrs, node=node: RequantizerSpec(
                a["multiplier"], a["shift"], a["lo"], a["hi"], dt[node.inputs[0]].dtype,
                dt[node.outputs[0]].dtype)


def top_overhead(core):
    """The measurement top's shift registers around the core (a block spec: w_in + 2 + w_out
    FFs, w_out LUTs), subtracted before fitting."""
    from amaranth.hdl import Shape
    w_in, w_out = Shape.cast(core.in_shape).width, Shape.cast(core.out_shape).width
    return {"luts": w_out, "ffs": w_in + 2 + w_out}


def main(families):
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    for family in families:
        path = out / f"calibration_{family}.json"
        only = [n for n in os.environ.get("CAL_ONLY", "").split(",") if n]
        rows = json.loads(path.read_text()) if only and path.exists() else []
        for name, make in cores():
            if only and name not in only:
                continue
            core = make()                  # a block spec
            feats = block_features(core)
            with tempfile.TemporaryDirectory(dir=ROOT / "build") as d:
                try:
                    rep = build(core.build(), BOARDS[family], d, name="cal")
                except Exception as e:  # record, keep going
                    print(name, "FAILED", e, flush=True)
                    continue
            row = {"name": name, "block": core.component.__name__, "features": feats,
                   "top": top_overhead(core),
                   **{k: rep[k] for k in ("luts", "ffs", "dsps", "brams", "lut4", "carry",
                                          "fmax_mhz", "seconds")}}
            print(json.dumps(row), flush=True)
            rows.append(row)
            (out / f"calibration_{family}.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    (ROOT / "build").mkdir(exist_ok=True)
    main(sys.argv[1:] or ["ice40", "ecp5"])
