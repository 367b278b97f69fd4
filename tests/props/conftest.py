"""Property-test bookkeeping: how many hypothesis cases ran per op (printed at the end).

``DDNHW_PROP_EXAMPLES=<factor>`` multiplies every property's example budget (default 1;
e.g. 10 for a long run). Set ``DDNHW_PROP_COUNTS=<file>`` to also write the counts as JSON.
"""
from __future__ import annotations

import json
import os

from .strategies import CASES


def pytest_terminal_summary(terminalreporter):
    if not CASES:
        return
    terminalreporter.section("property cases per op")
    for op in sorted(CASES):
        terminalreporter.write_line(f"{op:28s} {CASES[op]:6d}")
    path = os.environ.get("DDNHW_PROP_COUNTS")
    if path:
        with open(path, "w") as f:
            json.dump(dict(sorted(CASES.items())), f, indent=1)
