"""LSTM (the ``lstm`` cell of the recurrent block) in the Amaranth simulator == golden model on
seeded random graphs (random shapes and widths, narrow cell states that clip), unrolled and
folded engines, several gate-lane foldings, last-step and every-step outputs, under random idle
cycles and backpressure; exact cycle counts at full rate; the cycle model follows the
simulator's valid/ready cycle by cycle; checks, cost features and the lowering."""
from __future__ import annotations

from copy import deepcopy

import numpy as np
import pytest

from ddnhw import DdnhwError, golden
from ddnhw.hw.recurrent import GATE_DEPTH, RecurrentSpec
from ddnhw.ir.testing import random_lstm, random_lstm_classifier, random_recurrent
from ddnhw.lower.estimate import block_features, estimate_block
from ddnhw.passes.fold import layer_options
from ddnhw.lower.registry import lower_spec

from .test_recurrent import _fold_options, check_recurrent, sequences
from .test_protocol import lockstep


def random_graph(seed, return_sequences, cell_bits=None):
    """A random single-layer lstm graph with random sizes and widths (from ``seed``); the
    cell state is 3..9 bits unless ``cell_bits`` is given."""
    rng = np.random.default_rng(seed)
    return random_lstm(
        seed, steps=int(rng.integers(1, 5)), n_in=int(rng.integers(1, 5)),
        hidden=int(rng.choice([1, 2, 3, 4, 6])), in_bits=int(rng.integers(2, 7)),
        w_bits=int(rng.integers(2, 6)), state_bits=int(rng.integers(4, 10)),
        lut_bits=int(rng.integers(3, 8)), gate_frac=int(rng.integers(0, 8)),
        cell_bits=cell_bits or int(rng.integers(3, 10)), return_sequences=return_sequences,
        in_signed=bool(rng.integers(0, 2)))


def clips(graph, x) -> bool:
    """Whether the cell state clips on inputs ``x``: the outputs change with a 30-bit cell."""
    wide = deepcopy(graph)
    wide.nodes[0].attrs["cell_bits"] = 30
    return not np.array_equal(golden.run(graph, x), golden.run(wide, x))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("return_sequences", [0, 1])
def test_lstm_random(return_sequences, seed):
    g = random_graph(seed * 7 + return_sequences + 300, return_sequences)
    for k, (fold, lanes) in enumerate(_fold_options(g, seed)):
        check_recurrent(g, fold, lanes, n=6, seed=seed * 10 + k)


@pytest.mark.parametrize("fold, lanes", [(None, None), (None, 2), ((3, 5), 1), ((16, 7), 4)])
def test_lstm_narrow_cell_clips(fold, lanes):
    """A 4-bit cell state saturates (the outputs differ from a 30-bit cell's); the hardware
    clips exactly as the golden model."""
    g = random_lstm(21, steps=6, n_in=3, hidden=4, in_bits=4, w_bits=5, state_bits=8,
                    lut_bits=6, gate_frac=5, cell_bits=4, return_sequences=1)
    assert clips(g, sequences(g, 8, 0))
    check_recurrent(g, fold, lanes, n=8)


@pytest.mark.parametrize("fold, lanes", [(None, None), (None, 2), ((1, 1), 1), ((8, 7), 4)])
@pytest.mark.parametrize("return_sequences", [0, 1])
def test_lstm_full_rate(fold, lanes, return_sequences):
    """Back-to-back input, always-ready output: one step per ``step_cycles`` cycles, the
    documented ``latency`` and ``ii``."""
    g = random_lstm(5, steps=3, n_in=3, hidden=4, return_sequences=return_sequences)
    dut, log = check_recurrent(g, fold, lanes, n=4, idle=0.0, stall=0.0)
    assert GATE_DEPTH["lstm"] == 6
    assert dut.step_cycles == dut.engine.latency + 4 // dut.gate_lanes + GATE_DEPTH["lstm"] - 1
    assert dut.ii == 3 * dut.step_cycles
    assert np.all(np.diff(log["in"]) == dut.step_cycles)
    firsts = log["in"][::3]
    if return_sequences:
        assert [o - i for i, o in zip(log["in"], log["out"])] == [dut.latency] * 12
    else:
        assert [o - i for i, o in zip(firsts, log["out"])] == [dut.latency] * 4 == \
            [dut.ii] * 4


def test_lstm_wide_signed_bursty():
    g = random_lstm(11, steps=3, n_in=5, hidden=2, in_bits=8, w_bits=6, state_bits=12,
                    lut_bits=9, gate_frac=10, cell_bits=14, in_signed=True, return_sequences=1)
    check_recurrent(g, None, 1, n=6)
    check_recurrent(g, (4, 7), 2, n=5, idle=0.0, stall=lambda c: (c // 13) % 3 != 0)


def _spec(g, **kw):
    a = g.nodes[0].attrs
    args = dict(op=g.nodes[0].op, weight=a["weight"], bias=a["bias"],
                multiplier=a["multiplier"], shift=a["shift"], lut_lo=a["lut_lo"],
                lut_hi=a["lut_hi"], tanh_table=a["tanh_table"], in_type=g.input.dtype,
                state_type=g.output.dtype, steps=g.input.shape[0],
                sigmoid_table=a.get("sigmoid_table"), gate_frac=a.get("gate_frac"),
                cell_bits=a.get("cell_bits"))
    return RecurrentSpec(**{**args, **kw})


@pytest.mark.parametrize("fold, lanes, rs", [(None, None, 0), (None, 2, 1), ((2, 3), 1, 1),
                                             ((4, 7), 2, 0)])
@pytest.mark.parametrize("p", [(0.6, 0.6), (1.0, 0.3), (0.3, 1.0)])
def test_lstm_cycle_model_matches_simulator(fold, lanes, rs, p):
    g = random_lstm(3, steps=3, n_in=3, hidden=4, return_sequences=rs)
    spec = _spec(g, fold=fold, gate_lanes=lanes, return_sequences=rs)
    fired = lockstep(spec, 300, seed=7, p_valid=p[0], p_ready=p[1])
    assert sum(out for _, out in fired) > 0


@pytest.mark.parametrize("kw, match", [
    ({"cell_bits": None}, "lstm needs cell_bits"),
    ({"cell_bits": 1}, "cell_bits must be an int >= 2"),
    ({"cell_bits": 31}, "cell_bits must be in 2..30"),
    ({"multiplier": np.ones(12, dtype=np.int64)}, r"multiplier must be .* shape \(20,\)"),
    ({"sigmoid_table": None}, "sigmoid_table must be an integer array"),
    ({"gate_lanes": 3}, "gate_lanes 3 must divide the hidden size 4"),
])
def test_lstm_rejects(kw, match):
    g = random_lstm(1, steps=2, n_in=3, hidden=4)
    with pytest.raises(ValueError, match=match):
        _spec(g, **kw)


def test_cell_bits_only_for_lstm():
    g = random_recurrent(1, op="gru", steps=2, n_in=2, hidden=2)
    with pytest.raises(ValueError, match="cell_bits is an lstm parameter"):
        _spec(g, cell_bits=8)


def test_lstm_features_and_estimate():
    """Three variable products per gate lane (``f * c``, ``i * g``, ``o * tanh(c)``), five
    index requantizer blocks, five table reads per lane, ``H`` cell registers."""
    g = random_lstm(2, steps=3, n_in=3, hidden=4, gate_frac=6, cell_bits=12, state_bits=8)
    for lanes in (1, 2, 4):
        s = _spec(g, gate_lanes=lanes)
        f = block_features(s)
        # the cell's products follow the requantizers' (variable-multiplier plans)
        assert f["var_muls"][-3 * lanes:] == ((7, 12), (7, 8), (7, 8)) * lanes
        assert len(s.classes) == 5 and all(len(q) == lanes for q in s.classes)
        assert s.pre_ranges[16:] == [(-2048, 2047)] * 4
        est = estimate_block(s, "ecp5")
        assert est["dsps"] >= 3 * lanes and est["luts"] > 0
    one, four = (estimate_block(_spec(g, gate_lanes=k), "ice40") for k in (1, 4))
    assert one["luts"] < four["luts"] and one["ffs"] < four["ffs"]


def test_lstm_lowering_and_fold_options():
    """The lowering builds the lstm block from the node (``cell_bits`` included); the folding
    planner offers it every ``(pe, simd)`` and the unrolled engine, like a gru."""
    g = random_lstm_classifier(4, steps=3, n_in=3, hidden=4)
    n = g.nodes[0]
    s = lower_spec(g, n, hw={"fold": (2, 7), "gate_lanes": 2})
    assert (s.op, s.cell_bits, s.fold, s.gate_lanes) == ("lstm", 10, (2, 7), 2)
    opts = layer_options(g, n, "ice40")
    folds = [o["fold"] for o in opts]
    assert sorted(folds, key=str) == sorted(
        [(pe, simd) for pe in (1, 2, 4, 8, 16) for simd in (1, 7) if (pe, simd) != (16, 7)]
        + [None], key=str)
    assert min(o["ii"] for o in opts) == next(o["ii"] for o in opts if o["fold"] is None)
    with pytest.raises(DdnhwError, match="gate_lanes 3 must divide"):
        lower_spec(g, n, hw={"gate_lanes": 3})


@pytest.mark.synth
@pytest.mark.parametrize("lanes", [1, 2])
def test_lstm_dsps_match_yosys(tmp_path, lanes):
    """Yosys' coarse synthesis (up to the DSP mapping) of a folded lstm block: its DSP cells
    (requantizers, ``f * c``, ``i * g``, ``o * tanh(c)``, the engine) equal the estimate on
    both families."""
    from amaranth.back import verilog

    from tests.lower.test_estimate_dsps import SYNTH, yosys_dsps
    g = random_lstm(6, steps=2, n_in=3, hidden=4, w_bits=4, state_bits=8, lut_bits=8,
                    gate_frac=7, cell_bits=12)
    spec = _spec(g, fold=(2, 7), gate_lanes=lanes)
    (tmp_path / "lstm.v").write_text(verilog.convert(spec.build(), name="lstm",
                                                     emit_src=False))
    for family in SYNTH:
        assert yosys_dsps(tmp_path, "lstm", family, "map_ram") == \
            estimate_block(spec, family)["dsps"], family
