"""``ddnhw energy``: energy per inference of a model's circuit on a board, from the gate-level
netlist simulated on real inputs (:func:`ddnhw.energy.estimate_energy`)."""
from __future__ import annotations

from ddnhw.cli import args as A

import argparse
from pathlib import Path


def _positive(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return v


def _fmt_nj(nj):
    return f"{nj / 1000:.3f} µJ" if nj >= 1000 else f"{nj:.3f} nJ"


def input_vectors(graph, spec, seed=0, option="--inputs"):
    """The vectors of ``spec`` (``test``, ``random:N`` or a ``.npy`` file, as ``--vectors``
    elsewhere); a test split that is not this model's is an error naming ``option``."""
    from ddnhw import DdnhwError, examples
    try:
        return examples.input_vectors(graph, spec, seed)
    except ValueError as e:   # e.g. the test split of another example's input shape
        raise DdnhwError(f"{option} {spec!r}: {e}; this model's inputs have shape "
                         f"{tuple(graph.input.shape)}: use {option} random:N or an X.npy "
                         "file") from None


def estimate(graph, board, out, inputs="test", clock=None, fmax=None, seed=0, **fold):
    """Resolve ``inputs`` (:func:`input_vectors`) and run :func:`ddnhw.energy.estimate_energy`."""
    from ddnhw.board import get_board
    from ddnhw.energy import estimate_energy
    get_board(board)     # an unknown board fails before any work
    x = input_vectors(graph, inputs, seed)
    return estimate_energy(graph, board, out, inputs=x, clock_mhz=clock, fmax_mhz=fmax,
                           **{k: v for k, v in fold.items() if v is not None})


def summary_lines(r):
    """Human-readable lines of an :func:`estimate_energy` result."""
    static = r["static_power_mw"]
    lines = [
        f"{r['board']} ({r['device']}): {_fmt_nj(r['energy_nj_per_inference'])} per inference "
        f"(dynamic; ±{r['error_band']['relative']:.0%} model band), "
        f"{r['activity']['cycles_per_inference']:.2f} cycles per inference",
        f"power at {r['clock_mhz']:g} MHz: {r['dynamic_power_mw_board_clock']:.3f} mW dynamic"
        + ("" if static is None else f" + {static:.3f} mW static")
        + ("" if r["power_mw_fmax"] is None else
           f"; at Fmax {r['fmax_mhz']:.1f} MHz: {r['power_mw_fmax']:.3f} mW"),
        "breakdown (nJ/inference): " + ", ".join(f"{k} {v:.4f}" for k, v in
                                                  r["breakdown"].items() if v),
        "toggle rate (per cell per cycle): " + ", ".join(
            f"{k} {v:.3f}" for k, v in r["activity"]["toggle_rate"].items()),
        f"gate-level check: {r['equivalence']}",
    ]
    return lines


def cmd_energy(a):
    from ddnhw import flow
    graph = flow.load_model(a.model)
    out = Path(a.out) / a.board
    r = estimate(graph, a.board, out, a.inputs, a.clock, a.fmax, a.seed, folding=a.folding,
                 target_ii=a.target_ii, max_luts=a.max_luts)
    for line in summary_lines(r):
        print(line)
    if a.json:
        flow.write_json_atomic(a.json, r)
        print(f"wrote {a.json}")
    return 0


def add_parser(sub):
    s = sub.add_parser("energy", help="energy per inference from the gate-level netlist "
                                      "simulated on real inputs")
    s.add_argument("model", type=A.existing_file, help="model file (.npz)")
    s.add_argument("--board", default="icebreaker", type=A.board_name)
    s.add_argument("--inputs", default="test", type=A.vectors_spec,
                   help="input vectors: test (the example's test split), random:N, or X.npy")
    s.add_argument("--clock", type=_positive, default=None,
                   help="clock (MHz) of the power figure; default: the board clock")
    s.add_argument("--fmax", type=_positive, default=None,
                   help="the circuit's Fmax (MHz, e.g. from `ddnhw build`) for the power at Fmax")
    s.add_argument("--folding", default="auto", choices=["auto", "none"])
    s.add_argument("--target-ii", type=A.positive_int, default=None)
    s.add_argument("--max-luts", type=A.positive_int, default=None)
    s.add_argument("--seed", type=A.seed, default=0)
    s.add_argument("--json", default=None, help="write the full result to this JSON file")
    s.add_argument("-o", "--out", default="energy_out", type=A.nonempty)
    s.set_defaults(func=cmd_energy)
    return s
