"""The content-addressed result store of a sweep.

Every stage of every point is stored under ``ROOT/<stage>/<key>/``, where ``key`` hashes the
stage's configuration, its parents' keys, the ddnhw version and a digest of ddnhw's own source
files (:func:`code_digest`): the same work always lands at the same address, so a rerun finds it
and other work never does, and a result computed by other code (an edited checkout, a newer
commit) is never reused. A stage
folder holds ``result.json`` (the stage's values, its error if it failed, and where and when
it ran) and its artifacts (model file, Verilog, build reports and logs).

Writes are atomic per stage: the task works in a fresh folder of its own under ``ROOT/.tmp/``
and renames it to its address when it is complete. Two workers never write the same file;
when two finish the same stage (a task retried while its first worker still ran), the first
rename wins and the second copy is dropped.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from ddnhw import __version__
from ddnhw.atomic import write_bytes, write_text

__all__ = ["Store", "code_digest", "stage_key"]

_SOURCE_SUFFIXES = (".py", ".v", ".sv", ".cpp", ".json", ".npz")


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 of every source and data file of the installed ddnhw package (names and bytes),
    computed once per process."""
    pkg = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*")):
        if f.suffix in _SOURCE_SUFFIXES and f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(pkg)).encode() + b"\0")
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def stage_key(stage: str, config: dict, parents=()) -> str:
    """The store address of ``stage`` run with ``config`` after the stages ``parents`` (their
    keys), for this ddnhw version and source code."""
    blob = json.dumps({"stage": stage, "config": config, "parents": list(parents),
                       "ddnhw": __version__, "code": code_digest()},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class Store:
    """The store under ``root`` (created on first write)."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, stage, key) -> Path:
        return self.root / stage / key

    def has(self, stage, key) -> bool:
        return (self.path(stage, key) / "result.json").is_file()

    def load(self, stage, key, files=True) -> dict | None:
        """The stored result (with its files' bytes when ``files``), or None."""
        d = self.path(stage, key)
        try:
            result = json.loads((d / "result.json").read_text())
        except (OSError, ValueError):
            return None
        names = result.get("files", [])
        try:
            result["files"] = {n: (d / n).read_bytes() for n in names} if files else {}
        except OSError:
            return None
        return result

    def workdir(self, stage, key) -> Path:
        """A fresh folder for one run of a stage (unique to this run)."""
        d = self.root / ".tmp" / f"{stage}-{key}-{uuid.uuid4().hex[:12]}"
        d.mkdir(parents=True)
        return d

    def commit(self, result: dict, work: Path | None = None, replace=False) -> dict:
        """Store ``result`` (``stage``, ``key``, ``files`` as ``{name: bytes}``) with the
        artifacts in ``work`` (a :meth:`workdir`, moved into the store) at its address. When
        the address is taken already, keeps what is there (``replace``: ours replaces it).
        Returns the result now stored."""
        stage, key = result["stage"], result["key"]
        work = Path(work) if work is not None else self.workdir(stage, key)
        for name, data in result["files"].items():
            if not (work / name).is_file():
                write_bytes(work / name, data)
        stored = {**result, "files": sorted(result["files"])}
        write_text(work / "result.json", json.dumps(stored, indent=1, sort_keys=True) + "\n")
        final = self.path(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if replace and final.exists():
            trash = self.root / ".tmp" / f"old-{stage}-{key}-{uuid.uuid4().hex[:12]}"
            try:
                os.rename(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            except FileNotFoundError:
                pass
        try:
            os.rename(work, final)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            shutil.rmtree(work, ignore_errors=True)     # another run stored it first
            there = self.load(stage, key)
            if there is not None:
                return there
        return result

    def discard(self, work: Path) -> None:
        shutil.rmtree(work, ignore_errors=True)
