"""The recurrent examples end to end: QAT training of a quantized GRU (or Elman RNN), IR,
integer-mode PyTorch == golden, then RTL, Amaranth-simulator and Verilator checks vs golden.

Examples (4-bit inputs and weights, s8.6 state, 6-bit LUT index, gates in 1/64; trained on
embedded or generated data, seeded):

- ``gru``: the digits images read row by row, 8 steps of 8 pixels, GRU (16) → dense 10;
- ``gru-signal``: the generated noisy sine/square/sawtooth signals of the 1-D CNN example
  (:func:`ddnhw.datasets.make_waveforms`, 32 samples), one sample per step, GRU (16) → dense 3;
- ``rnn``: the digits rows with an Elman RNN (16) → dense 10.

A sequence streams into the hardware one time step (``I`` lanes) per beat; the logits come
out after the last step.
"""
from __future__ import annotations

import time

import numpy as np

from ddnhw import DdnhwError, golden

__all__ = ["SEQ_EXAMPLES", "seq_data", "train_seq_example", "seq_inputs", "int_mode_check",
           "lowering_available", "run_seq_demo"]

SEQ_EXAMPLES = {
    "gru": dict(dataset="digits", cell="gru", steps=8, input_size=8, n_classes=10, hidden=16,
                epochs=20, simd=4,
                title="GRU on the digits rows (8 steps of 8 pixels)"),
    "gru-signal": dict(dataset="waveforms", cell="gru", steps=32, input_size=1, n_classes=3,
                       hidden=16, epochs=20, simd=2,
                       title="GRU on generated sine/square/sawtooth signals (32 steps of 1 "
                             "sample)"),
    "rnn": dict(dataset="digits", cell="rnn", steps=8, input_size=8, n_classes=10, hidden=16,
                epochs=40, simd=4,
                title="Elman RNN on the digits rows (8 steps of 8 pixels)"),
}


def _example(name):
    if name not in SEQ_EXAMPLES:
        raise DdnhwError(f"unknown sequence example {name!r}; choose one of "
                         f"{', '.join(SEQ_EXAMPLES)}")
    return SEQ_EXAMPLES[name]


def seq_data(name, seed=0):
    """``(x_train, y_train, x_test, y_test)`` of example ``name``, ``x`` float (N, T, I) in
    [0, 1]. The digits split is the one of every digits demo; the waveforms use ``seed``."""
    ex = _example(name)
    if ex["dataset"] == "digits":
        from ddnhw.datasets import load_digits_split
        xtr, ytr, xte, yte = load_digits_split()
    else:
        from ddnhw.datasets import make_waveforms
        xtr, ytr, xte, yte = make_waveforms(length=ex["steps"] * ex["input_size"], seed=seed)
    shape = (-1, ex["steps"], ex["input_size"])
    return xtr.reshape(shape), ytr, xte.reshape(shape), yte


def seq_inputs(graph, name, seed=0):
    """The test split of example ``name`` as integer ``(N, T, I)`` inputs and the labels."""
    _, _, xte, yte = seq_data(name, seed)
    return golden.quantize_input(graph, xte), yte


def int_mode_check(model, graph, x_int):
    """Number of inputs (integer ``(N, T, I)``) where integer-mode PyTorch differs from the
    golden model in any logit (0 expected)."""
    import torch
    a = model.int_forward(torch.as_tensor(x_int)).numpy()
    b = golden.run(graph, x_int)
    return int(np.sum(np.any(a != b, axis=1)))


def train_seq_example(name="gru", bits=4, hidden=None, epochs=None, seed=0, random=200,
                      log=None):
    """``(graph, metrics, model)``: the exported IR; float / fake-quant / golden test accuracy
    and the integer-mode check (test split + ``random`` random and extreme sequences)."""
    import torch
    from ddnhw.flow import random_vectors
    from ddnhw.quant.rnn import SeqConfig, export_seq, train_seq

    ex = _example(name)
    torch.set_num_threads(1)
    hidden = ex["hidden"] if hidden is None else hidden
    epochs = ex["epochs"] if epochs is None else epochs
    xtr, ytr, xte, yte = seq_data(name, seed)
    cfg = SeqConfig(cell=ex["cell"], input_size=ex["input_size"], hidden=hidden,
                    n_classes=ex["n_classes"], steps=ex["steps"], in_bits=bits, w_bits=bits,
                    float_epochs=epochs, qat_epochs=epochs, seed=seed)
    r = train_seq(xtr, ytr, xte, yte, cfg, log=log)
    graph = export_seq(r.model, meta={"name": name.replace("-", "_"), "dataset": ex["dataset"],
                                      "bits": int(bits), "seed": int(seed)})
    t = time.perf_counter()
    x = golden.quantize_input(graph, xte)
    gold = float(np.mean(golden.predict(graph, x) == yte))
    xr = random_vectors(graph, random, seed) if random else x[:0]
    bad = int_mode_check(r.model, graph, np.concatenate([x, xr]))
    return graph, {"example": name, "float_accuracy": r.float_accuracy,
                   "quant_accuracy": r.quant_accuracy, "golden_accuracy": gold,
                   "int_mode_vectors": len(x) + len(xr), "int_mode_mismatches": bad,
                   "train_seconds": r.seconds, "check_seconds": time.perf_counter() - t,
                   "bits": int(bits), "hidden": int(hidden), "epochs": int(epochs),
                   "cell": ex["cell"], "steps": ex["steps"], "input_size": ex["input_size"]}, \
        r.model


def lowering_available(graph) -> bool:
    """Whether the hardware lowering knows every op of ``graph``."""
    from ddnhw.lower.registry import LOWERINGS
    return all(n.op in LOWERINGS for n in graph.nodes)


class _Quiet:
    def step(self, what):
        pass

    def done(self, extra=""):
        pass

    def log(self, msg):
        pass


def run_seq_demo(name="gru", out="out/demo-gru", *, hidden=None, bits=4, epochs=None, seed=0,
                 sim_images=4, cosim="verilator", cosim_random=40, boards=("icebreaker",),
                 folding=None, progress=None):
    """Train, export, check integer-mode == golden, generate the RTL (``folding``: ``{layer:
    (pe, simd)}``, default the example's UP5K folding: the recurrent layer at one PE and
    ``simd`` lanes, the classifier at (1, 1)), check the Amaranth simulator on
    ``sim_images`` test sequences and cosimulate (``cosim``: ``"verilator"``, ``"icarus"`` or
    ``"none"``) the whole test split plus ``cosim_random`` random/extreme sequences under 30 %
    idle / 30 % backpressure, then synthesize for ``boards`` with the same folding. Returns
    the summary dict (also ``<out>/summary.json``); ``summary["mismatches"]`` counts every
    integer-mode, simulator and RTL difference from golden."""
    from pathlib import Path

    from ddnhw import cnn_demo, flow
    from ddnhw.flow import random_vectors

    ex = _example(name)
    p = progress or _Quiet()
    out = flow.ensure_writable_dir(out)
    p.step(f"training {ex['title']}, hidden {hidden or ex['hidden']}, {bits}-bit QAT")
    graph, m, _ = train_seq_example(name, bits=bits, hidden=hidden, epochs=epochs, seed=seed,
                                    log=p.log)
    flow.save_graph(graph, out / "model.npz")
    p.done(f": float {m['float_accuracy']:.4f}, quantized (golden) {m['golden_accuracy']:.4f}, "
           f"integer-mode PyTorch vs golden: {m['int_mode_mismatches']} of "
           f"{m['int_mode_vectors']} differ")
    summary = {**m, "mismatches": m["int_mode_mismatches"], "output_dir": str(out.resolve())}
    if not lowering_available(graph):
        flow.write_json_atomic(out / "summary.json", summary)
        raise DdnhwError(f"demo --model {name}: the model and its golden check are in {out}, "
                         f"but this version has no hardware lowering of "
                         f"{sorted({n.op for n in graph.nodes})}")
    if folding is None:   # the UP5K folding: one PE with SIMD lanes over [x_t, h]
        n_cols = ex["input_size"] + graph.nodes[0].attrs["weight"].shape[0] // (
            4 if ex["cell"] == "gru" else 1)
        folding = {ex["cell"]: (1, min(ex["simd"], n_cols)), "fc": (1, 1)}
    fold = dict(folding)
    family = None
    if boards:
        from ddnhw.board import get_board
        family = get_board(boards[0]).family
    p.step(f"generating RTL (Amaranth → Verilog; folding {fold or 'none'}; one time step in, "
           f"logits out)")
    options = {"folding": fold} if fold else {}
    if family:
        options["family"] = family
    man = cnn_demo.generate_cnn(graph, out / "rtl", **options)
    summary.update(folding={k: list(v) if v else None for k, v in fold.items()},
                   latency_cycles=man["latency_cycles"], ii_cycles=man["ii_cycles"],
                   estimate=man["estimate"])
    x_all, y = seq_inputs(graph, name, seed)
    x = x_all[:sim_images]
    if len(x):
        p.step(f"Amaranth simulation of {len(x)} test sequences under random idle/backpressure")
        r = cnn_demo.sim_check(graph, x, seed=seed, **options)
        p.done(f": {r['mismatches']} mismatches")
        summary.update(sim_images=len(x), sim_mismatches=r["mismatches"],
                       sim_accuracy=float((r["outputs"].argmax(1) == y[:len(x)]).mean()))
        summary["mismatches"] += r["mismatches"]
    if cosim != "none":
        xc = np.concatenate([x_all, random_vectors(graph, cosim_random, seed)])
        p.step(f"{cosim} cosimulation of {len(x_all)} test + {cosim_random} random sequences "
               f"under random idle/backpressure")
        cos = cnn_demo.cosim_check(graph, xc, out / "rtl", simulator=cosim, seed=seed,
                                   build_dir=out / "sim")
        p.done(f": {cos['mismatches']} mismatches, {cos['cycles']} cycles")
        summary.update(cosim_simulator=cosim, cosim_images=len(xc),
                       cosim_mismatches=cos["mismatches"], cosim_cycles=cos["cycles"],
                       cosim_accuracy=float((cos["outputs"][:len(x_all)].argmax(1) == y).mean()))
        summary["mismatches"] += cos["mismatches"]
    reports = {}
    for b in boards or ():
        p.step(f"synthesizing for {b} (yosys + nextpnr)")
        reports[b] = flow.build(graph, b, Path(out) / "build" / b, allow_timing_failure=True,
                                folding=fold or "none")
        r = reports[b]
        p.done(f": {r.get('luts')} LUTs, {r.get('ffs')} FFs, {r.get('dsps')} DSPs, "
               f"{r.get('brams')} BRAMs, Fmax {r.get('fmax_mhz')} MHz")
    summary["boards"] = reports
    p.done()
    flow.write_json_atomic(out / "summary.json", summary)
    return summary
