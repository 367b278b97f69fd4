"""Energy estimate: event counting on designs with known answers, the calibration against the
published iCE40UP5K measurements, and the gate-level netlist == golden on a small model.

One Verilator build holds the calibration designs and the two test designs (a counter, a
register that holds still); one more builds the gate-level model of a small MLP.
"""
import numpy as np
import pytest

from ddnhw.energy import calibration, model
from ddnhw.energy.gatesim import Activity

pytestmark = pytest.mark.synth

CYCLES = 4096   # the calibration fit's run length
TEST_DESIGNS = {
    "tcount": ("module tcount(input clk, input rst, output [7:0] q);\n    reg [7:0] c = 0;\n"
               "    always @(posedge clk) c <= rst ? 8'd0 : c + 1'b1;\n    assign q = c;\n"
               "endmodule\n", ()),
    # d is tied to 0 by the testbench: the register is clocked every cycle and never changes
    "theld": ("module theld(input clk, input d, output [7:0] q);\n    reg [7:0] r = 0;\n"
              "    always @(posedge clk) r <= r | {8{d}};\n    assign q = r;\nendmodule\n", ()),
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return calibration.simulate(tmp_path_factory.mktemp("energy_cal"), CYCLES,
                                extra=TEST_DESIGNS, per_instance=True)


def test_counter_bit_i_toggles_every_2_pow_i_cycles(sim):
    # the 8 flip-flops of the counter, one per bit: bit i toggles every 2**i cycles. The probes
    # compare the values sampled at consecutive clock edges: CYCLES edges after reset see the
    # counter go 0 .. CYCLES-1, i.e. CYCLES-1 steps (as a multiset: yosys names the cells,
    # not the bits)
    ffs = sorted(t for key, t in sim["tcount"]["instances"].items()
                 if model.category("ice40", key.split(":")[0]) == "ff")
    assert sim["tcount"]["cycles"] == CYCLES
    assert ffs == sorted((CYCLES - 1) // 2 ** i for i in range(8)), ffs
    ev = sim["tcount"]["events"]
    ff = sum(e.get("toggles", 0) for c, e in ev.items() if model.category("ice40", c) == "ff")
    assert round(ff * CYCLES) == sum((CYCLES - 1) // 2 ** i for i in range(8))


def test_held_register_costs_only_clock_energy(sim):
    d = sim["theld"]
    n_ff = sum(n for c, n in d["cells"].items() if model.category("ice40", c) == "ff")
    assert n_ff == 8
    act = Activity(cycles=CYCLES, by_cell={c: {k: v * CYCLES for k, v in e.items()}
                                           for c, e in d["events"].items()})
    e = model.energy(model.ICE40, d["cells"], act)
    assert {k for k, v in e.items() if v} == {"clock"}
    dyn = model.ICE40.dynamic
    assert e["clock"] == pytest.approx(CYCLES * (dyn["cycle"] + 8 * dyn["ff_clock"]))


def test_calibration_reproduces_published_measurements(sim):
    # the coefficients in ddnhw.energy.model reproduce the core currents of
    # tinyvision-ai-inc/ice40_power: fitted rows within 2 %, the unfitted HFOSC frequency sweep
    # (6-48 MHz) within 3 %
    pred = calibration.predict(sim)
    for key, (measured, modelled) in pred.items():
        tol = 0.03 if key.startswith("hfosc") else 0.02
        assert abs(modelled - measured) <= tol * measured, (key, measured, modelled)
    # and a refit lands on the same coefficients (the stored ones are the fit's)
    coeffs, static_mw = calibration.fit(sim)
    for k, v in coeffs.items():
        assert v == pytest.approx(model.ICE40.dynamic[k], rel=0.05, abs=1e-3), k
    assert static_mw == pytest.approx(model.ICE40.static_mw)


def test_gate_level_outputs_equal_golden(tmp_path):
    from ddnhw import golden
    from ddnhw.energy import estimate_energy
    from ddnhw.flow import random_vectors
    from ddnhw.ir.testing import random_mlp
    g = random_mlp(3, sizes=(6, 4, 3))
    x = random_vectors(g, 200, seed=1)
    r = estimate_energy(g, "icebreaker", tmp_path, inputs=x)
    assert r["gate_level_mismatches"] == 0
    assert r["vectors"] == 200
    assert r["energy_nj_per_inference"] > 0
    assert r["energy_nj_per_inference"] == pytest.approx(sum(r["breakdown"].values()))
    assert set(r["breakdown"]) >= {"logic", "carry", "ff", "clock", "bram", "dsp", "io"}
    # the outputs the gate-level run wrote are the golden ones
    from ddnhw.host.payload import StreamLayout, read_hex
    import json
    man = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    lay = StreamLayout.from_manifest(man, tmp_path / "rtl" / man["verilog"])
    got = read_hex(tmp_path / "gate" / "run" / "out.hex", lay.o)
    assert np.array_equal(got.reshape(200, -1), golden.run(g, x).reshape(200, -1))


def test_cli_energy_bad_arguments_exit_2(tmp_path, capsys):
    from ddnhw.cli.main import main
    from ddnhw.ir import save_graph
    from ddnhw.ir.testing import random_mlp
    m = tmp_path / "m.npz"
    save_graph(random_mlp(3, sizes=(6, 4, 3)), m)
    assert main(["energy", str(m), "--clock", "-3"]) == 2
    assert "--clock" in capsys.readouterr().err
    assert main(["energy", str(m), "--board", "nosuchboard", "-o", str(tmp_path)]) == 2
    assert main(["energy", str(tmp_path / "none.npz"), "-o", str(tmp_path)]) == 2
    # the energy objective needs a board and a throughput
    assert main(["generate", str(m), "--objective", "energy", "--out", str(tmp_path)]) == 2
