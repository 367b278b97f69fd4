"""Checks of sweep settings and axis values: each ``check(value) -> value`` raises
``ValueError`` saying what is wrong with the value (the caller names the key)."""
from __future__ import annotations

__all__ = ["integer", "fraction", "choice", "number", "string"]


def integer(lo=None, hi=None, what="an integer"):
    def check(v):
        if not isinstance(v, int) or isinstance(v, bool) or (lo is not None and v < lo) or \
                (hi is not None and v > hi):
            rng = "" if lo is None else (f" >= {lo}" if hi is None else f" in {lo}..{hi}")
            raise ValueError(f"{v!r} is not {what}{rng}")
        return v
    return check


def fraction(closed=False):
    def check(v):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not (
                0 <= v <= 1 if closed else 0 <= v < 1):
            raise ValueError(f"{v!r} is not a fraction in [0, 1{']' if closed else ')'}")
        return float(v)
    return check


def choice(options):
    def check(v):
        if v not in options:
            raise ValueError(f"{v!r} is not one of {', '.join(map(repr, options))}")
        return v
    return check


def number(v):
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise ValueError(f"{v!r} is not a number")
    return float(v)


def string(v):
    if not isinstance(v, str):
        raise ValueError(f"{v!r} is not a string")
    return v
