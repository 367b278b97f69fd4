"""cocotb test of the complete board top (UART, framing, core) driven by the host runtime.

Configured by :func:`ddnhw.host.cosim_link.cosim_link` through the JSON file named by
``DDNHW_LINK_CONFIG``. The host code (:class:`ddnhw.host.Link`, :func:`ddnhw.host.run_and_check`)
runs unchanged in a :func:`cocotb.task.bridge` thread over ``uart.SimSerial``. The session:
identify the design (and reject a wrong one), run every input vector (a back-to-back burst of
``window`` frames), then, each followed by more vectors that must all come back exact: garbage
bytes, a frame with a corrupted CRC, a truncated frame, and a burst with a wide window.

Loaded by path, like ``tb_stream.py`` (``bfm.py`` and ``uart.py`` beside it), never as a package.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import numpy as np

import cocotb
from cocotb.task import bridge
from cocotb.clock import Clock

from bfm import reset
from uart import SimSerial

CLOCK_NS = 10


def _session(port, cfg):
    from ddnhw import DdnhwError
    from ddnhw.board import protocol as P
    from ddnhw.host import Link, run_and_check
    from ddnhw.ir import load_graph

    graph = load_graph(cfg["model"])
    x = np.load(cfg["inputs"])
    rng = random.Random(cfg["seed"])
    out = {"phases": {}}
    link = Link(port, baud=cfg["baud"], timeout=cfg["timeout"], retries=cfg["retries"],
                window=cfg["window"])

    ident = link.check(graph)
    out["ident"] = {"graph_hash": ident.graph_hash.hex(), "latency": ident.latency}
    if cfg.get("wrong_model"):
        try:
            link.check(load_graph(cfg["wrong_model"]))
            out["wrong_design_message"] = None
        except DdnhwError as e:
            out["wrong_design_message"] = str(e)

    def phase(name, rows, disturb=b"", window=None):
        before, retries = dict(link.stats.errors), link.stats.retries
        if disturb:
            port.write(disturb)
        if window is not None:
            link.window = window
        rep = run_and_check(link, graph, rows, check_ident=False)
        link.window = cfg["window"]
        after = dict(link.stats.errors)
        out["phases"][name] = {
            "n": rep.n, "mismatches": rep.mismatches, "outputs": rep.outputs.tolist(),
            "seconds": rep.seconds, "latency_median_s": float(np.median(rep.latency_s)),
            "device_errors": {k: after[k] - before.get(k, 0) for k in after
                              if after[k] != before.get(k, 0)},
            "retries": rep.stats["retries"] - retries,
        }

    phase("all", x)
    k = cfg["phase_rows"]
    pick = lambda s: x[s * k % len(x):][:k] if len(x) >= k else x  # noqa: E731
    garbage = bytes(rng.choice([P.SOF, 0x00, 0xFF, P.INFER, rng.randrange(256)])
                    for _ in range(40))
    phase("garbage", pick(1), garbage)
    frame = bytearray(P.encode_frame(P.INFER, 200, P.pack_vector(x[0], ident.in_bits)))
    bad_crc = bytes(frame[:-1]) + bytes([frame[-1] ^ 0x5A])
    phase("bad_crc", pick(2), bad_crc)
    phase("truncated", pick(3), bytes(frame[:len(frame) // 2]))
    phase("burst", pick(4), window=cfg["burst_window"])
    if cfg.get("fuzz_rows"):
        # every frame to the device damaged with probability fuzz_rate (bit flips, dropped,
        # duplicated and lost bytes/frames, truncation, garbage, wrong LEN); no confirmation:
        # the CRC-32 alone must keep every wrong answer out
        from ddnhw.host.fuzz import DamagingPort
        fuzzed = DamagingPort(port, cfg["fuzz_rate"], seed=cfg["seed"])
        flink = Link(fuzzed, baud=cfg["baud"], timeout=cfg["timeout"], retries=cfg["retries"],
                     window=cfg["window"], confirm=bool(cfg.get("fuzz_confirm", False)))
        flink.check(graph)
        rows = x[:cfg["fuzz_rows"]] if len(x) >= cfg["fuzz_rows"] else x
        want = __import__("ddnhw").golden.run(graph, rows)
        got, _ = flink.infer(rows, on_lost="skip")
        ok = np.ones(len(rows), bool)
        ok[flink.last_lost] = False
        out["fuzz"] = {"n": len(rows), "delivered": int(ok.sum()),
                       "lost_after_retries": len(flink.last_lost),
                       "wrong_accepted": int(np.sum(ok & np.any(got != want, axis=1))),
                       "delivered_twice": int(np.sum(flink.last_deliveries > 1)),
                       "frames_to_device": fuzzed.frames, "damaged": dict(fuzzed.damage),
                       "device_errors": dict(flink.stats.errors),
                       "retries": flink.stats.retries, "timeouts": flink.stats.timeouts,
                       "unconfirmed": flink.stats.unconfirmed}
    out["stats"] = {"frames_sent": link.stats.frames_sent, "retries": link.stats.retries,
                    "timeouts": link.stats.timeouts, "errors": dict(link.stats.errors)}
    return out


@cocotb.test()
async def link_session(dut):
    cfg = json.loads(Path(os.environ["DDNHW_LINK_CONFIG"]).read_text())
    port = SimSerial(dut.rx, dut.tx, cfg["divisor"] * CLOCK_NS, clk=dut.clk)
    dut.rx.value = 1
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    await reset(dut.clk, dut.rst, 3)
    port.start()
    t0 = time.perf_counter()
    result = await bridge(_session)(port, cfg)
    port.stop()
    result["wall_seconds"] = time.perf_counter() - t0
    result["framing_errors"] = port.framing_errors
    Path(cfg["result_json"]).write_text(json.dumps(result))
