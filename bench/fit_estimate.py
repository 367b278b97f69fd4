"""Fit the LUT/FF coefficients of ``ddnhw/lower/estimate.py`` to calibration builds.

    .venv/bin/python bench/fit_estimate.py     # prints COEFFS and per-build errors
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

ROOT = Path(__file__).resolve().parent.parent


def _add_top(rows):
    """Rows recorded before ``top`` was: rebuild the core to measure the top's overhead."""
    sys.path.insert(0, str(ROOT / "bench"))
    from calibrate_estimate import cores, top_overhead
    makers = dict(cores())
    from ddnhw.lower.estimate import block_features
    for r in rows:
        core = makers[r["name"]]()      # a block spec (calibrate_estimate.cores)
        r["top"] = top_overhead(core)
        r["features"] = block_features(core)   # the current feature definitions


def fit(family):
    rows = json.loads((ROOT / "bench" / "results" / f"calibration_{family}.json").read_text())
    _add_top(rows)
    # constant-weight (depth-1, fully parallel) builds follow another law: not fitted here
    fold = [r for r in rows if r["block"] == "FoldedDense"
            and r["features"]["memories"][0][1] > 1]
    # top overhead: w_in + 2 + w_out FFs, w_out LUTs (the measurement shift registers)
    f = [r["features"]["luts"] for r in fold]
    A = np.array([[x["mul"] + x["add"] + x["acc"], x["mux"], x["ffs"], 1.0] for x in f], float)
    y = np.array([r["luts"] - r["top"]["luts"] for r in fold], float)
    coef, _ = nnls(A, y)
    yf = np.array([r["ffs"] - r["top"]["ffs"] for r in fold], float)
    ff = float(np.sum(yf * A[:, 2]) / np.sum(A[:, 2] ** 2))
    out = {"mul": round(float(coef[0]), 3), "add": round(float(coef[0]), 3),
           "acc": round(float(coef[0]), 3), "mux": round(float(coef[1]), 3),
           "ffs": round(float(coef[2]), 3)}
    out["ctrl"] = round(float(coef[-1]), 1)
    out["ff"] = round(ff, 3)
    pred = A @ coef
    for r, p, t in zip(fold, pred, y):
        print(f"{family} {r['name']:16s} luts {t:6.0f} fit {p:6.0f} ({100 * (p - t) / t:+.1f}%)"
              f"  ffs {r['ffs'] - r['top']['ffs']} fit {ff * r['features']['ffs']['ff']:.0f}")
    for r in rows:
        if r["block"] != "FoldedDense":
            est = {k: sum(r["features"][k].values()) for k in ("luts", "ffs")}   # unscaled
            print(f"{family} {r['name']:16s} luts {r['luts'] - r['top']['luts']} "
                  f"block estimate {est['luts']}  ffs {r['ffs'] - r['top']['ffs']} vs {est['ffs']}")
    return out


def fit_scale(family, block="Dense"):
    """Least-squares factor (through the origin) from a ``block``'s structural LUT count to
    nextpnr's, over that block's calibration builds (measurement top subtracted): the
    ``COEFFS[family]["dense"]`` (or ``"requant"``) of the unrolled blocks."""
    rows = [r for r in json.loads((ROOT / "bench" / "results" /
                                   f"calibration_{family}.json").read_text())
            if r["block"] == block]
    e = np.array([r["features"]["luts"] for r in rows], float)
    m = np.array([r["luts"] - r["top"]["luts"] for r in rows], float)
    return round(float(e @ m / (e @ e)), 3)


if __name__ == "__main__":
    for fam in sys.argv[1:] or ["ice40", "ecp5"]:
        print(fam, fit(fam))
        print(fam, "dense", fit_scale(fam), "requant", fit_scale(fam, "Requantizer"))
