"""``estimate_energy``: energy per inference of a model's circuit on a board.

The circuit is the one ``ddnhw generate/build`` make (:func:`ddnhw.flow.decide`, the one folding
decision). Its Verilog is synthesized by yosys into the family's cells, and the mapped netlist is
simulated gate-level (:mod:`.gatesim`: yosys' cell models in Verilator) on the input vectors,
streamed back to back through the bulk harness (``sim/harness.v``) with no idle cycles and no
backpressure. The outputs must equal the golden model's exactly (a post-synthesis equivalence
check on those vectors); the events counted on the way are priced by :mod:`.model`.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from ddnhw import DdnhwError

import ddnhw.energy.gatesim as gatesim
import ddnhw.energy.model as energy_model

__all__ = ["estimate_energy", "FOLD_OPTIONS", "DEFAULT_RANDOM_VECTORS", "DoesNotFit",
           "mapped_resources"]

FOLD_OPTIONS = ("folding", "target_ii", "max_luts")
DEFAULT_RANDOM_VECTORS = 256


class DoesNotFit(DdnhwError):
    """The circuit needs more of a resource than the board has: no energy figure for it there."""


# the board budget's resources counted in a mapped netlist: (cell type pattern, units) per
# resource and family (an ECP5 CCU2C is two TRELLIS_COMBs, nextpnr's LUT unit; an iCE40
# SB_CARRY shares a logic cell with a LUT, so the SB_LUT4 count is the LCs' lower bound)
_RESOURCE_CELLS = {
    "ice40": {"luts": ((r"SB_LUT4", 1),), "ffs": ((r"SB_DFF\w*", 1),),
              "dsps": ((r"SB_MAC16", 1),), "brams": ((r"SB_RAM40_4K\w*", 1),),
              "spram": ((r"SB_SPRAM256KA", 1),)},
    "ecp5": {"luts": ((r"LUT4|TRELLIS_COMB", 1), (r"CCU2C", 2)),
             "ffs": ((r"TRELLIS_FF", 1),), "dsps": ((r"MULT18X18D", 1),),
             "brams": ((r"DP16KD|PDPW16KD", 1),)},
}
# an estimate this far over the board's LUTs is not synthesized at all (the estimate
# is calibrated within ~6 % on whole networks, see ddnhw.passes.fold.choose)
_EARLY_REFUSAL = 1.5


def mapped_resources(family, cells) -> dict:
    """``{resource: count}`` of a mapped netlist's ``cells`` (``{cell type: count}``) in the
    units of the board budget (luts, ffs, dsps, brams, spram)."""
    import re
    out = {}
    for res, kinds in _RESOURCE_CELLS[family].items():
        out[res] = sum(w * n for rx, w in kinds for c, n in cells.items() if re.fullmatch(rx, c))
    return out


def _check_fit(profile, counts, folding, source, factor=1.0):
    """Raise :class:`DoesNotFit` when ``counts`` (``{resource: n}``, from ``source``) exceed the
    board's budget times ``factor``."""
    limits = profile.budget_for().limits()
    for res, need in counts.items():
        have = limits.get(res)
        if have is not None and need > factor * have:
            how = ("fold it (--folding auto, --max-luts, --target-ii)" if folding == "unrolled"
                   else "fold it further (--max-luts, --target-ii)")
            raise DoesNotFit(f"energy: the circuit ({folding}) does not fit {profile.name} "
                             f"({profile.device}): it needs {int(need)} {res} ({source}), the "
                             f"board has {have}; {how} or choose a larger board")


def _stream_rows(x, lanes, beats):
    from ddnhw.hw.lanes import as_rows
    rows = as_rows(x, lanes * beats)
    return rows.reshape(len(rows) * beats, lanes)


def _method(coeffs, simulator="verilator"):
    return ("activity-based: yosys-mapped netlist simulated gate-level with yosys' "
            f"{coeffs.family} cell models in {simulator} on the input vectors (back to back, no "
            "idle cycles); toggles of every cell output, clock-enabled flip-flop cycles and "
            "memory accesses counted by coverage counters; priced per event with "
            f"coefficients: {coeffs.sources}. Zero-delay simulation: glitches are not counted "
            "(the iCE40 fit absorbs the glitches of its calibration designs)")


def estimate_energy(graph, board, out_dir, inputs=None, clock_mhz=None, *, fmax_mhz=None,
                    place_route=False, seed=0, **fold_options) -> dict:
    """Energy per inference of ``graph``'s circuit on ``board`` (a board name or profile).

    ``inputs``: input vectors ``(N, *input shape)`` (default: 256 random vectors over the input
    range, led by the extremes; the CLI defaults to the example's test split). ``clock_mhz``:
    the clock the power figure is given at (default: the board clock). ``fmax_mhz``: the
    circuit's Fmax for the power at Fmax; with ``place_route=True`` and no ``fmax_mhz`` it is
    measured by a board build (nextpnr) in ``out_dir/build``. ``fold_options``: ``folding``,
    ``target_ii``, ``max_luts`` as :func:`ddnhw.flow.decide` takes them.

    Returns a dict (also written to ``out_dir/energy.json``): ``energy_nj_per_inference``
    (dynamic), ``total_energy_nj_per_inference`` (with the static power's share at
    ``clock_mhz``, None without a static figure), ``dynamic_power_mw_board_clock``,
    ``power_mw_fmax`` (static + dynamic at Fmax; None without Fmax), ``static_power_mw``,
    ``breakdown`` (nJ per inference by category), ``activity``, ``cells``, ``method``,
    ``error_band`` (relative, and the energy range), ``gate_level_mismatches`` (0: the
    post-synthesis netlist reproduced the golden outputs on every vector), ``seconds``.
    Raises :class:`DdnhwError` when the gate-level outputs differ from golden.
    """
    from ddnhw import golden
    from ddnhw.board import get_board
    from ddnhw.flow.core import decide, ensure_writable_dir, random_vectors
    from ddnhw.host.cosim import find_testbench, manifest_beats
    from ddnhw.host.payload import StreamLayout, read_hex, write_records
    from ddnhw.lower import generate, plan_network

    unknown = sorted(set(fold_options) - set(FOLD_OPTIONS))
    if unknown:
        raise DdnhwError(f"energy: unknown option(s) {', '.join(unknown)}; folding options are "
                         f"{', '.join(FOLD_OPTIONS)}")
    t_start = time.monotonic()
    profile = get_board(board)
    coeffs = energy_model.get_coefficients(profile.family)
    clock = float(profile.clock_mhz if clock_mhz is None else clock_mhz)
    if not clock > 0:
        raise DdnhwError(f"energy: clock_mhz must be positive, not {clock_mhz!r}")
    out = ensure_writable_dir(out_dir)

    folding = fold_options.get("folding") or "auto"
    g, plan = decide(graph, profile.name, folding, target_ii=fold_options.get("target_ii"),
                     max_luts=fold_options.get("max_luts"))
    fold_label = {"auto": "folded automatically", "explicit": "the folding given",
                  "model": "the model file's folding"}.get(plan["mode"], plan["mode"])
    est = plan_network(g, family=profile.family)
    _check_fit(profile, {k: sum(int(layer["estimate"].get(k, 0)) for layer in est.layers)
                         for k in ("luts", "dsps", "brams")}, fold_label,
               "resource estimate", _EARLY_REFUSAL)
    rtl = out / "rtl"
    man = generate(g, rtl, name="ddnhw_top", family=profile.family)
    verilog = rtl / man["verilog"]
    layout = StreamLayout.from_manifest(man, verilog)
    beats_in, beats_out = manifest_beats(man)

    x = random_vectors(graph, DEFAULT_RANDOM_VECTORS, seed) if inputs is None else inputs
    x = golden.check_input(graph, np.asarray(x).reshape((len(x),) + tuple(graph.input.shape)))
    n_vec = len(x)
    if n_vec == 0:
        raise DdnhwError("energy: no input vectors")
    expected = golden.run(graph, x).reshape(n_vec, -1)

    t0 = time.monotonic()
    net = gatesim.synthesize([verilog], layout.top, profile.family, out / "gate",
                             synth_opts=profile.synth_opts)
    t_synth = time.monotonic() - t0
    _check_fit(profile, mapped_resources(profile.family, net.cells), fold_label,
               "cells of the synthesized netlist")
    rows = _stream_rows(x, layout.i.lanes, beats_in)
    binary, t_build, cached = gatesim.build_sim(
        net, [find_testbench() / "harness.v", ("ddnhw_gate_tb.v", gatesim.STREAM_TB)],
        # builds are content-hashed: DDNHW_ENERGY_CACHE shares them between output folders
        os.environ.get("DDNHW_ENERGY_CACHE") or out / "gate" / "sim",
        params={"IN_W": layout.i.width, "OUT_W": layout.o.width},
        defines={"DDNHW_DUT": layout.top})
    run_dir = out / "gate" / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_records(run_dir / "in.bin", rows, layout.i)    # the harness's binary input
    (run_dir / "out.hex").unlink(missing_ok=True)
    t0 = time.monotonic()
    acts, log = gatesim.run_sim(
        binary, run_dir,
        plusargs=[f"+ddnhw_in={run_dir / 'in.bin'}", f"+ddnhw_out={run_dir / 'out.hex'}",
                  f"+ddnhw_n={len(rows)}", f"+ddnhw_nout={n_vec * beats_out}",
                  "+ddnhw_idle=0", "+ddnhw_stall=0", "+ddnhw_watchdog=100000"])
    t_run = time.monotonic() - t0
    act = acts[layout.top]
    unmodelled = [ln for ln in log.splitlines() if "not modelled" in ln]
    if unmodelled:     # a cell configuration our models stop on (ecp5_*_sim.v)
        raise gatesim.GateError(f"energy: {unmodelled[0].strip()} (board {profile.name}); "
                                f"no energy figure for this netlist")
    if "timeout=1" in log:
        raise gatesim.GateError(f"energy: the gate-level netlist of {layout.top} stopped "
                                f"moving; run dir {run_dir}")
    got = read_hex(run_dir / "out.hex", layout.o)
    got = got.reshape(-1, beats_out * layout.o.lanes) if got.size else got.reshape(0, 1)
    if got.shape == expected.shape:
        bad = np.flatnonzero(np.any(got != expected, axis=1))
        mismatches = int(len(bad))
    else:
        bad, mismatches = np.arange(n_vec), n_vec

    pj = energy_model.energy(coeffs, net.cells, act)
    total_pj = sum(pj.values())
    cycles = max(act.cycles, 1)
    cyc_per_inf = cycles / n_vec
    e_cycle_pj = total_pj / cycles
    dyn_mw = e_cycle_pj * clock / 1000.0          # pJ * MHz = µW
    static = coeffs.static_mw
    if fmax_mhz is None and place_route:
        from ddnhw.flow.core import build
        rep = build(graph, profile.name, out / "build", top="measure", allow_timing_failure=True,
                    **{k: v for k, v in fold_options.items() if v is not None})
        fmax_mhz = rep.get("fmax_mhz")
    energy_nj = total_pj / n_vec / 1000.0
    band = coeffs.error_band.get("total")
    ff_cells = {c: n for c, n in net.cells.items()
                if energy_model.category(coeffs.family, c) == "ff"}
    enabled = sum(act.by_cell.get(c, {}).get("enable", 0) for c in ff_cells) + sum(
        n * act.cycles for c, n in ff_cells.items() if "enable" not in act.by_cell.get(c, {}))
    n_by_cat, tog_by_cat = {}, {}
    for c, n in net.cells.items():
        cat = energy_model.category(coeffs.family, c)
        n_by_cat[cat] = n_by_cat.get(cat, 0) + n
        tog_by_cat[cat] = tog_by_cat.get(cat, 0) + act.by_cell.get(c, {}).get("toggles", 0)
    mem = {k: sum(e.get(k, 0) for e in act.by_cell.values()) / n_vec
           for k in ("read", "write", "access")}
    result = {
        "board": profile.name, "family": profile.family, "device": profile.device,
        "vectors": n_vec, "inputs": "given" if inputs is not None else
        f"random:{DEFAULT_RANDOM_VECTORS}",
        "folding": {"mode": plan["mode"], "folding": {k: (list(v) if v else None) for k, v in
                                                      (plan.get("folding") or {}).items()}},
        "energy_nj_per_inference": energy_nj,
        "total_energy_nj_per_inference": (None if static is None else
                                          energy_nj + static * cyc_per_inf / clock),
        "clock_mhz": clock,
        "dynamic_power_mw_board_clock": dyn_mw,
        "power_mw_board_clock": None if static is None else static + dyn_mw,
        "fmax_mhz": fmax_mhz,
        "power_mw_fmax": (None if fmax_mhz is None else
                          (static or 0.0) + e_cycle_pj * fmax_mhz / 1000.0),
        "static_power_mw": static,
        "inferences_per_s_board_clock": clock * 1e6 / cyc_per_inf,
        # the circuit's initiation interval and latency (manifest): the steady-state rate is
        # clock / II (cycles_per_inference above includes the pipeline's fill and drain)
        "ii_cycles": man.get("ii_cycles"), "latency_cycles": man.get("latency_cycles"),
        "breakdown": {k: v / n_vec / 1000.0 for k, v in pj.items()},
        "breakdown_unit": "nJ per inference",
        "activity": {
            "cycles": act.cycles, "cycles_per_inference": cyc_per_inf,
            "toggles_per_inference": {k: v / n_vec for k, v in sorted(tog_by_cat.items())},
            "toggle_rate": {k: tog_by_cat.get(k, 0) / (n * cycles) for k, n in
                            sorted(n_by_cat.items()) if n},
            "enabled_ff_cycles_per_inference": enabled / n_vec,
            "enabled_ff_fraction": enabled / max(1, sum(ff_cells.values()) * cycles),
            "memory_reads_per_inference": mem["read"],
            "memory_writes_per_inference": mem["write"],
            "spram_accesses_per_inference": mem["access"]},
        "cells": dict(sorted(net.cells.items())),
        "coefficients": {"dynamic_pj": coeffs.dynamic, "bram_access_pj": coeffs.bram_access,
                         "spram_access_pj": coeffs.spram_access, "static_mw": static,
                         "vcore": coeffs.vcore, "sources": coeffs.sources},
        "method": _method(coeffs),
        "error_band": {"relative": band, "per_category": coeffs.error_band,
                       "energy_nj_per_inference": [energy_nj / (1 + band), energy_nj * (1 + band)]
                       if band is not None else None},
        "gate_level_mismatches": mismatches,
        "equivalence": f"post-synthesis netlist == golden on {n_vec} vectors"
                       if mismatches == 0 else
                       f"post-synthesis netlist differs from golden on {mismatches} of {n_vec} "
                       f"vectors (first: vector {int(bad[0])})",
        "seconds": {"synth": round(t_synth, 2), "sim_build": round(t_build, 2),
                    "sim_run": round(t_run, 2),
                    "total": round(time.monotonic() - t_start, 2)},
        "sim_build_cached": cached,
    }
    (out / "energy.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    if mismatches:
        raise DdnhwError(f"energy: {result['equivalence']}; see {run_dir} and {out / 'energy.json'}")
    return result
