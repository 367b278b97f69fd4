"""argparse type functions and the parser class of ``ddnhw``: a bad argument ends the command
with exit status 2 and one line naming the argument and the value (never a traceback).

Each function takes the argument's text and returns the value or raises
``argparse.ArgumentTypeError`` with a message that says what is allowed; argparse prefixes it
with the argument's name. Nothing here imports more than the standard library, so ``ddnhw
--help`` stays fast.
"""
from __future__ import annotations

import argparse
import math
import re
import sys

__all__ = ["Parser", "int_in", "positive_int", "nonneg_int", "seed", "positive_float",
           "probability", "fraction", "identifier", "nonempty", "board_name", "board_list",
           "existing_file", "vectors_spec", "simulator_list", "MAX_INT"]

MAX_INT = 2**31 - 1       # no count, size or cycle number of ddnhw needs more


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``ddnhw CMD: error: argument --x: ...
    (see `ddnhw CMD --help`)``, exit status 2."""

    def error(self, message):
        message = " ".join(str(message).split())
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def _fail(what, text):
    shown = text if len(text) <= 40 else text[:37] + "..."
    raise argparse.ArgumentTypeError(f"{what}, not {shown!r}")


def _int(text, what):
    try:
        return int(text.strip().replace("_", ""), 10)
    except (ValueError, AttributeError):
        _fail(what, text)


def int_in(lo, hi=MAX_INT):
    """A type function for integers in ``[lo, hi]``."""
    what = (f"must be an integer from {lo} to {hi}" if hi != MAX_INT
            else f"must be an integer >= {lo}")

    def parse(text):
        v = _int(text, what)
        if not lo <= v <= hi:
            _fail(what, text)
        return v
    parse.__name__ = f"int_in_{lo}_{hi}"
    return parse


positive_int = int_in(1)
nonneg_int = int_in(0)
seed = int_in(0, 2**32 - 1)


def _float(text, what):
    try:
        v = float(text)
    except (ValueError, TypeError):
        _fail(what, text)
    if not math.isfinite(v):
        _fail(what, text)
    return v


def positive_float(text):
    what = "must be a positive number"
    v = _float(text, what)
    if not v > 0:
        _fail(what, text)
    return v


def _unit_interval(what):
    """A type function for numbers in [0, 1); ``what`` says what the number is."""
    def parse(text):
        v = _float(text, what)
        if not 0.0 <= v < 1.0:
            _fail(what, text)
        return v
    return parse


#: a probability in [0, 1) (of an idle or a stalled cycle)
probability = _unit_interval("must be a probability in [0, 1)")
#: a fraction in [0, 1)
fraction = _unit_interval("must be a fraction in [0, 1)")


def identifier(text):
    """A Verilog/Python identifier (a module name)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", text or ""):
        _fail("must be an identifier (letters, digits, _; not starting with a digit)", text)
    return text


def nonempty(text):
    if not text or not text.strip() or "\0" in text:
        _fail("must be a non-empty path without NUL bytes", text)
    return text


def board_name(text):
    """A board of ``ddnhw boards``."""
    from ddnhw.board.profiles import BOARDS
    if text not in BOARDS:
        _fail(f"must be a board of `ddnhw boards` ({', '.join(sorted(BOARDS))})", text)
    return text


def board_list(text):
    """Comma-separated boards of ``ddnhw boards`` (may be empty: no synthesis)."""
    for name in (b for b in text.split(",") if b):
        board_name(name)
    return text


def existing_file(text):
    """A path to an existing regular file."""
    import os
    nonempty(text)
    if not os.path.isfile(text):
        _fail("must be an existing file", text)
    return text


def vectors_spec(text):
    """``test``, ``random:N`` (N >= 1) or a path to a ``.npy`` file."""
    what = "must be 'test', 'random:N' (N from 1 to 10000000) or a .npy file"
    if text == "test":
        return text
    if text.startswith("random:"):
        try:
            int_in(1, 10_000_000)(text[len("random:"):])
        except argparse.ArgumentTypeError:
            _fail(what, text)
        return text
    if text.endswith(".npy") and "\0" not in text:
        return text
    _fail(what, text)


def simulator_list(text):
    """``verilator``, ``icarus`` or both, comma-separated."""
    names = text.split(",")
    if not text or any(n not in ("verilator", "icarus") for n in names):
        _fail("must be verilator, icarus or both comma-separated", text)
    return text
