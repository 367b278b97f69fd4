"""Bit-exact integer executor of the IR in NumPy (batched). The one numerical truth."""
from .executor import run, run_all, predict

__all__ = ["run", "run_all", "predict"]
