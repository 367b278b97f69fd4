"""Host runtime: talk to a board top over a serial port and check every answer.

Also the cosimulation that runs the same checks against RTL: :mod:`ddnhw.host.cosim` (a stream
DUT under cocotb, Verilator or Icarus), :mod:`ddnhw.host.cosim_link` (the board top with this
host code over a simulated UART), with :mod:`~ddnhw.host.payload` and
:mod:`~ddnhw.host.scoreboard`; their testbench sources are in ``testbench/`` (the repository's
``sim/`` folder).
"""

from .link import Link, LinkStats, open_serial
from .run import RunReport, run_and_check

__all__ = ["Link", "LinkStats", "open_serial", "RunReport", "run_and_check"]
