"""Benchmark: a folded depthwise convolution costs what it computes. The ``cnn-dws`` example (the
digits CNN with a depthwise-separable block: conv 3x3 x8, depthwise 3x3 x8, pointwise 1x1 x8,
maxpool 2, dense 10; 4-bit) against the same CNN with a dense 3x3 x8 conv in place of the block.

Per layer (the depthwise conv ``conv1`` with its sliding window and fused requantizer; per-image
II, iCE40 estimates): every grouped folding (what the lowering builds now), the same layer
folded the old way (a FoldedDense over the dense ``(8, 72)`` expansion, zeros included) and the
dense 3x3 x8 -> x8 conv; the cheapest of each at every II. Per network: the folding that
``ddnhw build`` chooses for the iCEBreaker (UP5K). ``--builds``: yosys + nextpnr for the
UP5K of the layers at the grouped (1, 9) II and of both planned networks. ``--seeds``: 4-bit
test accuracy (golden model) of both models over those seeds (mean ± std).

    .venv/bin/python bench/depthwise.py [--out bench/results] [--work DIR] [--epochs 40]
        [--seeds 0,1,2,3,4] [--builds]

Writes ``<out>/depthwise.json`` and ``<out>/depthwise.md``.
"""
from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ddnhw import examples, flow, golden  # noqa: E402
from ddnhw.examples.records import DIGITS_DWS_LAYERS  # noqa: E402
from ddnhw.hw import ChainSpec, FoldedDenseSpec  # noqa: E402
from ddnhw.ir.ops import conv_matrix  # noqa: E402
from ddnhw.lower.estimate import estimate_block  # noqa: E402
from ddnhw.lower.registry import divisors, lower_spec, window_for  # noqa: E402
from ddnhw.lower.timing import window_mac_ii  # noqa: E402
from bench.common import bench_dirs, bench_parser  # noqa: E402
from bench.run import machine  # noqa: E402

BOARD = "icebreaker"
FAMILY = "ice40"
NET_BOARDS = ("icebreaker", "ulx3s-85f")
NET_TARGETS = (200, 500, 1200, 5000)     # network IIs (cycles per image) to plan for
# the dense counterpart: the depthwise-separable block replaced by one dense 3x3 x8 conv
DENSE_LAYERS = (*DIGITS_DWS_LAYERS[:2], {"op": "conv", "out": 8, "kernel": 3, "padding": 1},
                *DIGITS_DWS_LAYERS[4:])
MODELS = {"cnn-dws": ("cnn-dws", {}), "cnn-dense": ("cnn", {"layers": DENSE_LAYERS,
                                                             "channels": 8})}
LAYER = "conv2"      # the depthwise conv of cnn-dws, the dense 3x3 conv of cnn-dense


def train(model, epochs, seed, work):
    """``(graph, metrics)`` trained once per (model, epochs, seed) and cached in ``work``."""
    path = work / f"{model}_e{epochs}_s{seed}.npz"
    mpath = path.with_suffix(".json")
    if path.exists() and mpath.exists():
        return flow.load_model(path), json.loads(mpath.read_text())
    name, settings = MODELS[model]
    r = examples.train(name, seed=seed, epochs=epochs, **settings)
    x, y = examples.test_inputs(name, r.graph)
    m = {"float_accuracy": float(r.float_accuracy), "qat_accuracy": float(r.qat_accuracy),
         "golden_accuracy": float(np.mean(golden.classify(r.graph, x) == y)),
         "train_seconds": round(r.seconds, 1)}
    flow.save_graph(r.graph, path)
    mpath.write_text(json.dumps(m))
    return r.graph, m


def _requant_after(graph, node):
    return next(n for n in graph.nodes if n.inputs == node.outputs and n.op == "requant")


def _row(kind, fold, chain, mac):
    est = estimate_block(chain, FAMILY)
    return {"kind": kind, "fold": list(fold), "ii": int(chain.ii), "mac_ii": int(mac.ii),
            "macs": fold[0] * fold[1], "weight_bits": int(mac.mem_width * mac.mem_depth),
            "estimate": est}


def layer_rows(graph, kind):
    """Every folding of ``graph``'s ``LAYER`` as the lowering builds it (grouped for the
    depthwise conv), and for the depthwise conv also the dense expansion (``"dw-dense-exp"``)."""
    node = graph.node(LAYER)
    rq = _requant_after(graph, node)
    a, r = node.attrs, rq.attrs
    xt, yt = graph.tensors[node.inputs[0]].dtype, graph.tensors[rq.outputs[0]].dtype
    groups = int(a.get("groups", 1))
    c = graph.tensors[node.inputs[0]].shape[-1]
    w = conv_matrix(a["weight"], c, groups)
    rows = []
    for pe in divisors(w.shape[0]):
        for simd in divisors(w.shape[1] // groups):
            try:
                chain = lower_spec(graph, node, hw={"fold": [pe, simd],
                                                    "fuse_requant": rq.name})
            except ValueError:
                continue          # pe not allowed for the groups
            rows.append(_row(kind, (pe, simd), chain, chain.children[-1]))
    if groups > 1:              # the old lowering: the dense expansion, zeros included
        win = window_for(graph, node)
        for pe in divisors(w.shape[0]):
            for simd in divisors(w.shape[1]):
                mac = FoldedDenseSpec(w, a["bias"], xt, yt, pe=pe, simd=simd,
                                      requant=(r["multiplier"], r["shift"], r["lo"], r["hi"]))
                chain = ChainSpec(win, mac, ii=window_mac_ii(win, mac.ii, True))
                rows.append(_row("dw-dense-exp", (pe, simd), chain, mac))
    return rows


def cheapest(rows, kind, ii):
    ok = [r for r in rows if r["kind"] == kind and r["ii"] <= ii]
    return min(ok, key=lambda r: (r["estimate"]["luts"], r["ii"])) if ok else None


def plan(graph, board):
    """The folding ``ddnhw build`` chooses for ``board`` and the planned network (estimates),
    or ``{"error": ...}`` when nothing fits."""
    from ddnhw import DdnhwError
    from ddnhw.board import get_board
    from ddnhw.lower import plan_network
    family = get_board(board).family
    try:
        p = flow.choose_folding(graph, get_board(board))
    except DdnhwError as e:
        return {"board": board, "error": str(e)}
    net = plan_network(graph, folding=p["folding"] or {}, family=family)
    return {"board": board, "mode": p["mode"], "folding": json.loads(json.dumps(p["folding"])),
            "ii": int(net.ii), "latency": int(net.latency),
            "estimate": {k: sum(la["estimate"].get(k, 0) for la in net.layers)
                         for k in ("luts", "ffs", "dsps", "brams")},
            "layers": {la["name"]: {"ii": la.get("ii"), "luts": la["estimate"]["luts"],
                                    "pe": la.get("pe"), "simd": la.get("simd")}
                       for la in net.layers if "estimate" in la}}


def network_at(graph, target_ii):
    """The cheapest folding of ``graph`` (iCE40 estimates, no budget) with II <= target."""
    from ddnhw.passes.fold import plan as fold_plan
    p = fold_plan(graph, target_ii=target_ii)
    return {"ii": int(p["ii"]), "estimate": p["estimate"],
            "folding": json.loads(json.dumps(p["folding"]))}


def _build(core, outdir, ii, board=BOARD):
    from ddnhw.board import build as board_build
    t = time.perf_counter()
    rep = board_build(core, board, outdir)
    row = {"board": board, "build_seconds": round(time.perf_counter() - t, 1), "ii": int(ii)}
    row.update({k: rep.get(k) for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz",
                                       "timing_met")})
    return row


def build_layer(row, graph, work):
    """UP5K build of one layer row (its window + MAC chain in the measurement top)."""
    node = graph.node(LAYER)
    if row["kind"] == "dw-dense-exp":
        rq = _requant_after(graph, node)
        a, r = node.attrs, rq.attrs
        xt, yt = graph.tensors[node.inputs[0]].dtype, graph.tensors[rq.outputs[0]].dtype
        c = graph.tensors[node.inputs[0]].shape[-1]
        win = window_for(graph, node)
        mac = FoldedDenseSpec(conv_matrix(a["weight"], c, int(a["groups"])), a["bias"], xt, yt,
                              pe=row["fold"][0], simd=row["fold"][1],
                              requant=(r["multiplier"], r["shift"], r["lo"], r["hi"]))
        chain = ChainSpec(win, mac, ii=window_mac_ii(win, mac.ii, True))
    else:
        chain = lower_spec(graph, node, hw={"fold": row["fold"],
                                            "fuse_requant": _requant_after(graph, node).name})
    tag = f"{row['kind']}_{row['fold'][0]}x{row['fold'][1]}"
    return {"layer": tag, **_build(chain.build(), work / "build" / tag, chain.ii)}


def build_network_row(model, graph, p, work):
    from ddnhw.board import get_board
    from ddnhw.lower import build_network
    net = build_network(graph, folding=p["folding"] or {}, family=get_board(p["board"]).family)
    return {"network": model, **_build(net, work / "build" / f"{model}_{p['board']}", net.ii,
                                       p["board"])}


def main(argv=None):
    ap = bench_parser(__doc__, "/tmp/ddnhw-bench-depthwise")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--builds", action="store_true", help="UP5K builds of the layers")
    ap.add_argument("--network-builds", action="store_true",
                    help=f"builds of both networks for {NET_BOARDS[-1]}")
    a = ap.parse_args(argv)
    work, out = bench_dirs(a)
    seeds = [int(s) for s in a.seeds.split(",") if s]
    res = {"machine": machine(), "date": datetime.date.today().isoformat(),
           "epochs": a.epochs, "board": BOARD, "family": FAMILY, "accuracy": {}}
    for model in MODELS:
        runs = {s: train(model, a.epochs, s, work)[1] for s in seeds}
        acc = [r["golden_accuracy"] for r in runs.values()]
        res["accuracy"][model] = {"runs": runs, "mean": float(np.mean(acc)),
                                  "std": float(np.std(acc))}
        print(model, res["accuracy"][model]["mean"], res["accuracy"][model]["std"], flush=True)
    dws, _ = train("cnn-dws", a.epochs, seeds[0], work)
    dense, _ = train("cnn-dense", a.epochs, seeds[0], work)
    rows = layer_rows(dws, "dw-grouped") + layer_rows(dense, "dense-conv")
    res["layer_rows"] = rows
    res["window"] = estimate_block(window_for(dws, dws.node(LAYER)), FAMILY)
    targets = sorted({r["ii"] for r in rows if r["kind"] == "dw-grouped"})
    res["by_ii"] = [{"ii": t, **{k: cheapest(rows, k, t) for k in
                                 ("dw-grouped", "dw-dense-exp", "dense-conv")}}
                    for t in targets]
    res["networks"] = [{"model": m, **plan(g, b)} for b in NET_BOARDS
                       for m, g in (("cnn-dws", dws), ("cnn-dense", dense))]
    print(json.dumps(res["networks"], indent=1), flush=True)
    res["network_by_ii"] = [{"target_ii": t, **{m: network_at(g, t) for m, g in
                                                 (("cnn-dws", dws), ("cnn-dense", dense))}}
                            for t in NET_TARGETS]
    if a.builds:
        def row(kind, fold):
            return next(r for r in rows if r["kind"] == kind and r["fold"] == list(fold))
        # grouped (1, 9), (1, 3), (1, 1); the other two variants at the IIs of (1, 1) and
        # (1, 3), the dense expansion with the MACs of (1, 9) and at its II (estimated above
        # the UP5K's 5280 cells)
        picks = [row("dw-grouped", (1, 9)), row("dw-grouped", (1, 1)),
                 cheapest(rows, "dw-dense-exp", row("dw-grouped", (1, 1))["ii"]),
                 row("dw-dense-exp", (1, 9)),
                 cheapest(rows, "dense-conv", row("dw-grouped", (1, 1))["ii"]),
                 row("dw-grouped", (1, 3)),
                 cheapest(rows, "dw-dense-exp", row("dw-grouped", (1, 3))["ii"]),
                 cheapest(rows, "dense-conv", row("dw-grouped", (1, 3))["ii"]),
                 cheapest(rows, "dw-dense-exp", row("dw-grouped", (1, 9))["ii"])]
        res["layer_builds"] = []
        for r in picks:
            try:
                b = build_layer(r, dws if r["kind"] != "dense-conv" else dense, work)
            except Exception as e:      # a build that does not fit: recorded as such
                b = {"layer": f"{r['kind']}_{r['fold'][0]}x{r['fold'][1]}", "ii": r["ii"],
                     "error": str(e)[:300]}
            res["layer_builds"].append({**b, "estimate": r["estimate"]})
            print(res["layer_builds"][-1], flush=True)
    if a.network_builds:
        res["network_builds"] = []
        for p in res["networks"]:
            if p["board"] == NET_BOARDS[-1] and "error" not in p:
                g = dws if p["model"] == "cnn-dws" else dense
                res["network_builds"].append({**build_network_row(p["model"], g, p, work),
                                              "estimate": p["estimate"]})
                print(res["network_builds"][-1], flush=True)
    if (out / "depthwise.json").exists():      # keep builds not rerun now
        old = json.loads((out / "depthwise.json").read_text())
        for k in ("layer_builds", "network_builds"):
            if k in old and k not in res:
                res[k] = old[k]
    flow.write_json_atomic(out / "depthwise.json", res)
    write_md(res, out / "depthwise.md")
    return 0


def _fmt(r):
    if r is None:
        return "— | — | —"
    e = r["estimate"]
    return f"({r['fold'][0]}, {r['fold'][1]}) | {r['macs']} | {e['luts']}"


def write_md(res, path):
    m = res["machine"]
    lines = [
        "# Folded depthwise convolution (grouped FoldedDense) vs dense expansion vs dense conv",
        "",
        f"Measured {res['date']} on {m['cpu']} ({m['cores']} cores), Python {m['python']}. "
        f"Reproduce: `python bench/depthwise.py --builds`. Models: `cnn-dws` (conv 3x3 x8, "
        f"maxpool 2, depthwise 3x3 x8, pointwise 1x1 x8, dense 10) and `cnn-dense` (the "
        f"block replaced by a dense 3x3 x8 conv), 4-bit, {res['epochs']} float + "
        f"{res['epochs']} QAT epochs on the digits.", "",
        "## One layer: 4x4x8 in, 3x3 padding 1, 8 out (sliding window + folded MAC + fused "
        "requant)", "",
        "II in cycles per image; LUTs: iCE40 estimate (`ddnhw.lower.estimate`) of the window "
        "and MAC; MACs = pe x simd. For every II the grouped foldings reach, the cheapest "
        "folding of each variant at that II or below: the depthwise conv as built now "
        "(grouped: each channel's 9 weights only), the same depthwise conv folded the old way "
        "(a FoldedDense over its dense 8 x 72 expansion, 7 of 8 weights zero) and a dense "
        f"3x3 x8 conv. The sliding window alone is estimated at {res['window']['luts']} LUTs "
        f"(the same in every row).", "",
        "| II <= | dw grouped (pe, simd) | MACs | LUTs | dw dense expansion (pe, simd) | MACs | "
        "LUTs | dense conv (pe, simd) | MACs | LUTs |", "|---|---|---|---|---|---|---|---|---|---|"]
    for b in res["by_ii"]:
        lines.append(f"| {b['ii']} | {_fmt(b['dw-grouped'])} | {_fmt(b['dw-dense-exp'])} | "
                     f"{_fmt(b['dense-conv'])} |")
    g = {tuple(r["fold"]): r for r in res["layer_rows"] if r["kind"] == "dw-grouped"}
    d = {tuple(r["fold"]): r for r in res["layer_rows"] if r["kind"] == "dw-dense-exp"}
    lines += ["", "Same (pe, simd), grouped vs dense expansion: the II and the weight memory "
              "shrink by the channel count.", "",
              "| (pe, simd) | grouped II | grouped weight bits | dense-exp II | "
              "dense-exp weight bits |", "|---|---|---|---|---|"]
    for f in sorted(g):
        if f in d:
            lines.append(f"| {f} | {g[f]['ii']} | {g[f]['weight_bits']} | {d[f]['ii']} | "
                         f"{d[f]['weight_bits']} |")
    if res.get("layer_builds"):
        lines += ["", f"UP5K builds ({BOARD}, yosys + nextpnr, measurement top) of single "
                  "layers. The window is most of a slow layer (see above). The estimate of the "
                  "dense expansion counts every stored zero; yosys makes its small weight ROM "
                  "logic and simplifies the zero bits, so it builds smaller than estimated, "
                  "but still larger than the grouped layer at the same II.", "",
                  "| layer (pe x simd) | II | LUTs (est.) | LCs built | FFs | BRAMs | fmax MHz |",
                  "|---|---|---|---|---|---|---|"]
        for b in sorted(res["layer_builds"], key=lambda b: (b["ii"], b["layer"])):
            if "error" in b:
                lines.append(f"| {b['layer']} | {b['ii']} | {b['estimate']['luts']} | "
                             f"failed: {b['error'][:120]} | | | |")
                continue
            lines.append(f"| {b['layer']} | {b['ii']} | {b['estimate']['luts']} | {b['luts']} "
                         f"| {b['ffs']} | {b['brams']} | {b['fmax_mhz']} |")
    lines += ["", "## Whole networks, folded as `ddnhw build --board B` chooses", "",
              "| board | model | mode | II | LUTs (est.) | FFs (est.) | BRAMs (est.) | "
              "folding |", "|---|---|---|---|---|---|---|---|"]
    for p in res["networks"]:
        if "error" in p:
            lines.append(f"| {p['board']} | {p['model']} | does not fit | | | | | "
                         f"{p['error']} |")
            continue
        e = p["estimate"]
        lines.append(f"| {p['board']} | {p['model']} | {p['mode']} | {p['ii']} | {e['luts']} | "
                     f"{e['ffs']} | {e['brams']} | `{json.dumps(p['folding'])}` |")
    if res.get("network_builds"):
        lines += ["", "| network build | board | II | LUTs (est.) | LUTs built | FFs | BRAMs | "
                  "fmax MHz |", "|---|---|---|---|---|---|---|---|"]
        for b in res["network_builds"]:
            lines.append(f"| {b['network']} | {b['board']} | {b['ii']} | "
                         f"{b['estimate']['luts']} | {b['luts']} | {b['ffs']} | {b['brams']} | "
                         f"{b['fmax_mhz']} |")
    lines += ["", "Cheapest folding of each whole network at a network II (iCE40 estimates, "
              "no budget: `ddnhw.passes.fold.plan(graph, target_ii=T)`):", "",
              "| II <= | cnn-dws II | cnn-dws LUTs | cnn-dense II | cnn-dense LUTs |",
              "|---|---|---|---|---|"]
    for r in res["network_by_ii"]:
        d, n = r["cnn-dws"], r["cnn-dense"]
        lines.append(f"| {r['target_ii']} | {d['ii']} | {d['estimate']['luts']} | {n['ii']} | "
                     f"{n['estimate']['luts']} |")
    lines += ["", "## Accuracy (4-bit, golden model on the held-out 360 digits)", "",
              "| model | seeds | mean | std |", "|---|---|---|---|"]
    for name, acc in res["accuracy"].items():
        lines.append(f"| {name} | {len(acc['runs'])} | {acc['mean']:.4f} | {acc['std']:.4f} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
