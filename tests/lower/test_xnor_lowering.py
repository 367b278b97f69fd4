import numpy as np
import pytest
import torch

from ddnhw.golden import run
from ddnhw.hw.sim import run_stream
from ddnhw.hw.xnor import XnorDense, XnorDenseSpec
from ddnhw.lower import build_network, generate, plan_network
from ddnhw.lower.registry import bipolar_tensor
from ddnhw.quant.schemes import ActSpec, SchemeMLP, WeightSpec, export_scheme_mlp


def _binary_graph(seed, sizes=(16, 12, 8, 4), acts="bipolar"):
    torch.manual_seed(seed)
    m = SchemeMLP(sizes, weights=WeightSpec("binary", 1),
                  acts=ActSpec("bipolar", 2) if acts == "bipolar" else ActSpec(bits=4))
    x = torch.rand(64, sizes[0])
    m.calibrate(x)
    return export_scheme_mlp(m), np.random.default_rng(seed).integers(0, 16, (40, sizes[0]))


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_bipolar_lowered_to_xnor_bit_exact(seed):
    g, x = _binary_graph(seed)
    net = build_network(g)
    kinds = [type(b).__name__ for b in net.blocks]
    # first layer: 4-bit pixels (adder tree); the layers on bipolar inputs: XNOR/popcount
    assert kinds.count("XnorDense") == 2 and kinds[0] == "Dense", kinds
    y, log = run_stream(net, x, idle=0.3, stall=0.4, seed=seed)
    np.testing.assert_array_equal(y, run(g, x))
    assert log["protocol"] == []


def test_binary_style_dense_keeps_adder_tree(tmp_path):
    g, x = _binary_graph(2)
    generate(g, tmp_path)          # Verilog + manifest of the XNOR lowering
    net = build_network(g, binary_style="dense")
    assert not any(isinstance(b, XnorDense) for b in net.blocks)
    y, _ = run_stream(net, x, idle=0.2, stall=0.2, seed=2)
    np.testing.assert_array_equal(y, run(g, x))


def test_relu_inputs_not_bipolar():
    g, _ = _binary_graph(3, acts="relu")
    assert not any(bipolar_tensor(g, t) for t in g.tensors)
    net = plan_network(g)                # inspected only: no component built
    assert not any(isinstance(b, XnorDenseSpec) for b in net.blocks)
