"""Typed lowering options: one frozen object that travels from the API to every block factory.

:func:`~ddnhw.lower.network.build_network` and :func:`~ddnhw.lower.network.generate` take the
options as keywords and turn them into a :class:`LowerOptions` with :meth:`LowerOptions.of`,
which raises :class:`LowerOptionError` naming every unknown keyword (with the closest known
name), so a misspelled option never goes unnoticed.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, fields

from ddnhw import DdnhwError

__all__ = ["LowerOptions", "LowerOptionError", "DENSE_STYLES", "BINARY_STYLES",
           "WEIGHT_DECODES", "FIFO_MODES"]

# values of the string options (the blocks check them again; these give an early error)
DENSE_STYLES = ("cse", "shiftadd", "mul")
BINARY_STYLES = ("xnor", "dense")
WEIGHT_DECODES = ("direct", "table", "constmul", "auto")
FIFO_MODES = ("auto", "none")


class LowerOptionError(DdnhwError, ValueError):
    """An unknown lowering option, or a known one with a bad value; the message names it."""


@dataclass(frozen=True)
class LowerOptions:
    """How a graph becomes blocks. Fields (all optional):

    ``regs_every`` (int >= 1, default 2): pipeline registers in unrolled MACs every that many
    adder levels. ``dense_style`` (``"cse"``/``"shiftadd"``/``"mul"``): how unrolled
    :class:`~ddnhw.hw.Dense` layers multiply by their constant weights. ``binary_style``
    (``"xnor"``: a dense layer with binary weights on a bipolar input becomes an
    :class:`~ddnhw.hw.xnor.XnorDense`; ``"dense"``: it stays a Dense). ``weight_decode``: how a
    folded layer stores its weights (:class:`~ddnhw.hw.FoldedDense`'s ``decode``).
    ``fuse_requant`` (bool, default True): a folded dense/conv layer computes the requant node
    that is its only consumer. ``fifos``: ``"auto"`` (a rate FIFO after every block whose
    consumer is slower, :func:`~ddnhw.passes.fifo.fifo_depth`), ``"none"``, or ``{producer
    layer name: depth}`` (chains only). ``family`` (``"ice40"``/``"ecp5"``): the calibration
    of the resource estimates in the manifest.

    Explicit overrides (for the API and tests; a model annotated by :mod:`ddnhw.passes`
    carries these decisions in its nodes' ``hw`` attributes instead): ``folding`` (``{layer:
    (pe, simd) or None}``: exactly these layers fold, every other one is unrolled),
    ``gate_lanes`` (``{recurrent layer: lanes}``), ``skip_fifos`` (``{add node: depth}``).
    ``spram_model`` (default False): SPRAM memories as their Amaranth model (for the Amaranth
    simulator) instead of ``SB_SPRAM256KA`` instances.
    None: take the graph's annotations (or the defaults where it has none).
    """

    regs_every: int = 2
    dense_style: str = "cse"
    binary_style: str = "xnor"
    weight_decode: str = "direct"
    fuse_requant: bool = True
    fifos: object = "auto"
    family: str = "ice40"
    folding: dict | None = None
    gate_lanes: dict | None = None
    skip_fifos: dict | None = None
    spram_model: bool = False

    def __post_init__(self):
        for name, allowed in (("dense_style", DENSE_STYLES), ("binary_style", BINARY_STYLES),
                              ("weight_decode", WEIGHT_DECODES)):
            v = getattr(self, name)
            if v not in allowed:
                raise LowerOptionError(f"{name} must be one of {allowed}, not {v!r}")
        if not isinstance(self.fuse_requant, bool):
            raise LowerOptionError(f"fuse_requant must be True or False, not "
                                   f"{self.fuse_requant!r}")
        if not isinstance(self.fifos, dict) and self.fifos not in FIFO_MODES:
            raise LowerOptionError(f"fifos must be 'auto', 'none' or {{layer: depth}}, not "
                                   f"{self.fifos!r}")
        if not isinstance(self.family, str):
            raise LowerOptionError(f"family must be a family name, not {self.family!r}")
        for name in ("folding", "gate_lanes", "skip_fifos"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, dict):
                what = {"folding": "{layer: (pe, simd)}", "gate_lanes": "{layer: lanes}",
                        "skip_fifos": "{add node: depth}"}[name]
                raise LowerOptionError(f"{name} must be a dict {what}, not {v!r}")

    @classmethod
    def names(cls) -> tuple:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def of(cls, options=None, **kw) -> "LowerOptions":
        """``options`` (a :class:`LowerOptions`, or None for the defaults) with the keywords
        ``kw`` replacing its fields; an unknown keyword raises :class:`LowerOptionError`
        naming it."""
        known = cls.names()
        unknown = sorted(k for k in kw if k not in known)
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, known, n=1)
                hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise LowerOptionError(f"unknown lowering option{'s' if len(unknown) > 1 else ''} "
                                   f"{', '.join(hints)}; known: {', '.join(known)}")
        if options is None:
            return cls(**kw)
        if not isinstance(options, cls):
            raise LowerOptionError(f"options must be a LowerOptions, not {options!r}")
        return cls(**{**{f: getattr(options, f) for f in known}, **kw})
