"""cocotb bus-functional models for ``amaranth.lib.stream`` ports (valid/ready/payload).

Timing discipline (the same on Icarus and Verilator): every signal is driven right after the
falling clock edge; the handshake is sampled in ``ReadOnly()`` of that same time step, where all
combinational logic has settled and nothing changes until the next rising edge captures it. (On
Verilator, a callback at the rising edge already sees post-edge values, so sampling "at" the rising
edge would be simulator dependent.)

* :class:`StreamDriver` asserts ``valid`` without looking at ``ready``, holds the payload stable
  until the handshake, and inserts random idle cycles with probability ``idle_prob``.
* :class:`StreamMonitor` drives ``ready`` low with probability ``stall_prob`` (random backpressure)
  and records every accepted payload; an optional callback gets each beat as it arrives.

Both are seeded: the same seed gives the same cycle-by-cycle stimulus.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from cocotb.triggers import Event, FallingEdge, ReadOnly, RisingEdge

__all__ = ["StreamDriver", "StreamMonitor", "reset"]


def _check_prob(name, p):
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), not {p!r}")


async def reset(clk, rst, cycles: int = 2) -> None:
    """Hold ``rst`` high for ``cycles`` rising edges; release it after a falling edge."""
    rst.value = 1
    for _ in range(cycles):
        await RisingEdge(clk)
    await FallingEdge(clk)
    rst.value = 0


class StreamDriver:
    """Drives ``<prefix>__valid``/``__payload`` of ``dut`` from a sequence of payload ints."""

    def __init__(self, dut, clk, prefix: str = "i", *, idle_prob: float = 0.0, seed: int = 0):
        _check_prob("idle_prob", idle_prob)
        self.clk = clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.idle_prob = idle_prob
        self.rng = random.Random(seed)
        self.sent = 0
        self.cycles = 0
        self.valid.value = 0

    async def send(self, payloads: Iterable[int]) -> None:
        """Send every payload; returns after the last handshake (with ``valid`` low again)."""
        for word in payloads:
            await FallingEdge(self.clk)
            while self.idle_prob and self.rng.random() < self.idle_prob:
                self.valid.value = 0
                await FallingEdge(self.clk)
            self.payload.value = word
            self.valid.value = 1
            while True:
                await ReadOnly()
                if self.ready.value == 1:
                    break
                await FallingEdge(self.clk)
            await RisingEdge(self.clk)  # the handshake happens at this edge
            self.sent += 1
        await FallingEdge(self.clk)
        self.valid.value = 0


class StreamMonitor:
    """Drives ``<prefix>__ready`` with random backpressure and collects accepted payloads."""

    def __init__(self, dut, clk, prefix: str = "o", *, stall_prob: float = 0.0, seed: int = 0,
                 callback: Callable[[int, int], None] | None = None):
        _check_prob("stall_prob", stall_prob)
        self.clk = clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.stall_prob = stall_prob
        self.rng = random.Random(seed ^ 0x5EED)
        self.callback = callback
        self.beats: list[int] = []
        self.cycles = 0
        self.done = Event()
        self.ready.value = 0

    async def receive(self, count: int) -> list[int]:
        """Accept ``count`` beats (drives ``ready`` low afterwards) and return them as ints."""
        while len(self.beats) < count:
            await FallingEdge(self.clk)
            ready = not (self.stall_prob and self.rng.random() < self.stall_prob)
            self.ready.value = int(ready)
            await ReadOnly()
            self.cycles += 1
            if ready and self.valid.value == 1:
                value = self.payload.value
                if not value.is_resolvable:
                    raise AssertionError(f"beat {len(self.beats)}: o payload is {value} while valid")
                word = value.to_unsigned()
                self.beats.append(word)
                if self.callback is not None:
                    self.callback(len(self.beats) - 1, word)
            await RisingEdge(self.clk)
        await FallingEdge(self.clk)
        self.ready.value = 0
        self.done.set()
        return self.beats
