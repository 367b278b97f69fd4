"""The block protocol: every hw component has a spec with a cycle model and cost features;
specs create no Amaranth Elaboratable (and a rejected block never exists); every cycle model
(Recurrent, Fork and AlignedAdd included) follows its block's valid/ready in the Amaranth
simulator cycle by cycle under random idle cycles and backpressure; no code reaches into
Amaranth's private MustUse silence flag or dispatches on class names in ``ddnhw/lower``."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
from amaranth._unused import MustUse
from amaranth.hdl import Fragment, Shape, Value, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

import ddnhw.hw as hw
from ddnhw import DdnhwError
from ddnhw.hw.protocol import FEATURE_KEYS, BlockSpec, SpecComponent
from ddnhw.ir import IntType
from ddnhw.ir.testing import random_recurrent
from ddnhw.lower.estimate import estimate_block
from ddnhw.lower.registry import lower_spec
from ddnhw.lower.timing import chain_timing

ROOT = Path(__file__).resolve().parents[2]
U4, S8 = IntType(False, 4), IntType(True, 8)


def _recurrent(op, seed, return_sequences=0, fold=None, gate_lanes=None):
    g = random_recurrent(seed, op=op, steps=3, n_in=2, hidden=4,
                         return_sequences=return_sequences)
    n = g.nodes[0]
    return lower_spec(g, n, hw={"fold": fold, "gate_lanes": gate_lanes})


def specs():
    """One or more example specs of every block (name -> factory)."""
    rng = np.random.default_rng(0)
    w, b = rng.integers(-7, 8, (5, 6)), rng.integers(-20, 20, 5)
    rq = (rng.integers(1, 200, 5), np.full(5, 6), 0, 15)
    win = hw.SlidingWindowSpec(4, 5, 2, U4, 3, 3, 1, 1)
    return {
        "Dense": lambda: hw.DenseSpec(w, b, U4, IntType(True, 12), regs_every=1),
        "XnorDense": lambda: hw.XnorDenseSpec(np.sign(w) * 3, b, IntType(True, 2),
                                              IntType(True, 10)),
        "FoldedDense": lambda: hw.FoldedDenseSpec(w, b, U4, IntType(True, 12), pe=2, simd=3),
        "FoldedDense_requant": lambda: hw.FoldedDenseSpec(w, b, U4, U4, pe=5, simd=2,
                                                          requant=rq),
        "FoldedDense_rq_reg": lambda: hw.FoldedDenseSpec(w, b, U4, U4, pe=5, simd=2,
                                                         requant=rq, rq_reg=True),
        "FoldedDense_rq_reg_decoupled": lambda: hw.FoldedDenseSpec(w, b, U4, U4, pe=1, simd=3,
                                                                   requant=rq, rq_reg=True),
        "FoldedDense_single": lambda: hw.FoldedDenseSpec(w, b, U4, IntType(True, 12), pe=1,
                                                         simd=2, single_buffer=True),
        "Requantizer": lambda: hw.RequantizerSpec(rq[0], rq[1], 0, 15, IntType(True, 10), U4),
        "StreamFIFO": lambda: hw.StreamFIFOSpec(data.ArrayLayout(unsigned(4), 3), 3),
        "StreamFIFO_2": lambda: hw.StreamFIFOSpec(unsigned(5), 2),
        "SlidingWindow": lambda: win,
        "WindowPool": lambda: hw.WindowPoolSpec("max", 4, 2, U4),
        "Collector": lambda: hw.CollectorSpec(4, 2, U4),
        "Chain": lambda: hw.ChainSpec(win, hw.FoldedDenseSpec(
            rng.integers(-3, 4, (2, 18)), np.zeros(2, dtype=np.int64), U4, IntType(True, 12),
            pe=1, simd=9)),
        "Chain_pool": lambda: hw.ChainSpec(hw.SlidingWindowSpec(4, 4, 2, U4, 2, 2, 2),
                                           hw.WindowPoolSpec("avg", 4, 2, U4)),
        "Recurrent_rnn": lambda: _recurrent("rnn", 1, 1),
        "Recurrent_gru": lambda: _recurrent("gru", 2),
        "Recurrent_gru_folded": lambda: _recurrent("gru", 3, 1, fold=(2, 3), gate_lanes=2),
        "Recurrent_rnn_folded": lambda: _recurrent("rnn", 4, 0, fold=(1, 1)),
        "Fork": lambda: hw.ForkSpec(data.ArrayLayout(unsigned(3), 2), 3),
        "AlignedAdd": lambda: hw.AlignedAddSpec(2, U4, S8, IntType(True, 11), 1, 0),
        "RowPool": lambda: hw.RowPoolSpec("max", 2, 4, 5, 2, U4),
        "StreamDense": lambda: hw.StreamDenseSpec(rng.integers(-7, 8, (3, 12)),
                                                  np.zeros(3, dtype=np.int64), U4,
                                                  IntType(True, 12), 4, pe=3, simd=2, pipe=1),
    }


def _beats_per_input(spec):
    """Input beats per output beat: an image's pixels, a sequence's steps, a vector's beats."""
    first = spec.children[0] if spec.chain else spec
    for name in ("beats_in", "steps", "beats"):
        if hasattr(first, name) and not (name == "steps" and first.return_sequences):
            return getattr(first, name)
    return 1


SPECS = specs()
SINGLE = [k for k in SPECS if not k.startswith(("Fork", "AlignedAdd"))]


def test_every_component_has_a_spec():
    exported = [getattr(hw, name) for name in hw.__all__]    # imported on first use
    comps = [c for c in exported
             if inspect.isclass(c) and issubclass(c, SpecComponent) and c is not SpecComponent]
    assert {c.__name__ for c in comps} == {
        "Dense", "XnorDense", "FoldedDense", "Requantizer", "StreamFIFO", "Fork", "AlignedAdd",
        "SlidingWindow", "WindowPool", "Collector", "Chain", "Recurrent", "RowPool",
        "StreamDense"}
    for c in comps:
        assert getattr(hw, c.__name__ + "Spec") is c.Spec and c.Spec.component is c
        # the spec takes exactly the component's constructor arguments
        assert (list(inspect.signature(c.Spec).parameters)
                == list(inspect.signature(c.Spec.__init__).parameters)[1:])
    covered = {type(make()).__name__ for make in SPECS.values()}
    assert covered == {c.Spec.__name__ for c in comps}


@pytest.fixture
def elaboratables(monkeypatch):
    """A list that records every Amaranth Elaboratable (any MustUse) created."""
    made = []
    original = MustUse.__new__

    def new(cls, *args, src_loc_at=0, **kwargs):
        made.append(cls.__name__)
        return original(cls, *args, src_loc_at=src_loc_at + 1, **kwargs)
    monkeypatch.setattr(MustUse, "__new__", new)
    return made


@pytest.mark.parametrize("name", SPECS)
def test_spec_protocol_builds_nothing(name, elaboratables):
    spec = SPECS[name]()
    assert isinstance(spec, BlockSpec)
    assert isinstance(spec.latency, int) and isinstance(spec.ii, int) and spec.ii >= 1
    f = spec.features()
    assert tuple(f) == FEATURE_KEYS
    assert all(isinstance(p, BlockSpec) for p in f["parts"])
    est = estimate_block(spec, "ice40")
    assert set(est) == {"luts", "ffs", "dsps", "brams"} and est["luts"] >= 0
    model = spec.cycle_model()
    for method in ("valid", "ready", "step"):
        assert callable(getattr(model, method))
    if name in SINGLE:      # every model steps through two inputs
        chain_timing([spec], _beats_per_input(spec), 2)
    assert elaboratables == []
    block = spec.build()
    assert elaboratables and block.spec is spec and isinstance(block, spec.component)
    assert (block.latency, block.ii) == (spec.latency, spec.ii)
    assert estimate_block(block, "ecp5") == estimate_block(spec, "ecp5")
    Fragment.get(block, None)       # the component elaborates (and so is used)


def test_rejected_block_never_exists(elaboratables):
    with pytest.raises(ValueError, match="regs_every"):
        hw.Dense(np.ones((2, 2), dtype=np.int64), np.zeros(2, dtype=np.int64), U4,
                 IntType(True, 8), regs_every=0)
    with pytest.raises(ValueError, match="out_type"):
        hw.FoldedDense(np.full((2, 2), 7), np.zeros(2, dtype=np.int64), U4, U4)
    with pytest.raises(TypeError, match="shape must be shape-castable"):
        hw.StreamFIFO("nope", 4)
    with pytest.raises(ValueError, match="n must be an int >= 2, not 1"):
        hw.Fork(unsigned(3), 1)
    with pytest.raises(DdnhwError, match="gate_lanes 3 must divide"):
        _recurrent("gru", 0, gate_lanes=3)
    assert elaboratables == []


def test_spec_attributes_are_read_only_on_the_component():
    block = SPECS["Dense"]().build()
    with pytest.raises(AttributeError, match="read from its spec"):
        block.latency = 3
    assert block.n_out == block.spec.n_out == 5
    Fragment.get(block, None)


# -- cycle models against the Amaranth simulator ---------------------------------------------

def _simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def lockstep(spec, cycles, seed, p_valid=0.6, p_ready=0.6):
    """Per cycle: random ``i.valid`` (held until taken) and ``o.ready``; the model's ``valid()``
    and ``ready()`` must equal the simulator's ``o.valid`` and ``i.ready``."""
    dut = spec.build()
    model = spec.cycle_model()
    rng = np.random.default_rng(seed)
    width = Shape.cast(spec.in_shape).width
    fired = []

    async def bench(ctx):
        in_valid = False
        for cyc in range(cycles):
            in_valid = in_valid or rng.random() < p_valid
            out_ready = rng.random() < p_ready
            ctx.set(dut.i.valid, in_valid)
            ctx.set(Value.cast(dut.i.payload), int(rng.integers(0, 1 << width)))
            ctx.set(dut.o.ready, out_ready)
            i_ready, o_valid = ctx.get(dut.i.ready), ctx.get(dut.o.valid)
            assert (bool(o_valid), bool(i_ready)) == \
                (bool(model.valid()), bool(model.ready(out_ready))), f"cycle {cyc}"
            fire = in_valid and bool(i_ready)
            fired.append((fire, bool(o_valid and out_ready)))
            model.step(fire, out_ready)
            await ctx.tick()
            in_valid = in_valid and not fire

    _simulate(dut, bench)
    return fired


@pytest.mark.parametrize("name", SINGLE)
@pytest.mark.parametrize("p", [(0.6, 0.6), (1.0, 0.3), (0.3, 1.0)])
def test_cycle_model_matches_simulator(name, p):
    fired = lockstep(SPECS[name](), 400, seed=len(name), p_valid=p[0], p_ready=p[1])
    assert any(o for _, o in fired)      # outputs did flow


def test_fork_model_matches_simulator():
    spec = SPECS["Fork"]()
    dut, model = spec.build(), spec.cycle_model()
    rng = np.random.default_rng(1)

    async def bench(ctx):
        in_valid, n_fire = False, 0
        for cyc in range(400):
            in_valid = in_valid or rng.random() < 0.6
            ready = tuple(bool(rng.random() < 0.5) for _ in range(spec.n))
            ctx.set(dut.i.valid, in_valid)
            for o, r in zip(dut.outputs, ready):
                ctx.set(o.ready, r)
            got = (tuple(bool(ctx.get(o.valid)) for o in dut.outputs), bool(ctx.get(dut.i.ready)))
            want = (tuple(bool(v) for v in model.valid(in_valid)), bool(model.ready(ready)))
            assert got == want, f"cycle {cyc}"
            fire = in_valid and got[1]
            model.step(fire, ready, in_valid)
            n_fire += fire
            await ctx.tick()
            in_valid = in_valid and not fire
        assert n_fire > 20

    _simulate(dut, bench)


def test_aligned_add_model_matches_simulator():
    spec = SPECS["AlignedAdd"]()
    dut, model = spec.build(), spec.cycle_model()
    rng = np.random.default_rng(2)

    async def bench(ctx):
        valid, n_out = [False, False], 0
        for cyc in range(400):
            valid = [v or rng.random() < 0.6 for v in valid]
            out_ready = bool(rng.random() < 0.6)
            ctx.set(dut.i0.valid, valid[0])
            ctx.set(dut.i1.valid, valid[1])
            ctx.set(dut.o.ready, out_ready)
            got = (bool(ctx.get(dut.o.valid)), bool(ctx.get(dut.i0.ready)),
                   bool(ctx.get(dut.i1.ready)))
            want = (bool(model.valid()), *model.ready(out_ready, tuple(valid)))
            assert got == want, f"cycle {cyc}"
            fire = (valid[0] and got[1], valid[1] and got[2])
            n_out += got[0] and out_ready
            model.step(fire, out_ready)
            await ctx.tick()
            valid = [v and not f for v, f in zip(valid, fire)]
        assert n_out > 20

    _simulate(dut, bench)


def test_chain_timing_needs_a_cycle_model():
    class Other(BlockSpec):
        latency, ii = 3, 1
    with pytest.raises(NotImplementedError, match="Other has no cycle model"):
        chain_timing([Other()], 1)
    with pytest.raises(TypeError, match="neither a block spec"):
        chain_timing([object()], 1)


# -- repository rules --------------------------------------------------------------------------

def _sources(*parts):
    for part in parts:
        yield from sorted((ROOT / part).rglob("*.py"))


def test_no_mustuse_silence_anywhere():
    needle = "_MustUse" + "__silence"
    hits = [f"{p.relative_to(ROOT)}:{k}" for p in _sources("ddnhw", "tests", "bench")
            for k, line in enumerate(p.read_text().splitlines(), 1) if needle in line]
    assert hits == []


def test_lower_does_not_dispatch_on_class_names():
    pattern = re.compile(r"type\([^)]*\)\.__name__\s*(==|!=|in\b)|\.__name__\s*==\s*[\"']")
    hits = [f"{p.relative_to(ROOT)}:{k}" for p in _sources("ddnhw/lower")
            for k, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
    for name in ("estimate.py", "timing.py"):   # nor read the blocks' private attributes
        text = (ROOT / "ddnhw" / "lower" / name).read_text()
        assert not re.search(r"\b(block|b|spec|window|mac)\._[a-z]", text), name
