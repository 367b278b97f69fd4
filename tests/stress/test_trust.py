"""The CI slice of ``bench/trust.py --part volume``: the same seeded generator
(``bench/trust_cases.py``), a few cases of every family: integer-mode PyTorch == golden on
2,000 vectors each, and one design end to end through Verilator (== golden == PyTorch)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ddnhw import golden

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from trust_cases import FAMILIES, make_case, vectors  # noqa: E402

from ..sim.test_runner import _fast_verilator_builds, cache_dir  # noqa: F401,E402


@pytest.mark.parametrize("family", FAMILIES)
def test_generated_cases_torch_equals_golden(family):
    for seed in (0, 1):
        case = make_case(family, seed)
        x = vectors(case.graph, 2000, seed)
        y = golden.run(case.graph, x)
        assert case.tags["ops"] and case.tags["in_width"]
        if case.torch_fn is not None:
            np.testing.assert_array_equal(np.asarray(case.torch_fn(x)).reshape(y.shape), y)


def test_generator_is_seeded():
    a, b = make_case("ir-dense", 3), make_case("ir-dense", 3)
    assert a.tags == b.tags
    for na, nb in zip(a.graph.nodes, b.graph.nodes):
        assert all(np.array_equal(na.attrs[k], nb.attrs[k]) for k in na.attrs)


@pytest.mark.cocotb
def test_generated_cases_end_to_end(cache_dir):  # noqa: F811
    """Three single-beat designs (QAT MLP, an IR dense with u1 inputs, the XNOR scheme) bundled
    into one Verilator model, as the bench does: RTL == golden == PyTorch for each."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from trust import run_bundle
    cases = [make_case("q-mlp", 0), make_case("ir-dense", 0), make_case("scheme-binary", 0)]
    assert cases[1].tags["in_width"] == "u1"
    rows = run_bundle(cases, 3000, cache_dir / "trust", seed=0)   # cached build
    assert [(r["family"], r["vectors"]) for r in rows] == [(c.family, 3000) for c in cases]
    for r in rows:
        assert r["torch_mismatches"] == 0 and r["rtl_mismatches"] == 0, r


def test_bundle_judges_each_design():
    """The bundle's byte fields: packing then unpacking gives each design's rows back, so a
    wrong output of one design is charged to it alone."""
    from trust_cases import bundle_bytes, bundle_fields
    from ddnhw.hw.lanes import unpack_bytes
    cases = [make_case("ir-dense", s) for s in (0, 16, 30)]
    f_in, _, _, _ = bundle_fields(cases)
    xs = [vectors(c.graph, 50, 1) for c in cases]
    b = bundle_bytes(xs, f_in)
    for (off, lanes), x in zip(f_in, xs):
        np.testing.assert_array_equal(unpack_bytes(b[:, off:off + lanes.nbytes], lanes), x)
