"""``ddnhw import`` (QONNX -> model file), ``ddnhw predict`` (the golden model, float in and
float out like the original model, or integer codes) and ``ddnhw export-qonnx``."""
from __future__ import annotations

from pathlib import Path


def _npy_in(text):
    import argparse
    if not text.endswith(".npy"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a .npy file")
    return text


def _npy_out(text):
    return _npy_in(text)


def cmd_import(a):
    from ddnhw import flow
    from ddnhw.frontend import qonnx
    graph = qonnx.load(a.model, approx=a.approx)
    out = Path(a.out)
    flow.ensure_writable_dir(out.parent if str(out.parent) else ".")
    flow.save_graph(graph, out)
    print(qonnx.layer_table(graph))
    q = graph.meta["input_quant"]
    scales = sorted(set(graph.meta["output_scale"]))
    how = ("bipolar" if q["rounding"] == "BIPOLAR"
           else f"scale {q['scale']:g}, {q['bits']} bits, {q['rounding']}")
    shown = ", ".join(f"{s:g}" for s in scales[:4]) + (" ..." if len(scales) > 4 else "")
    print(f"input {tuple(q['shape'])} {how} -> IR {graph.input.shape} {graph.input.dtype}; "
          f"output {graph.output.shape} {graph.output.dtype}, scale {shown}")
    for ap in graph.meta.get("approximations", []):
        print(f"APPROXIMATE: {ap}")
    print(f"wrote {out} ({len(graph.nodes)} nodes"
          f"{', exact' if not graph.meta.get('approximations') else ', WITH APPROXIMATIONS'})")
    return 0


def cmd_predict(a):
    import numpy as np
    from ddnhw import DdnhwError, flow, golden
    from ddnhw.atomic import atomic_open
    graph = flow.load_model(a.model)
    try:
        x = np.load(a.inputs, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DdnhwError(f"{a.inputs}: cannot read inputs: {e}") from None
    if a.codes:
        y = golden.run(graph, golden.check_input(graph, x))
    else:
        if x.dtype.kind in "iu":
            x = x.astype(np.float32)   # integer-valued real inputs are still real inputs
        y = golden.predict(graph, x)
    with atomic_open(a.out, "wb") as f:
        np.save(f, y)
    print(f"{len(y)} inputs -> {a.out} ({'integer codes' if a.codes else 'float32'}, shape "
          f"{y.shape})")
    return 0


def cmd_export(a):
    from ddnhw import flow
    from ddnhw.frontend import qonnx_export
    graph = flow.load_model(a.model)
    qonnx_export.save(graph, a.out)
    print(f"wrote {a.out} (QONNX, {len(graph.nodes)} IR nodes)")
    return 0


def add_parser(sub):
    s = sub.add_parser("import", help="import a QONNX model (Brevitas export_qonnx) into a "
                                      "ddnhw model file, exactly")
    s.add_argument("model", help="the .onnx file (QONNX)")
    s.add_argument("--out", default="model.npz", help="model file to write (default model.npz)")
    s.add_argument("--approx", action="store_true",
                   help="allow inexact integer requantization where a scale ratio has no "
                        "exact integer form (each approximation is printed and kept in the "
                        "model's meta); default: such a model is an error")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("predict", help="run the golden model on inputs: floats in and out, "
                                       "like the original model (or integer codes)")
    s.add_argument("model", help="model file (.npz)")
    s.add_argument("--inputs", required=True, type=_npy_in,
                   help=".npy of inputs, batch first, in the original model's shape (NCHW for "
                        "images); with --codes: integer codes in the IR's shape (NHWC)")
    s.add_argument("--out", required=True, type=_npy_out, help=".npy file to write")
    s.add_argument("--codes", action="store_true",
                   help="read integer input codes and write integer output codes")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("export-qonnx", help="write a model file as a QONNX model (for FINN, "
                                            "hls4ml, qonnx)")
    s.add_argument("model", help="model file (.npz)")
    s.add_argument("--out", required=True, help="the .onnx file to write")
    s.set_defaults(func=cmd_export)
    return s
