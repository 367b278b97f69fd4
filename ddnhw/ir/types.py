from __future__ import annotations

from dataclasses import dataclass

from ddnhw.fixedpoint import int_range

MAX_BITS = 64


@dataclass(frozen=True)
class IntType:
    """An exact integer type. The real value of a stored integer ``q`` is ``q * 2**-frac``.

    ``bits`` counts the sign bit for signed types.
    """

    signed: bool
    bits: int
    frac: int = 0

    def __post_init__(self):
        if not isinstance(self.bits, int) or isinstance(self.bits, bool):
            raise TypeError(f"IntType bits must be an int, not {self.bits!r}")
        lo = 2 if self.signed else 1
        if not lo <= self.bits <= MAX_BITS:
            raise ValueError(f"IntType bits must be in {lo}..{MAX_BITS} for "
                             f"{'signed' if self.signed else 'unsigned'}, not {self.bits}")
        if not isinstance(self.frac, int):
            raise TypeError(f"IntType frac must be an int, not {self.frac!r}")

    @property
    def min(self) -> int:
        return int_range(self.signed, self.bits)[0]

    @property
    def max(self) -> int:
        return int_range(self.signed, self.bits)[1]

    def contains(self, lo: int, hi: int) -> bool:
        return self.min <= lo and hi <= self.max

    @staticmethod
    def for_range(lo: int, hi: int, frac: int = 0) -> "IntType":
        """The narrowest type that holds every integer in ``[lo, hi]``."""
        lo, hi = int(lo), int(hi)
        if lo > hi:
            raise ValueError(f"empty range [{lo}, {hi}]")
        if lo >= 0:
            return IntType(False, max(1, hi.bit_length()), frac)
        bits = max((-lo - 1).bit_length(), hi.bit_length() if hi > 0 else 0) + 1
        return IntType(True, max(2, bits), frac)

    def to_json(self) -> dict:
        return {"signed": self.signed, "bits": self.bits, "frac": self.frac}

    @staticmethod
    def from_json(d: dict) -> "IntType":
        return IntType(bool(d["signed"]), int(d["bits"]), int(d.get("frac", 0)))

    def __str__(self):
        return f"{'s' if self.signed else 'u'}{self.bits}" + (f".{self.frac}" if self.frac else "")
