"""Shared argument checks and IntType -> Amaranth shape mapping (no IR import needed)."""
from __future__ import annotations

from amaranth.hdl import signed, unsigned


def check_int_type(name, t):
    """``t`` must look like :class:`ddnhw.ir.IntType` (``signed``, ``bits``, ``min``, ``max``)."""
    if not all(hasattr(t, a) for a in ("signed", "bits", "min", "max", "contains")):
        raise TypeError(f"{name} must be an IntType, not {t!r}")


def int_shape(t):
    return signed(t.bits) if t.signed else unsigned(t.bits)
