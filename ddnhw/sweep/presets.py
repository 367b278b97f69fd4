"""Sweeps with a name: ``ddnhw search`` is the mixed-precision preset of ``ddnhw sweep``."""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np

from .config import HW_AXES, SweepConfig, expand
from .families import SchemeMLPFamily

__all__ = ["search_preset"]


def search_preset(*, hidden=16, w_bits=(2, 3, 4), a_bits=(2, 3, 4), realize="mult", limit=None,
                  channel_fractions=(), channel_low_bits=2, epochs=40, float_epochs=120,
                  distill=0.5, prune=0.0, fpga="ice40", seed=0, out="search_out",
                  energy_board=None):
    """``(config, points)`` of ``ddnhw search``: the scheme MLP ``64-hidden-10`` with every
    combination of ``w_bits`` per layer and one of ``a_bits`` (``limit``: an evenly spaced
    subset of them), then, for each of ``channel_fractions``, that share of the hidden layer's
    least important channels at ``channel_low_bits`` (the others at ``max(w_bits)``) with each
    of ``w_bits`` in the output layer and ``max(a_bits)``; estimated (unrolled) for ``fpga``.
    ``energy_board``: also the energy stage (energy per inference of each unrolled candidate
    on that board, gate-level netlist on the test split: :func:`ddnhw.energy.estimate_energy`);
    the board's family replaces ``fpga``."""
    w_bits, a_bits = [int(b) for b in w_bits], [int(b) for b in a_bits]
    groups = [{"w_bits": [list(ws) for ws in itertools.product(w_bits, repeat=2)],
               "a_bits": list(a_bits)}]
    if channel_fractions:
        groups.append({"channel_fraction": [float(f) for f in channel_fractions],
                       "w_bits": [[max(w_bits), b] for b in w_bits],
                       "a_bits": [max(a_bits)]})
    settings = {"hidden": int(hidden), "realize": realize, "epochs": int(epochs),
                "float_epochs": int(float_epochs), "distill": float(distill),
                "prune": float(prune), "channel_low_bits": int(channel_low_bits), "fpga": fpga}
    stages = ("train", "estimate")
    if energy_board is not None:
        # the same unrolled circuits as without a board; the board prices their energy
        settings.update(board=HW_AXES["board"](energy_board), folding="none")
        stages += ("energy",)
    fam = SchemeMLPFamily()
    for k, v in settings.items():             # the same checks as a sweep.toml's settings
        if k not in HW_AXES:
            fam.check(k, v)
    cfg = SweepConfig(family=fam, groups=groups, settings=settings, seeds=(int(seed),),
                      stages=stages, out=Path(out), name="search",
                      source="ddnhw search")
    points = expand(cfg)
    first = [p for p in points if "channel_fraction" not in p.axes]
    if limit and len(first) > limit:
        keep = sorted(set(np.linspace(0, len(first) - 1, limit).round().astype(int)))
        first = [first[k] for k in keep]
    rest = [p for p in points if "channel_fraction" in p.axes]
    return cfg, [dataclasses.replace(p, index=i) for i, p in enumerate(first + rest)]
