"""Energy-aware folding: among the foldings that fit the board and meet a throughput, the one
with the least energy per inference (each candidate's energy from :func:`estimate_energy`).

Candidates: fully unrolled (when it fits the board), and for each initiation interval
``II = 1, 2, 4, ...`` up to what ``min_throughput`` allows at the clock, the folding the
planner (:func:`ddnhw.passes.fold.plan`) picks for that II (the cheapest that meets it and
fits); duplicates are dropped. A candidate is kept when its steady-state throughput at the
clock (clock / the generated circuit's II) meets ``min_throughput``; the gate-level run's
cycles per inference (fill and drain included) are reported next to it.
"""
from __future__ import annotations

from pathlib import Path

from ddnhw import DdnhwError

from ddnhw.energy.estimate import estimate_energy

__all__ = ["candidate_foldings", "choose_by_energy", "OBJECTIVES"]

OBJECTIVES = ("throughput", "energy")


def candidate_foldings(graph, board, min_throughput, clock_mhz=None) -> list:
    """``[(label, folding)]``: ``"none"`` (unrolled, when it fits) and planned ``{layer:
    (pe, simd)}`` foldings whose planned II allows ``min_throughput`` inferences/s."""
    from ddnhw.board import get_board
    from ddnhw.passes.fold import choose, plan
    profile = get_board(board)
    budget = profile.budget_for()
    clock = float(clock_mhz or profile.clock_mhz)
    max_ii = int(clock * 1e6 // min_throughput) if min_throughput else 1 << 16
    if max_ii < 1:
        raise DdnhwError(f"energy objective: --min-throughput {min_throughput:g} inferences/s "
                         f"is more than one inference per cycle at {clock:g} MHz: no folding "
                         f"of any model reaches it")
    out, seen = [], set()
    c = choose(graph, budget, "auto")
    if c["mode"] == "unrolled":
        out.append(("unrolled", "none"))
    ii = 1
    while ii <= max_ii:
        try:
            p = plan(graph, budget, target_ii=ii)
        except DdnhwError:
            p = None
        if p is not None and p["ii"] <= max_ii:
            key = tuple(sorted((k, tuple(v) if v else None) for k, v in p["folding"].items()))
            if key not in seen and any(v for _, v in key):
                seen.add(key)
                out.append((f"II {p['ii']}", dict(p["folding"])))
        ii *= 2
    if not out:
        raise DdnhwError(f"energy objective: no folding of the model fits {profile.name} with "
                         f"--min-throughput {min_throughput:g} inferences/s at {clock:g} MHz")
    return out


def choose_by_energy(graph, board, out_dir, min_throughput, inputs=None, clock_mhz=None,
                     log=None) -> dict:
    """Estimate every candidate's energy and pick the least: dict with ``folding`` (``"none"``
    or ``{layer: (pe, simd)}``), ``label``, ``candidates`` (label, energy per inference,
    inferences/s at the clock, meets) and the winner's ``estimate``."""
    out_dir = Path(out_dir)
    rows, best = [], None
    for i, (label, folding) in enumerate(candidate_foldings(graph, board, min_throughput,
                                                            clock_mhz)):
        r = estimate_energy(graph, board, out_dir / f"candidate{i}", inputs=inputs,
                            clock_mhz=clock_mhz, folding=folding)
        rate = r["clock_mhz"] * 1e6 / r["ii_cycles"]
        meets = rate >= (min_throughput or 0)
        rows.append({"label": label, "folding": folding if folding == "none" else
                     {k: (list(v) if v else None) for k, v in folding.items()},
                     "energy_nj_per_inference": r["energy_nj_per_inference"],
                     "ii_cycles": r["ii_cycles"], "inferences_per_s": rate,
                     "cycles_per_inference_measured": r["activity"]["cycles_per_inference"],
                     "meets": meets})
        if log:
            log(f"{label}: {r['energy_nj_per_inference']:.3f} nJ/inference, II "
                f"{r['ii_cycles']}: {rate:.3g} inferences/s"
                + ("" if meets else " (too slow)"))
        if meets and (best is None or r["energy_nj_per_inference"]
                      < best[2]["energy_nj_per_inference"]):
            best = (label, folding, r)
    if best is None:
        raise DdnhwError(f"energy objective: no candidate folding reaches --min-throughput "
                         f"{min_throughput:g} inferences/s")
    return {"label": best[0], "folding": best[1], "candidates": rows, "estimate": best[2]}
