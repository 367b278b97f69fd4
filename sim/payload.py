"""Stream layouts of a DUT and the packing of lane vectors into payload words (and back).

Lane ``k`` of a payload occupies bits ``[k*bits, (k+1)*bits)``, lane 0 at the LSB. Packing and
unpacking are vectorised with NumPy, so a million beats cost well under a second.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddnhw import DdnhwError

__all__ = ["Lanes", "StreamLayout", "pack", "unpack", "write_hex", "read_hex"]


@dataclass(frozen=True)
class Lanes:
    """``lanes`` integers of ``bits`` bits each, two's complement if ``signed``."""

    lanes: int
    bits: int
    signed: bool

    def __post_init__(self):
        if not isinstance(self.lanes, int) or self.lanes < 1:
            raise ValueError(f"lanes must be a positive int, not {self.lanes!r}")
        if not isinstance(self.bits, int) or not 1 <= self.bits <= 63:
            raise ValueError(f"bits must be an int in 1..63, not {self.bits!r}")

    @property
    def width(self) -> int:
        return self.lanes * self.bits

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @classmethod
    def from_dict(cls, d, what: str) -> "Lanes":
        """Read a port entry. Accepted keys: ``lanes`` or ``shape``; ``bits``/``width``/
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
        return cls(int(lanes), int(bits), bool(signed))


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
        return cls(top, Lanes.from_dict(pi, "input"), Lanes.from_dict(po, "output"))


def pack(values, lanes: Lanes) -> list[int]:
    """Rows of lane values ``(N, lanes)`` to payload integers; raises on out-of-range values."""
    v = np.asarray(values, dtype=np.int64)
    if v.ndim == 1 and lanes.lanes == 1:
        v = v[:, None]
    v = v.reshape(v.shape[0], -1)
    if v.shape[1] != lanes.lanes:
        raise ValueError(f"expected {lanes.lanes} lanes per vector, got {v.shape[1]}")
    if v.size and (v.min() < lanes.lo or v.max() > lanes.hi):
        raise ValueError(f"input values outside [{lanes.lo}, {lanes.hi}] "
                         f"({'signed' if lanes.signed else 'unsigned'} {lanes.bits} bits)")
    return [int(h, 16) for h in _to_hex(v, lanes)]


def _to_hex(v: np.ndarray, lanes: Lanes) -> list[str]:
    n = v.shape[0]
    u = (v & ((1 << lanes.bits) - 1)).astype(np.uint64)
    bits = ((u[:, :, None] >> np.arange(lanes.bits, dtype=np.uint64)) & 1).astype(np.uint8)
    bits = bits.reshape(n, lanes.width)
    nbytes = (lanes.width + 7) // 8
    pad = nbytes * 8 - lanes.width
    if pad:
        bits = np.concatenate([bits, np.zeros((n, pad), np.uint8)], axis=1)
    by = np.packbits(bits, axis=1, bitorder="little")[:, ::-1]  # big-endian bytes
    digits = (lanes.width + 3) // 4
    hexes = [row.tobytes().hex() for row in by]
    return [h[len(h) - digits:] for h in hexes]


def unpack(lines, lanes: Lanes) -> np.ndarray:
    """Hex payload strings (as written by ``$fwrite("%h")``) to ``(N, lanes)`` int64."""
    n = len(lines)
    if n == 0:
        return np.zeros((0, lanes.lanes), np.int64)
    nbytes = (lanes.width + 7) // 8
    try:
        raw = b"".join(bytes.fromhex(h.strip().rjust(2 * nbytes, "0")[-2 * nbytes:])
                       for h in lines)
    except ValueError:
        bad = next(i for i, h in enumerate(lines) if not _is_hex(h.strip()))
        raise DdnhwError(f"cosim: output beat {bad} is not a clean hex value: {lines[bad].strip()!r} "
                         "(X/Z on o__payload while o__valid?)") from None
    by = np.frombuffer(raw, np.uint8).reshape(n, nbytes)[:, ::-1]
    bits = np.unpackbits(by, axis=1, bitorder="little")[:, :lanes.width]
    bits = bits.reshape(n, lanes.lanes, lanes.bits).astype(np.int64)
    out = (bits << np.arange(lanes.bits, dtype=np.int64)).sum(axis=2)
    if lanes.signed:
        m = np.int64(1 << (lanes.bits - 1))
        out = (out ^ m) - m
    return out


def _is_hex(s: str) -> bool:
    try:
        int(s, 16)
        return True
    except ValueError:
        return False


def write_hex(path, values, lanes: Lanes) -> int:
    """Write rows as one hex payload per line (for ``$readmemh``); returns the row count."""
    v = np.asarray(values, dtype=np.int64).reshape(len(values), -1)
    pack(v[:1], lanes) if len(v) else None  # validates shape
    if v.size and (v.min() < lanes.lo or v.max() > lanes.hi):
        raise ValueError(f"input values outside [{lanes.lo}, {lanes.hi}]")
    Path(path).write_text("".join(h + "\n" for h in _to_hex(v, lanes)) if len(v) else "")
    return len(v)


def read_hex(path, lanes: Lanes) -> np.ndarray:
    text = Path(path).read_text()
    return unpack(text.split(), lanes)
