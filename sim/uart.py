"""A simulated serial port for cocotb: the host runtime's own code talks to an RTL board top.

:class:`SimSerial` looks like a ``pyserial.Serial`` (``write``, ``read``, ``timeout``,
``in_waiting``, ``clock``) to code running in a :func:`cocotb.task.bridge` thread. ``write()`` hands the
bytes to a coroutine that drives them onto the DUT's ``rx`` pin, bit by bit at the baud rate
(8N1, LSB first); another coroutine deserializes the DUT's ``tx`` pin, and ``read(n)`` returns
when ``n`` bytes have arrived or ``timeout`` seconds of *simulated* time have passed. Time is
simulated time throughout (``clock()`` too), so timeouts, throughput and latency are the ones the
RTL would show at the simulated clock and baud rate.
"""
from __future__ import annotations

import cocotb
from cocotb.task import resume
from cocotb.queue import Queue
from cocotb.triggers import Event, FallingEdge, First, Timer
from cocotb.utils import get_sim_time

__all__ = ["SimSerial"]


class SimSerial:
    """8N1 serial line to ``rx``/``tx`` pins with ``bit_ns`` nanoseconds per bit.

    Call :meth:`start` from a coroutine before using it from a bridge thread.
    """

    name = "sim-serial"

    def __init__(self, rx, tx, bit_ns: int, clk=None):
        self.rx, self.tx, self.bit_ns, self.clk = rx, tx, int(bit_ns), clk
        self.timeout = 1.0
        self.received = bytearray()      # bytes from tx not yet read
        self.sent_bytes = 0
        self.framing_errors = 0
        self._out = Queue()
        self._arrived = Event()
        self._tasks = []

    def start(self):
        self.rx.value = 1
        self._tasks = [cocotb.start_soon(self._drive()), cocotb.start_soon(self._monitor())]

    def stop(self):
        for task in self._tasks:
            task.cancel()

    # -- coroutines on the simulator side ------------------------------------------------
    async def _drive(self):
        while True:
            data = await self._out.get()
            if self.clk is not None:
                await FallingEdge(self.clk)   # keep edges away from the sampling clock edge
            for byte in data:
                for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                    self.rx.value = bit
                    await Timer(self.bit_ns, unit="ns")
                self.sent_bytes += 1

    async def _monitor(self):
        while True:
            await FallingEdge(self.tx)
            await Timer(self.bit_ns // 2, unit="ns")
            if int(self.tx.value):
                continue                       # a glitch, not a start bit
            byte = 0
            for k in range(8):
                await Timer(self.bit_ns, unit="ns")
                byte |= int(self.tx.value) << k
            await Timer(self.bit_ns, unit="ns")
            if not int(self.tx.value):
                self.framing_errors += 1
                continue
            self.received.append(byte)
            self._arrived.set()

    async def _write(self, data):
        await self._out.put(bytes(data))

    async def _read(self, n):
        deadline = get_sim_time("ns") + self.timeout * 1e9
        while len(self.received) < n:
            left = deadline - get_sim_time("ns")
            if left <= 0:
                break
            self._arrived.clear()
            await First(self._arrived.wait(), Timer(max(1, round(left)), unit="ns"))
        data = bytes(self.received[:n])
        del self.received[:n]
        return data

    # -- the pyserial face (call from a cocotb.bridge thread) ---------------------------
    def write(self, data):
        resume(self._write)(data)
        return len(data)

    def read(self, n=1):
        return resume(self._read)(n)

    @property
    def in_waiting(self):
        return len(self.received)

    def clock(self):
        return get_sim_time("ns") * 1e-9

    def close(self):
        pass
