"""Host runtime: talk to a board top over a serial port and check every answer."""

from .link import Link, LinkStats, open_serial
from .run import RunReport, run_and_check

__all__ = ["Link", "LinkStats", "open_serial", "RunReport", "run_and_check"]
