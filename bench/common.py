"""Boilerplate shared by the bench scripts: the --out/--work arguments and their directories."""
from __future__ import annotations

import argparse
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def bench_parser(doc: str, work: str) -> argparse.ArgumentParser:
    """Parser with ``--out`` (results, default bench/results) and ``--work`` (scratch, default
    ``work``); the description is the first line of ``doc``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--work", default=work)
    return p


def bench_dirs(a) -> tuple[Path, Path]:
    """Create and return ``(work, out)`` from parsed ``--work``/``--out``."""
    work, out = Path(a.work), Path(a.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return work, out
