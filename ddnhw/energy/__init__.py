"""Energy per inference: activity from the gate-level netlist on real inputs, priced with
per-family coefficients from published measurements (see README "## Energy").

:func:`estimate_energy` is the API; :mod:`.gatesim` the gate-level simulation and its event
counters, :mod:`.model` the coefficients, :mod:`.calibration` their fit to bench measurements.
"""
from .estimate import estimate_energy

__all__ = ["estimate_energy"]
