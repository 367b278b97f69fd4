"""Exact comparison of DUT output rows against expected rows."""
from __future__ import annotations

import numpy as np

__all__ = ["Scoreboard"]


class Scoreboard:
    """Counts rows that differ in any lane; remembers the first one.

    Use :meth:`check_row` beat by beat (BFM mode) or :meth:`check_all` on a whole array.
    """

    def __init__(self, expected):
        self.expected = None if expected is None else np.asarray(expected, dtype=np.int64)
        if self.expected is not None and self.expected.ndim == 1:
            self.expected = self.expected[:, None]
        self.mismatches = 0
        self.first: int | None = None
        self.message = ""

    def check_row(self, index: int, row) -> bool:
        if self.expected is None:
            return True
        row = np.asarray(row, dtype=np.int64).reshape(-1)
        if index >= len(self.expected):
            self._fail(index, f"output beat {index} beyond the {len(self.expected)} expected")
            return False
        exp = self.expected[index].reshape(-1)
        if row.shape != exp.shape or not np.array_equal(row, exp):
            lanes = [k for k in range(min(len(row), len(exp))) if row[k] != exp[k]]
            self._fail(index, f"first mismatch at vector {index}, lanes {lanes[:8]}: "
                              f"got {row.tolist()} expected {exp.tolist()}")
            return False
        return True

    def check_all(self, outputs) -> int:
        if self.expected is None:
            return 0
        out = np.asarray(outputs, dtype=np.int64).reshape(len(outputs), -1)
        n = min(len(out), len(self.expected))
        bad = np.flatnonzero(np.any(out[:n] != self.expected[:n].reshape(n, -1), axis=1))
        for i in bad[:1]:
            self.check_row(int(i), out[i])
        self.mismatches = len(bad) + abs(len(out) - len(self.expected))
        if len(out) != len(self.expected) and self.first is None:
            self.first = n
            self.message = f"got {len(out)} output vectors, expected {len(self.expected)}"
        return self.mismatches

    def _fail(self, index, message):
        self.mismatches += 1
        if self.first is None:
            self.first = index
            self.message = message
