"""Stream layouts of a DUT and the packing of lane vectors into payload words (and back).

Lane ``k`` of a payload occupies bits ``[k*bits, (k+1)*bits)``, lane 0 at the LSB; the packing
itself is :mod:`ddnhw.hw.lanes` (the one routine, shared with the Amaranth-simulator driver and
the board link protocol). This module adds the manifest's port layouts, range-checked packing
and the hex files of the cosimulation harness.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddnhw import DdnhwError
from ddnhw.hw.lanes import Lanes, pack_bytes, pack_hex, pack_words, unpack_hex

__all__ = ["Lanes", "StreamLayout", "port_lanes", "pack", "unpack", "write_hex", "read_hex",
           "write_records"]


def port_lanes(d, what: str) -> Lanes:
    """Read a manifest port entry. Accepted keys: ``lanes`` or ``shape``; ``bits``/``width``/
    ``elem_bits`` and ``signed``, either directly or in a nested ``type``/``dtype`` dict."""
    if not isinstance(d, dict):
        raise DdnhwError(f"manifest: {what} port must be an object, got {d!r}")
    t = d.get("type", d.get("dtype", d.get("elem", d)))
    if not isinstance(t, dict):
        t = d
    lanes = d.get("lanes")
    if lanes is None and "shape" in d:
        lanes = int(np.prod(d["shape"]))
    bits = t.get("bits", t.get("elem_bits", t.get("width")))
    signed = t.get("signed")
    if lanes is None or bits is None or signed is None:
        raise DdnhwError(f"manifest: {what} port needs lanes/shape, bits and signed; got {d!r}")
    return Lanes(int(lanes), int(bits), bool(signed))


@dataclass(frozen=True)
class StreamLayout:
    """The DUT's top module name and the lane layouts of its ``i`` and ``o`` streams."""

    top: str
    i: Lanes
    o: Lanes

    @classmethod
    def from_manifest(cls, manifest, verilog=None) -> "StreamLayout":
        """From a manifest dict, a path to ``manifest.json``, or a ``StreamLayout``.

        Understood forms (first match wins): ``{"ports": {"i": {...}, "o": {...}}}``,
        ``{"input": {...}, "output": {...}}``, ``{"inputs": [{...}], "outputs": [{...}]}``.
        The top module name comes from ``top``/``name``/``module``, else the Verilog file stem.
        """
        if isinstance(manifest, StreamLayout):
            return manifest
        if isinstance(manifest, (str, Path)):
            path = Path(manifest)
            try:
                manifest = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise DdnhwError(f"manifest: cannot read {path}: {e}") from None
        if not isinstance(manifest, dict):
            raise DdnhwError(f"manifest must be a dict or a path, not {type(manifest).__name__}")
        m = manifest
        if isinstance(m.get("ports"), dict) and "i" in m["ports"] and "o" in m["ports"]:
            pi, po = m["ports"]["i"], m["ports"]["o"]
        elif "input" in m and "output" in m:
            pi, po = m["input"], m["output"]
        elif m.get("inputs") and m.get("outputs") and isinstance(m["inputs"], list):
            pi, po = m["inputs"][0], m["outputs"][0]
        else:
            raise DdnhwError("manifest: no stream ports found (expected ports.i/ports.o, "
                             f"input/output or inputs/outputs); keys: {sorted(m)}")
        top = m.get("top") or m.get("module") or m.get("name")
        if not isinstance(top, str) or not top:
            if verilog is None:
                raise DdnhwError("manifest: no top module name (top/name) and no Verilog file")
            top = Path(verilog).stem
        return cls(top, port_lanes(pi, "input"), port_lanes(po, "output"))


def pack(values, lanes: Lanes) -> list[int]:
    """Rows of lane values ``(N, lanes)`` to payload integers; raises on out-of-range values."""
    return pack_words(lanes.check(values), lanes)


def unpack(lines, lanes: Lanes) -> np.ndarray:
    """Hex payload strings (as written by ``$fwrite("%h")``) to ``(N, lanes)`` int64."""
    return unpack_hex(lines, lanes)


def write_hex(path, values, lanes: Lanes) -> int:
    """Write rows as one hex payload per line (for ``$readmemh``); returns the row count."""
    v = lanes.check(values)
    Path(path).write_text("".join(h + "\n" for h in pack_hex(v, lanes)))
    return len(v)


def write_records(path, values, lanes: Lanes) -> int:
    """Write rows as the bulk harness's binary input (``sim/harness.v``, ``$fread``): one
    big-endian record of ``lanes.nbytes`` bytes per row; returns the row count."""
    v = lanes.check(values)
    Path(path).write_bytes(pack_bytes(v, lanes)[:, ::-1].tobytes())
    return len(v)


def read_hex(path, lanes: Lanes) -> np.ndarray:
    return unpack(Path(path).read_text().split(), lanes)
