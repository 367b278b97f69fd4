"""ddnhw: quantized neural networks to bit-exact, cosimulated FPGA hardware with open tools."""

__version__ = "0.1.0"


class DdnhwError(Exception):
    """A user-facing error: the message names the layer, file or value at fault."""
