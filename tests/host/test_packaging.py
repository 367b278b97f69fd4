"""Only ``ddnhw`` is installed: no top-level ``sim`` package, nothing does ``import sim``, and the
testbench sources of ``sim/`` travel with ``ddnhw`` (``ddnhw/host/testbench``)."""
from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path


from ddnhw.host.cosim import TESTBENCH, find_testbench

ROOT = Path(__file__).resolve().parents[2]
TESTBENCH_FILES = {"harness.v", "tb_stream.py", "tb_link.py", "bfm.py", "uart.py", "link_sim.cpp"}


# A line that could import sim (``import sim``, ``import os, sim.x``, ``from sim... import``);
# only files with one are parsed.
MAYBE_SIM = re.compile(r"^[ \t]*(import\b[^\n]*\bsim\b|from[ \t]+sim\b)", re.M)


def _imports_of(path: Path):
    """The absolute module names ``path`` imports (``import a.b`` -> ``a.b``)."""
    text = path.read_text()
    if not MAYBE_SIM.search(text):
        return
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_nothing_imports_a_top_level_sim():
    files = [p for d in ("ddnhw", "tests", "bench", "sim", "examples", "scripts")
             for p in sorted((ROOT / d).rglob("*.py")) if "testbench" not in p.parts]
    assert len(files) > 50
    bad = [f"{p.relative_to(ROOT)}: {name}" for p in files for name in _imports_of(p)
           if name == "sim" or name.startswith("sim.")]
    assert bad == []


def test_sim_is_not_a_package():
    assert not (ROOT / "sim" / "__init__.py").exists()
    assert {p.name for p in (ROOT / "sim").iterdir()} >= TESTBENCH_FILES


def test_find_testbench_holds_the_sim_sources():
    tb = find_testbench()
    assert tb == TESTBENCH and tb.parent == Path(sys.modules["ddnhw.host"].__file__).parent
    for name in TESTBENCH_FILES:
        assert (tb / name).read_bytes() == (ROOT / "sim" / name).read_bytes(), name


def test_wheel_has_ddnhw_and_the_testbench_but_no_sim(tmp_path):
    """Build the wheel from a copy of the sources (setuptools, no network, ~2 s) and look in."""
    # the test extra requires setuptools>=70.1, which builds wheels without the wheel package
    assert importlib.util.find_spec("setuptools.command.bdist_wheel") is not None
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("ddnhw", "sim"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=skip)
    out = tmp_path / "dist"
    code = ("import sys; from setuptools import build_meta as b; "
            "print(b.build_wheel(sys.argv[1]))")
    r = subprocess.run([sys.executable, "-c", code, str(out)], cwd=src, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    wheel = out / r.stdout.split()[-1]
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top = {n.split("/")[0] for n in names}
        assert top == {"ddnhw", next(t for t in top if t.endswith(".dist-info"))}
        dist_info = next(t for t in top if t.endswith(".dist-info"))
        assert z.read(f"{dist_info}/top_level.txt").decode().split() == ["ddnhw"]
        for name in TESTBENCH_FILES:
            assert z.read(f"ddnhw/host/testbench/{name}") == (ROOT / "sim" / name).read_bytes()
    assert "ddnhw/host/cosim.py" in names and "ddnhw/hw/lanes.py" in names
    assert not any(n.startswith("sim/") for n in names)
