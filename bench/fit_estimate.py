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
        print(fam, "dense + adders", fit_dense(fam))


def fit_dense(family):
    """Least squares (non-negative) ``(dense, dense_adder)`` of ``COEFFS[family]``: nextpnr's
    LUTs of unrolled Dense logic = ``dense`` x structural LUT4s + ``dense_adder`` x adders (a
    carry chain's own overhead), over the Dense calibration builds (measurement top
    subtracted) and the unrolled peer builds of bench/peers.py (top and the requantizers'
    estimate subtracted). Prints the per-build error of the fit."""
    board = {"ice40": "icebreaker", "ecp5": "ulx3s-85f"}[family]
    rows = [r for r in json.loads((ROOT / "bench" / "results" /
                                   f"calibration_{family}.json").read_text())
            if r["block"] == "Dense"]
    _add_top(rows)                 # the features by the current definitions
    pts = [(r["name"], r["features"]["luts"]["dense"], r["features"]["luts"]["dense_adder"],
            r["features"]["luts"]["dense_ff"], r["luts"] - r["top"]["luts"]) for r in rows]
    peers = ROOT / "bench" / "results" / "peers.json"
    if peers.exists():
        for kind, m in json.loads(peers.read_text())["models"].items():
            for d in m["designs"]:
                b = d.get("builds", {}).get(board) or {}
                f = (d.get("dense_features") or {}).get(family)
                if b.get("luts") and f:
                    pts.append((f"peer_{kind}_{d['name'].split()[1]}", f["dense"],
                                f["dense_adder"], f["dense_ff"], b["luts"] - f["other_luts"]))
    # ECP5: bits and adders (its flip-flops sit beside the LUTs); iCE40: bits and flip-flops
    # (a logic cell per register no adder's LUT holds; the adders' own cost comes out 0)
    cols = [1, 2] if family == "ecp5" else [1, 3]
    A = np.array([[p[i] for i in cols] for p in pts], float)
    y = np.array([p[4] for p in pts], float)
    coef, _ = nnls(A, y)
    for p, fit in zip(pts, A @ coef):
        print(f"{family} {p[0]:24s} luts {p[4]:7.0f} fit {fit:7.0f} ({100 * (fit - p[4]) / p[4]:+.1f}%)")
    out = {"dense": 0.0, "dense_adder": 0.0, "dense_ff": 0.0}
    for name, c in zip(["dense", "dense_adder", "dense_ff"][:1] + (
            ["dense_adder"] if family == "ecp5" else ["dense_ff"]), coef):
        out[name] = round(float(c), 3)
    return out
