"""Benchmark: Brevitas models through the front door (export_qonnx -> ddnhw import -> cosim ->
build). Per model: test accuracy where trained (digits, mean ± std over seeds; the imported
golden model's accuracy, which equals Brevitas' own because the import is bit-exact), the
mismatches of ``golden.predict`` against qonnx's ``execute_onnx`` and against Brevitas on the
test split plus random inputs with saturating values and exact rounding ties, the RTL
mismatches in Verilator under random idle/backpressure, and a UP5K (iCEBreaker) build of the
core (measure shim): LUTs, Fmax, inferences/s.

    .venv/bin/python bench/qonnx_models.py [--out bench/results] [--work DIR] [--epochs 30]
        [--seeds 0,1,2,3,4] [--no-builds] [--models a,b]

Writes ``<out>/qonnx_models.json`` and ``<out>/qonnx_models.md``.
"""
from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddnhw import DdnhwError, flow, golden  # noqa: E402
from ddnhw.frontend import qonnx as fq  # noqa: E402
from bench.common import bench_dirs, bench_parser  # noqa: E402
from bench.run import machine  # noqa: E402
from tests.frontend import brevitas_models as bm  # noqa: E402
from tests.frontend.conftest import BATCH, brevitas_forward, execute_qonnx  # noqa: E402

BOARDS = ("icebreaker", "ulx3s-85f")
COSIM_VECTORS = 600       # the first ones: the test split (trained models), then random


def digits_cnn():
    """A small CNN for the 8x8 digits: conv 3x3 x8 (4-bit per-channel) -> ReLU 4 -> maxpool 2
    -> depthwise 3x3 -> ReLU 4 -> TruncAvgPool 2 -> linear 10."""
    import torch
    qnn, bq = bm._q()
    return torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=8,
                          return_quant_tensor=True),
        qnn.QuantConv2d(1, 8, 3, padding=1, weight_quant=bq.Int8WeightPerTensorFixedPoint,
                        weight_scaling_per_output_channel=True, weight_bit_width=4,
                        bias_quant=bq.Int32Bias, return_quant_tensor=True),
        qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFixedPoint, bit_width=4,
                      return_quant_tensor=True),
        torch.nn.MaxPool2d(2),
        qnn.QuantConv2d(8, 8, 3, padding=1, groups=8, weight_bit_width=4,
                        weight_quant=bq.Int8WeightPerTensorFixedPoint, bias_quant=bq.Int32Bias,
                        return_quant_tensor=True),
        qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFixedPoint, bit_width=4,
                      return_quant_tensor=True),
        qnn.TruncAvgPool2d(2, bit_width=4, return_quant_tensor=True),
        torch.nn.Flatten(),
        qnn.QuantLinear(32, 10, bias=True, weight_quant=bq.Int8WeightPerTensorFixedPoint,
                        weight_bit_width=4, bias_quant=bq.Int32Bias))


#: name -> (builder, input shape, trained on digits)
MODELS = {
    "digits_mlp_w4a4": (lambda: bm.mlp(sizes=(64, 32, 10), w_bits=4, a_bits=4,
                                       per_channel=True), (64,), True),
    "digits_mlp_w2a2": (lambda: bm.mlp(sizes=(64, 32, 10), w_bits=2, a_bits=2, in_bits=4),
                        (64,), True),
    "digits_cnn_w4a4": (digits_cnn, (1, 8, 8), True),
    **{name: (build, shape, False) for name, (build, shape) in bm.MODELS.items()
       if name in ("residual_gap", "bipolar", "mlp_w4a4_perchannel_floatbias")},
}


def digits():
    from ddnhw.datasets import load_digits_split
    return load_digits_split()


def train(name, seed, epochs):
    import torch
    build, shape, _ = MODELS[name]
    torch.manual_seed(seed)
    model = build()
    xtr, ytr, _, _ = digits()
    x = torch.from_numpy(xtr.reshape((-1,) + shape))
    y = torch.from_numpy(ytr).long()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            out = model(x[idx])
            out = out.value if hasattr(out, "value") else out
            loss = torch.nn.functional.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def export(model, shape, path):
    import torch
    from brevitas.export import export_qonnx
    with torch.no_grad():
        export_qonnx(model, torch.randn((BATCH,) + tuple(shape)), str(path), dynamo=False)


def bench_model(name, seeds, epochs, work, builds, log):
    build, shape, trained = MODELS[name]
    accs, row = [], {"model": name, "trained": trained}
    for k, seed in enumerate(seeds if trained else seeds[:1]):
        path = work / f"{name}_s{seed}.onnx"
        if trained:
            model = train(name, seed, epochs)
        else:
            import torch
            torch.manual_seed(seed)
            model = bm.calibrate(build(), shape, seed)
        export(model, shape, path)
        g = fq.load(path)
        q = g.meta["input_quant"]
        if trained:
            _, _, xte, yte = digits()
            xte = xte.reshape((-1,) + shape).astype(np.float32)
            pred = np.argmax(golden.predict(g, xte), axis=-1)
            accs.append(float(np.mean(pred == yte)))
            x = np.concatenate([xte, bm.test_inputs(shape, 1000, q["scale"], q["lo"], q["hi"],
                                                    seed)])
        elif q["rounding"] == "BIPOLAR":
            x = np.random.default_rng(seed).standard_normal((1000,) + shape).astype(np.float32)
        else:
            x = bm.test_inputs(shape, 1000, q["scale"], q["lo"], q["hi"], seed)
        got = golden.predict(g, x)
        row.setdefault("vectors", len(x))
        row["mismatches_qonnx"] = row.get("mismatches_qonnx", 0) + int(
            np.sum(np.any(got != execute_qonnx(path, x), axis=-1)))
        row["mismatches_brevitas"] = row.get("mismatches_brevitas", 0) + int(
            np.sum(np.any(got != brevitas_forward(model, x), axis=-1)))
        if k == 0:
            row["layers"] = [f"{n.op}" for n in g.nodes]
            row["params"] = int(sum(n.attrs["weight"].size for n in g.nodes
                                    if n.op in ("dense", "conv2d")))
            codes = golden.quantize_input(g, x)[:COSIM_VECTORS]
            t = time.perf_counter()
            rtl = work / f"{name}_rtl"
            for board in BOARDS:       # the UP5K when the model fits it, else the ECP5
                try:
                    man = flow.generate(g, rtl, board=board)
                    break
                except DdnhwError as e:
                    log(f"{name}: {board}: {e}")
            row["board"] = board
            r = flow.cosim_check(flow.load_model(rtl / "model.npz"), codes, rtl, idle=0.3,
                                 stall=0.3, seed=seed)
            row["cosim"] = {"vectors": len(codes), "mismatches": int(r["mismatches"]),
                            "folding": man["folding_mode"], "ii_cycles": man["ii_cycles"],
                            "seconds": round(time.perf_counter() - t, 1)}
            log(f"{name}: cosim {row['cosim']}")
            if builds:
                t = time.perf_counter()
                rep = flow.build(flow.load_model(rtl / "model.npz"), board, work / f"{name}_b",
                                 top="measure", allow_timing_failure=True)
                row["build"] = {k: rep.get(k) for k in ("luts", "ffs", "brams", "dsps",
                                                        "fmax_mhz", "clock_mhz", "timing_met",
                                                        "ii_cycles", "inferences_per_s",
                                                        "inferences_per_s_at_clock")}
                row["build"]["seconds"] = round(time.perf_counter() - t, 1)
                log(f"{name}: build {row['build']}")
    if accs:
        row["accuracy"] = {"mean": float(np.mean(accs)), "std": float(np.std(accs)),
                           "seeds": list(seeds), "each": accs, "epochs": epochs}
        log(f"{name}: accuracy {np.mean(accs):.4f} ± {np.std(accs):.4f}")
    return row


def markdown(res):
    m = res["machine"]
    lines = ["# Brevitas models through `ddnhw import` (QONNX)", "",
             f"Measured {res['date']} on {m['cpu']} ({m['cores']} cores), Python "
             f"{m['python']}. Reproduce: `python bench/qonnx_models.py`. Accuracy: digits test "
             f"split (360 images), {res['epochs']} QAT epochs in Brevitas, mean ± std over "
             f"seeds {res['seeds']}. Mismatches: vectors whose output differs in any element "
             f"(golden.predict vs qonnx execute_onnx / vs Brevitas: test split + 1000 random "
             f"inputs with saturating values and exact rounding ties, every seed; RTL vs golden "
             f"in Verilator under 30 % idle/backpressure: the first {COSIM_VECTORS} of those "
             f"vectors of the first seed). Build: the iCEBreaker (UP5K) "
             f"when the model fits it, else the ULX3S (ECP5-85F); the core behind the "
             f"measurement shim, yosys + nextpnr, the folding ddnhw chooses for the board.", "",
             "| model | accuracy | vectors per seed | vs qonnx | vs Brevitas | RTL mismatches | board "
             "| folding, II | LUTs | Fmax MHz | timing | inferences/s (Fmax) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        acc = (f"{r['accuracy']['mean']:.4f} ± {r['accuracy']['std']:.4f}" if "accuracy" in r
               else "untrained")
        b = r.get("build", {})
        c = r["cosim"]
        ips = b.get("inferences_per_s")
        lines.append(f"| {r['model']} | {acc} | {r['vectors']} | {r['mismatches_qonnx']} | "
                     f"{r['mismatches_brevitas']} | {c['mismatches']} / {c['vectors']} | {r['board']} | "
                     f"{c['folding']}, {c['ii_cycles']} | {b.get('luts', '-')} | "
                     f"{b.get('fmax_mhz', '-')} | {'met' if b.get('timing_met') else '-'} | "
                     f"{f'{ips:,.0f}' if ips else '-'} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = bench_parser(__doc__, "work/qonnx_models")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--no-builds", action="store_true")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--merge", default="",
                   help="comma-separated result JSON files of runs over parts of the models: "
                        "write their rows together (no new measurements)")
    a = p.parse_args(argv)
    work, out = bench_dirs(a)
    if a.merge:
        parts = [json.loads(Path(f).read_text()) for f in a.merge.split(",")]
        res = dict(parts[0], rows=[r for part in parts for r in part["rows"]])
        (out / "qonnx_models.json").write_text(json.dumps(res, indent=2) + "\n")
        (out / "qonnx_models.md").write_text(markdown(res))
        print(markdown(res))
        return
    import torch
    torch.set_num_threads(1)
    seeds = [int(s) for s in a.seeds.split(",")]

    def log(msg):
        print(msg, file=sys.stderr, flush=True)
    rows = []
    for name in a.models.split(","):      # results written after every model
        rows.append(bench_model(name, seeds, a.epochs, work, not a.no_builds, log))
        res = {"date": datetime.date.today().isoformat(), "machine": machine(),
               "epochs": a.epochs, "seeds": seeds, "boards": list(BOARDS), "rows": rows}
        (out / "qonnx_models.json").write_text(json.dumps(res, indent=2) + "\n")
        (out / "qonnx_models.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
