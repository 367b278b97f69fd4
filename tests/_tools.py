"""Markers for tests that need a tool from outside PyPI.

Icarus Verilog comes from Debian: ``scripts/bootstrap.sh`` installs it when run as root, as CI
does. Only a non-root machine without it skips the Icarus runs; as root a missing ``iverilog``
means the bootstrap broke, and those tests run and fail.
"""
import os
import shutil

import pytest

ICARUS_MISSING = (shutil.which("iverilog") is None or shutil.which("vvp") is None) \
    and os.geteuid() != 0
needs_icarus = pytest.mark.skipif(
    ICARUS_MISSING, reason="iverilog not installed and not root: scripts/bootstrap.sh installs "
                           "Debian's iverilog only as root (CI runs as root and has it)")
