"""The board top's RTL at volume: the host runtime against the Verilator model of
:class:`ddnhw.board.link.UARTLink` (UART, framing, CRC, the core) with the bit-level UART in C++.

The cocotb link test (``sim/tb_link.py``) drives the UART pins from Python, bit by bit: about a
hundred frames a minute. Here ``sim/link_sim.cpp`` clocks the model, drives ``rx`` and
deserializes ``tx`` itself, and the Python side (:class:`RtlPort`, a pyserial-like port) only
says which bytes to send and how long to wait for replies, so the same host code
(:class:`ddnhw.host.Link`) runs 10^5 frames through the RTL in minutes.

:class:`RtlPort` can damage frames both ways (``error_rate``, :func:`ddnhw.host.fuzz.damage`):
frames the host writes on their way to the RTL's ``rx`` pin, and the RTL's replies, which it
splits into frames (every frame the RTL sends must be well formed: ``malformed_reply_bytes``
counts any that is not) before damaging them on their way to the host.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import struct
import subprocess
import time
from collections import Counter
from pathlib import Path

from ddnhw import DdnhwError
from ddnhw.atomic import file_lock
from ddnhw.board import protocol as P

from .cosim import VERILATOR_OPT, _tail, _verilator_make_fix, check_simulator, find_testbench
from .cosim_link import TOP, link_verilog

__all__ = ["build_link_sim", "RtlPort", "fuzz_link_rtl"]

CLOCK_NS = 10           # the simulated clock: 100 MHz, as in sim/tb_link.py


def build_link_sim(graph, build_dir, *, divisor=4) -> Path:
    """Build (or reuse) the Verilator executable of ``graph``'s board top with the C++ UART
    driver; returns its path."""
    check_simulator("verilator")
    root = Path(build_dir).resolve()
    verilog = link_verilog(graph, root / "rtl", divisor=divisor)
    cpp = find_testbench() / "link_sim.cpp"
    # the model runs 10^8 cycles in the bench: optimize it (DDNHW_LINKSIM_OPT; the cosim
    # builds' DDNHW_VERILATOR_OPT, often -O0 for compile time, is not used here)
    opt = os.environ.get("DDNHW_LINKSIM_OPT", VERILATOR_OPT)
    h = hashlib.sha256(verilog.read_bytes() + cpp.read_bytes() + opt.encode()).hexdigest()[:16]
    bdir = root / f"linksim-{h}"
    exe = bdir / "obj" / "link_sim"
    with file_lock(root / f".linksim-{h}.lock"):
        if (bdir / "ok").exists():
            return exe
        shutil.rmtree(bdir, ignore_errors=True)
        bdir.mkdir(parents=True)
        log = bdir / "build.log"
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", "1", "-Wno-fatal", "-Wno-lint",
               "--top-module", TOP, "-Mdir", str(bdir / "obj"), "-o", "link_sim",
               str(verilog), str(cpp)]
        old = os.environ.get("DDNHW_VERILATOR_OPT")
        os.environ["DDNHW_VERILATOR_OPT"] = opt
        try:
            with _verilator_make_fix("verilator"), open(log, "w") as f:
                r = subprocess.run(cmd, cwd=bdir, stdout=f, stderr=subprocess.STDOUT)
        finally:
            if old is None:
                os.environ.pop("DDNHW_VERILATOR_OPT")
            else:
                os.environ["DDNHW_VERILATOR_OPT"] = old
        if r.returncode or not exe.exists():
            raise DdnhwError(f"link sim: Verilator build of {verilog} failed (exit "
                             f"{r.returncode}); log {log}:\n{_tail(log)}")
        (bdir / "ok").write_text(str(verilog))
    return exe


class RtlPort:
    """A pyserial-like port (``write``, ``read``, ``timeout``, ``clock``) to the board top running
    in :func:`build_link_sim`'s executable. Time is simulated (``CLOCK_NS`` per cycle): the
    model runs only while the host waits in :meth:`read`, as the cocotb bridge does.
    ``error_rate``: each frame is damaged (:func:`ddnhw.host.fuzz.damage`) with this
    probability, on its way to the RTL and (``damage_replies``) on its way back."""

    name = "rtl-link"

    def __init__(self, exe, *, divisor=4, error_rate=0.0, seed=0, damage_replies=True,
                 kinds=None):
        from ddnhw.host.fuzz import DAMAGE
        self.proc = subprocess.Popen([str(exe), str(int(divisor))], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        self.error_rate, self.damage_replies = float(error_rate), damage_replies
        self.kinds = tuple(kinds or DAMAGE)
        self.rng = random.Random(seed)
        self.timeout = 1e-3
        self.cycle = 0
        self.host_rx = bytearray()          # bytes the host has yet to read
        self.splitter = P.FrameDecoder(max_len=P.MAX_LEN)
        self.frames = Counter()
        self.damage = {"to_device": Counter(), "to_host": Counter()}

    def _damage(self, frame, direction):
        from ddnhw.host.fuzz import damage
        self.frames[direction] += 1
        if self.error_rate and self.rng.random() < self.error_rate:
            kind, frame = damage(frame, self.rng, self.kinds)
            self.damage[direction][kind] += 1
        return frame

    def write(self, data):
        data = self._damage(bytes(data), "to_device")
        if data:
            self.proc.stdin.write(b"W" + struct.pack("<I", len(data)) + data)
        return len(data)

    def _run(self, want, cycles):
        self.proc.stdin.write(b"R" + struct.pack("<IQ", want, max(0, int(cycles))))
        self.proc.stdin.flush()
        head = self.proc.stdout.read(12)
        if len(head) != 12:
            raise DdnhwError(f"link sim: the simulator stopped (exit {self.proc.poll()})")
        self.cycle, k = struct.unpack("<QI", head)
        data = self.proc.stdout.read(k)
        for frame in self.splitter.feed(data):
            raw = P.encode_frame(frame.type, frame.seq, frame.payload)
            self.host_rx += self._damage(raw, "to_host") if self.damage_replies else raw
        return k

    def read(self, n=1):
        deadline = self.cycle + round(self.timeout * 1e9 / CLOCK_NS)
        while len(self.host_rx) < n and self.cycle < deadline:
            # whole frames only come out of the splitter: ask for at least the missing bytes
            self._run(max(1, n - len(self.host_rx)), deadline - self.cycle)
        data = bytes(self.host_rx[:n])
        del self.host_rx[:n]
        return data

    def clock(self):
        return self.cycle * CLOCK_NS * 1e-9

    @property
    def malformed_reply_bytes(self):
        """Bytes from the RTL's tx that were not part of a well-formed frame."""
        return self.splitter.dropped_bytes + len(self.splitter.buf)

    def status(self):
        self.proc.stdin.write(b"C")
        self.proc.stdin.flush()
        cycle, framing, queued = struct.unpack("<QQI", self.proc.stdout.read(20))
        return {"cycle": cycle, "framing_errors": framing, "queued_bytes": queued}

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"Q")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fuzz_link_rtl(graph, n, *, build_dir, seed=0, error_rate=0.2, retries=8, window=4,
                  divisor=4, timeout_s=60e-6, chunk=2000, confirm=False, progress=None) -> dict:
    """:func:`ddnhw.host.fuzz.fuzz_link` through the RTL: ``n`` random vectors of ``graph``
    through :class:`ddnhw.host.Link` and the Verilator board top, frames damaged both ways with
    probability ``error_rate``; every delivered answer compared with the golden model.
    ``progress(vectors done, counts so far)`` is called after every ``chunk``."""
    from ddnhw.host.fuzz import deliver_and_count, fuzz_vectors
    from ddnhw.host.link import Link
    exe = build_link_sim(graph, build_dir, divisor=divisor)
    port = RtlPort(exe, divisor=divisor, error_rate=error_rate, seed=seed)
    t0 = time.perf_counter()
    try:
        link = Link(port, baud=round(1e9 / CLOCK_NS / divisor), timeout=timeout_s,
                    retries=retries, window=window, confirm=confirm)
        link.check(graph)
        counts = deliver_and_count(link, graph, fuzz_vectors(graph, n, seed), chunk, progress)
        status = port.status()
    finally:
        port.close()
    st = link.stats
    frames = sum(port.frames.values())
    damaged = sum(sum(c.values()) for c in port.damage.values())
    sim_s = port.cycle * CLOCK_NS * 1e-9
    return {**counts, "frames_on_wire": dict(port.frames),
            "frames_damaged": {d: dict(c) for d, c in port.damage.items()},
            "frame_error_rate": round(damaged / max(frames, 1), 4),
            "host_frames_sent": st.frames_sent, "retries": st.retries, "timeouts": st.timeouts,
            "device_errors": dict(st.errors), "host_bad_reply_frames": st.bad_reply_frames,
            "crc_checks_failed_host": st.reply_crc_failures,
            "stale_replies": st.stale_replies, "malformed_reply_bytes": port.malformed_reply_bytes,
            "uart_framing_errors": status["framing_errors"], "cycles": status["cycle"],
            "simulated_seconds": round(sim_s, 4),
            "vectors_per_simulated_second": round(n / sim_s, 1) if sim_s else None,
            "baud": round(1e9 / CLOCK_NS / divisor), "wall_seconds": round(
                time.perf_counter() - t0, 1),
            "error_rate": error_rate, "retries_per_frame": retries, "window": window,
            "confirm": confirm, "protocol_version": P.VERSION}
