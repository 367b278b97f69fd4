"""Cycle timing of a chain of blocks from their handshake control alone (no data).

A block's ``latency`` attribute is the cycles from an accepted input beat to its first output
beat. A network's latency is not their sum when a block needs many input beats per output
(a flatten :class:`~ddnhw.hw.window.Collector` waits for the whole feature map) or stalls its
producer (a folded convolution accepts one window per ``ii`` cycles, so its sliding window
and the image input wait). :func:`chain_timing` therefore steps every block's cycle model
(the block protocol's ``spec.cycle_model()``: the same registers and conditions as its
``elaborate``, nothing else) with the input always valid and the output always ready, and
reports the cycles from the first input beat to the first output beat
(tests/lower/test_timing.py checks it against the Amaranth simulator and Verilator).
"""
from __future__ import annotations

from ddnhw import DdnhwError
from ddnhw.hw.folded import FoldedDenseModel
from ddnhw.hw import PipelineModel
from ddnhw.hw.protocol import ChainModel, spec_of

__all__ = ["chain_timing", "chain_latency_ii", "window_mac_ii", "window_refill",
           "MAX_CYCLES", "TimingError"]

# stop stepping after this many cycles (chain_timing then raises TimingError)
MAX_CYCLES = 2_000_000


class TimingError(DdnhwError):
    """The outputs did not all come within the cycle limit."""


def _models(blocks):
    if not blocks:
        raise ValueError("chain_timing needs at least one block")
    return [spec_of(b).cycle_model() for b in blocks]


def chain_timing(blocks, beats_per_input, inputs=1, max_cycles=MAX_CYCLES, beats_per_output=1):
    """Handshake cycles of ``inputs`` inputs (``beats_per_input`` beats each, always valid)
    through the chain ``blocks`` (specs or components; output always ready): ``{"in": [cycle
    of each input beat], "out": [cycle of each output beat]}`` (cycles from reset, as
    :func:`ddnhw.hw.sim.run_beats` logs them). Every input yields ``beats_per_output`` output
    beats (a sequence output: one per time step). Raises :class:`TimingError` when the outputs
    take more than ``max_cycles``, and ``NotImplementedError`` for a spec without a cycle
    model."""
    return _run(_models(blocks), beats_per_input, inputs, inputs * beats_per_output,
                max_cycles)


def chain_latency_ii(blocks, beats_per_input, inputs=4, beats_per_output=1):
    """``(latency, ii)`` of the chain ``blocks``: cycles from the first input beat to the first
    output beat, and between the last output beats of the last two of ``inputs`` back-to-back
    inputs (the steady state), by :func:`chain_timing`."""
    if inputs < 2:
        raise ValueError(f"inputs must be >= 2 (the II is between two outputs), not {inputs!r}")
    log = chain_timing(blocks, beats_per_input, inputs, beats_per_output=beats_per_output)
    return log["out"][0] - log["in"][0], log["out"][-1] - log["out"][-1 - beats_per_output]


def window_refill(window) -> int:
    """A MAC II from which a :class:`~ddnhw.hw.window.SlidingWindow` always has the next window
    ready when the MAC takes it: the rows written between two output rows (or images) take
    fewer cycles than one window's MAC time."""
    return max(window.stride, window.kh) * window.width + 8


def window_mac_ii(window, mac_ii, requant=False, inputs=4, simulate=False):
    """Cycles per image of a :class:`~ddnhw.hw.window.SlidingWindow` (its spec or component)
    feeding a MAC that accepts one window every ``mac_ii`` cycles (1: an unrolled Dense; a
    :class:`~ddnhw.hw.FoldedDense` of that II, with fused ``requant``), in the steady state.
    Its line buffer holds ``kh`` rows only, so input and windows overlap partly; one-row
    images (1-D signals) do not overlap at all. From :func:`window_refill` on, that is
    ``beats_out * mac_ii``; below (or with ``simulate``), stepped as :func:`chain_timing`."""
    window = spec_of(window)
    if not simulate and mac_ii >= window_refill(window):
        return window.beats_out * mac_ii    # the MAC is the bottleneck at every window
    mac = PipelineModel(1) if mac_ii == 1 else FoldedDenseModel(
        int(mac_ii), 1, requant, decoupled=int(mac_ii) > 3 + bool(requant))
    n = window.beats_out
    log = _run([window.cycle_model(), mac], window.beats_in, inputs, inputs * n, MAX_CYCLES)
    return log["out"][-1] - log["out"][-1 - n]


def _run(models, beats_per_input, inputs, n_out, max_cycles):
    total = beats_per_input * inputs
    chain = ChainModel(models)
    log = {"in": [], "out": []}
    for cyc in range(max_cycles):
        fire_in = len(log["in"]) < total and chain.ready(True)
        fire_out = bool(chain.valid())
        chain.step(fire_in, True)
        if fire_in:
            log["in"].append(cyc)
        if fire_out:
            log["out"].append(cyc)
            if len(log["out"]) == n_out:
                return log
    raise TimingError(f"{len(log['out'])} of {n_out} outputs after {max_cycles} cycles "
                      f"({len(log['in'])} of {total} input beats accepted)")

