"""Host runtime: talk to a board top over a serial port and check every answer.

Also the cosimulation that runs the same checks against RTL: :mod:`ddnhw.host.cosim` (a stream
DUT under cocotb, Verilator or Icarus), :mod:`ddnhw.host.cosim_link` (the board top with this
host code over a simulated UART), with :mod:`~ddnhw.host.payload` and
:mod:`~ddnhw.host.scoreboard`; their testbench sources are in ``testbench/`` (the repository's
``sim/`` folder).
"""

import importlib

# imported on first use (PEP 562): the testbench imports ddnhw.host.payload inside every
# simulator process, which must not pay for amaranth and the board profiles
_EXPORTS = {"Link": "link", "LinkStats": "link", "open_serial": "link", "RunReport": "run",
            "run_and_check": "run"}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
