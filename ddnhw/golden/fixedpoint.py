"""Re-export of :mod:`ddnhw.fixedpoint` (the one definition of rounding, shifting and
saturation), so ``from ddnhw.golden.fixedpoint import ...`` keeps working."""
from ddnhw.fixedpoint import ROUNDING, ROUNDING_MODES, requantize, round_shift, saturate

__all__ = ["ROUNDING", "ROUNDING_MODES", "requantize", "round_shift", "saturate"]
