"""Bit-exact integer executor of the IR in NumPy (batched). The one numerical truth."""
from .executor import run, run_all, predict, quantize_input, check_input

__all__ = ["run", "run_all", "predict", "quantize_input", "check_input"]
