"""Bit-exact integer executor of the IR in NumPy (batched). The one numerical truth."""
from .executor import (run, run_all, classify, predict, quantize_input, input_codes, output_real,
                       check_input, QONNX_ROUNDING)

__all__ = ["run", "run_all", "classify", "predict", "quantize_input", "input_codes",
           "output_real", "check_input", "QONNX_ROUNDING"]
