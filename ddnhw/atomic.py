"""Atomic file writes: write a temporary file in the target folder, then rename.

A crash, a full disk or an exception never leaves a half-written file under the final name.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile

from ddnhw import DdnhwError

__all__ = ["atomic_open", "write_text", "write_bytes", "WriteError", "file_lock"]


class WriteError(DdnhwError, OSError):
    """A file could not be written (full disk, no permission, ...); the message names it.
    Nothing was left under its name."""


@contextlib.contextmanager
def atomic_open(path, mode="w"):
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=d)
    except OSError as e:
        raise WriteError(e.errno, f"{path}: cannot write: {e.strerror or e}") from None
    try:
        kw = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
        with os.fdopen(fd, mode, **kw) as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(e.errno, f"{path}: cannot write: {e.strerror or e}") from None
        raise


def write_text(path, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def write_bytes(path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def file_lock(path):
    """Hold an exclusive ``flock`` on ``path`` (created with its folder) for the ``with`` block:
    one process at a time builds a cached simulation model, the others then reuse it."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
