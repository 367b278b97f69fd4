"""Codebook weights in a folded layer: direct storage vs level codes decoded by a table or by
constant multipliers, built with Yosys + nextpnr (core in the measurement shim).

Model: a 64-16-10 MLP whose weights take 4 levels (2-bit codes of 5-bit values), 4-bit
inputs; fc0 folded (2, 16), fc1 (1, 1). Writes bench/results/codebook_decode.{json,md}.
Reproduce: ``python bench/codebook_decode.py [--board icebreaker]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ddnhw.board.build import build  # noqa: E402
from ddnhw.lower import build_network  # noqa: E402
from tests.hw.test_folded_decode import LEVELS, _codebook_mlp  # noqa: E402

FOLD = {"fc0": (2, 16), "fc1": (1, 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="icebreaker")
    ap.add_argument("--work", default=str(ROOT / "out" / "codebook_decode"))
    a = ap.parse_args(argv)
    from ddnhw.board import get_board
    family = get_board(a.board).family
    g = _codebook_mlp(3, sizes=(64, 16, 10))
    rows = []
    for d in ("direct", "table", "constmul", "auto"):
        net = build_network(g, folding=FOLD, weight_decode=d, family=family)
        est = net.layers[0]["estimate"]
        chosen = net.blocks[0].decode
        t = time.perf_counter()
        r = build(net, a.board, Path(a.work) / f"{a.board}_{d}")
        rows.append({"decode": d, "chosen": chosen, "estimate_fc0": est,
                     "luts": r["luts"], "ffs": r["ffs"], "dsps": r["dsps"],
                     "brams": r["brams"], "fmax_mhz": r["fmax_mhz"],
                     "seconds": round(time.perf_counter() - t, 1)})
        print(rows[-1], flush=True)
    res = {"board": a.board, "levels": list(LEVELS), "folding": {k: list(v) for k, v in
                                                                  FOLD.items()}, "rows": rows}
    out = ROOT / "bench" / "results"
    (out / "codebook_decode.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = [f"# Codebook decode in a folded layer ({a.board})", "",
             f"64-16-10 MLP, weights from the 4-level codebook {list(LEVELS)} (2-bit codes of "
             f"5-bit values), 4-bit inputs; folding {FOLD}. Whole core (both layers) as built; "
             "estimate: fc0 alone.", "",
             "| decode | chosen | LUTs | FFs | DSPs | BRAMs | Fmax MHz | fc0 estimate LUTs |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['decode']} | {r['chosen']} | {r['luts']} | {r['ffs']} | {r['dsps']}"
                     f" | {r['brams']} | {r['fmax_mhz']:.1f} | {r['estimate_fc0']['luts']} |")
    lines += ["", f"Reproduce: `python bench/codebook_decode.py --board {a.board}`."]
    (out / "codebook_decode.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
