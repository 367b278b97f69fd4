"""Cycle timing of a chain of blocks from their handshake control alone (no data).

A block's ``latency`` attribute is the cycles from an accepted input beat to its first output
beat. A network's latency is not their sum when a block needs many input beats per output
(a flatten :class:`~ddnhw.hw.window.Collector` waits for the whole feature map) or stalls its
producer (a folded convolution accepts one window per ``ii`` cycles, so its sliding window
and the image input wait). :func:`chain_timing` therefore steps a model of every block's
valid/ready control (the same registers and conditions as its ``elaborate``, nothing else)
with the input always valid and the output always ready, and reports the cycles from the
first input beat to the first output beat (tests/lower/test_timing.py checks it against the
Amaranth simulator and Verilator).
"""
from __future__ import annotations

__all__ = ["chain_timing", "chain_latency_ii", "window_mac_ii", "window_refill", "leaf_blocks"]

# stop stepping after this many cycles (the caller falls back to the sum of the latencies)
MAX_CYCLES = 2_000_000


class _Pipeline:
    """``stall_pipeline`` blocks (Dense, XnorDense, Requantizer, WindowPool): a ``latency``-bit
    valid shift register advanced by ``ce = ~o.valid | o.ready`` (also ``i.ready``)."""

    def __init__(self, latency):
        self.v = [0] * latency

    def valid(self):
        return self.v[-1]

    def ready(self, out_ready):
        return (not self.v[-1]) or out_ready

    def step(self, fire_in, out_ready):
        if (not self.v[-1]) or out_ready:
            self.v = [int(fire_in)] + self.v[:-1]


class _FIFO:
    """:class:`~ddnhw.hw.StreamFIFO` (``SyncFIFOBuffered``: inner FIFO + output register)."""

    def __init__(self, depth):
        self.inner_depth, self.level, self.r_rdy = depth - 1, 0, 0

    def valid(self):
        return self.r_rdy

    def ready(self, out_ready):
        return self.level != self.inner_depth

    def step(self, fire_in, out_ready):
        read = self.level != 0 and ((not self.r_rdy) or out_ready)
        self.level += int(fire_in) - int(read)
        if read:
            self.r_rdy = 1
        elif out_ready:
            self.r_rdy = 0


class _Collector:
    def __init__(self, beats):
        self.beats, self.count, self.ov = beats, 0, 0

    def valid(self):
        return self.ov

    def ready(self, out_ready):
        return not self.ov

    def step(self, fire_in, out_ready):
        if self.ov and out_ready:
            self.ov = 0
        if fire_in:
            if self.count == self.beats - 1:
                self.count, self.ov = 0, 1
            else:
                self.count += 1


class _SlidingWindow:
    def __init__(self, b):
        self.H, self.W, self.KH = b.height, b.width, b.kh
        self.S, self.P, self.OH, self.OW = b.stride, b.padding, b.out_h, b.out_w
        self.in_x = self.in_y = self.in_done = 0
        self.out_x = self.out_y = self.out_done = self.ov = 0
        self.y0 = -self.P

    def valid(self):
        return self.ov

    def ready(self, out_ready):
        return (not self.in_done) and (self.out_done or self.in_y < self.y0 + self.KH)

    def step(self, fire_in, out_ready):
        rows = self.in_done or self.in_y >= self.y0 + self.KH
        emit = (not self.out_done) and rows and ((not self.ov) or out_ready)
        both_done = self.in_done and self.out_done
        if fire_in:
            if self.in_x == self.W - 1:
                self.in_x = 0
                if self.in_y == self.H - 1:
                    self.in_y, self.in_done = 0, 1
                else:
                    self.in_y += 1
            else:
                self.in_x += 1
        if emit:
            self.ov = 1
            if self.out_x == self.OW - 1:
                self.out_x = 0
                if self.out_y == self.OH - 1:
                    self.out_done = 1
                else:
                    self.out_y += 1
                    self.y0 += self.S
            else:
                self.out_x += 1
        elif out_ready:
            self.ov = 0
        if both_done:
            self.in_done = self.out_done = self.out_y = 0
            self.y0 = -self.P


class _FoldedDense:
    def __init__(self, sf, nf, requant):
        self.sf, self.nf, self.rq = sf, nf, requant
        self.busy = self.s = self.g = 0
        self.r = self.bb = self.c = (0, 0, 0)        # (valid, last, end) per stage
        self.d = (0, 0)                                # requant stage (valid, end)
        self.ov = 0

    def valid(self):
        return self.ov

    def _out_load(self):
        if self.rq:
            return self.d[0] and self.d[1]
        return self.c[0] and self.c[1] and self.c[2]

    def _ce(self, out_ready):
        return not (self._out_load() and self.ov and not out_ready)

    def _a_last(self):
        return self.s == self.sf - 1 and self.g == self.nf - 1

    def ready(self, out_ready):
        return self._ce(out_ready) and ((not self.busy) or self._a_last())

    def step(self, fire_in, out_ready):
        ce, a_last_s, a_last = self._ce(out_ready), self.s == self.sf - 1, self._a_last()
        out_load, busy = self._out_load(), self.busy
        if ce and self.busy:
            if a_last_s:
                self.s, self.g = 0, self.g + 1
            else:
                self.s += 1
            if a_last:
                self.busy, self.g = 0, 0
        if fire_in:
            self.busy, self.s, self.g = 1, 0, 0
        if ce:
            c = self.c
            self.c, self.bb = self.bb, self.r
            self.r = (busy, a_last_s, a_last)
            if self.rq:
                self.d = (c[0] and c[1], c[2])
        if out_ready:
            self.ov = 0
        if ce and out_load:
            self.ov = 1


def leaf_blocks(blocks):
    """``blocks`` with every :class:`~ddnhw.hw.window.Chain` replaced by its blocks."""
    out = []
    for b in blocks:
        if type(b).__name__ == "Chain":
            out.extend(leaf_blocks(b.blocks))
        else:
            out.append(b)
    return out


def _model(b):
    kind = type(b).__name__
    if kind in ("Dense", "XnorDense", "Requantizer", "WindowPool"):
        return _Pipeline(int(b.latency))
    if kind == "StreamFIFO":
        return _FIFO(b.depth)
    if kind == "Collector":
        return _Collector(b.beats)
    if kind == "SlidingWindow":
        return _SlidingWindow(b)
    if kind == "FoldedDense":
        return _FoldedDense(b.sf, b.nf, b.requant is not None)
    return None


def chain_timing(blocks, beats_per_input, inputs=1, max_cycles=MAX_CYCLES):
    """Handshake cycles of ``inputs`` inputs (``beats_per_input`` beats each, always valid)
    through the chain ``blocks`` (output always ready): ``{"in": [cycle of each input beat],
    "out": [cycle of each output beat]}`` (cycles from reset, as
    :func:`ddnhw.hw.sim.run_beats` logs them), or None when a block has no control model or
    the outputs take more than ``max_cycles``. Every input yields one output beat."""
    models = [_model(b) for b in leaf_blocks(blocks)]
    if not models or any(m is None for m in models):
        return None
    return _run(models, beats_per_input, inputs, inputs, max_cycles)


def chain_latency_ii(blocks, beats_per_input, inputs=4):
    """``(latency, ii)`` of the chain ``blocks``: cycles from the first input beat to the first
    output beat, and between the last two of ``inputs`` back-to-back inputs' outputs (the
    steady state); None when :func:`chain_timing` has no answer."""
    log = chain_timing(blocks, beats_per_input, inputs)
    if log is None:
        return None
    return log["out"][0] - log["in"][0], log["out"][-1] - log["out"][-2]


def window_refill(window) -> int:
    """A MAC II from which a :class:`~ddnhw.hw.window.SlidingWindow` always has the next window
    ready when the MAC takes it: the rows written between two output rows (or images) take
    fewer cycles than one window's MAC time."""
    return max(window.stride, window.kh) * window.width + 8


def window_mac_ii(window, mac_ii, requant=False, inputs=4, simulate=False):
    """Cycles per image of a :class:`~ddnhw.hw.window.SlidingWindow` feeding a MAC that accepts
    one window every ``mac_ii`` cycles (1: an unrolled Dense; a
    :class:`~ddnhw.hw.FoldedDense` of that II, with fused ``requant``), in the steady state.
    Its line buffer holds ``kh`` rows only, so input and windows overlap partly; one-row
    images (1-D signals) do not overlap at all. From :func:`window_refill` on, that is
    ``beats_out * mac_ii``; below (or with ``simulate``), stepped as :func:`chain_timing`."""
    if not simulate and mac_ii >= window_refill(window):
        return window.beats_out * mac_ii    # the MAC is the bottleneck at every window
    win = _SlidingWindow(window)
    mac = _Pipeline(1) if mac_ii == 1 else _FoldedDense(int(mac_ii), 1, requant)
    n = window.beats_out
    log = _run([win, mac], window.beats_in, inputs, inputs * n, MAX_CYCLES)
    return None if log is None else log["out"][-1] - log["out"][-1 - n]


def _run(models, beats_per_input, inputs, n_out, max_cycles):
    total = beats_per_input * inputs
    log = {"in": [], "out": []}
    for cyc in range(max_cycles):
        valid = [len(log["in"]) < total] + [m.valid() for m in models]
        ready = [True] * (len(models) + 1)      # ready[k]: block k's input (k = n: the output)
        for k in range(len(models) - 1, -1, -1):
            ready[k] = models[k].ready(ready[k + 1])
        fire = [bool(v and r) for v, r in zip(valid, ready)]
        for k, m in enumerate(models):
            m.step(fire[k], ready[k + 1])
        if fire[0]:
            log["in"].append(cyc)
        if fire[-1]:
            log["out"].append(cyc)
            if len(log["out"]) == n_out:
                return log
    return None
