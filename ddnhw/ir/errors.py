"""The IR's error type (its own module so that the graph and the op definitions share it
without importing each other)."""
from ddnhw import DdnhwError


class IRError(DdnhwError, ValueError):
    """Malformed graph or model file; the message names the node, tensor or file."""
