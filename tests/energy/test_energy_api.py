"""Energy: the parts that need no synthesis (model arithmetic, candidates, the demo table)."""
import pytest

from ddnhw import DdnhwError
from ddnhw.energy import estimate_energy, model
from ddnhw.energy.gatesim import Activity, parse_probes


def test_energy_prices_every_event_class():
    cells = {"SB_LUT4": 10, "SB_CARRY": 4, "SB_DFFE": 6, "SB_MAC16": 1, "SB_RAM40_4K": 1}
    act = Activity(cycles=100, by_cell={
        "SB_LUT4": {"toggles": 50}, "SB_CARRY": {"toggles": 20},
        "SB_DFFE": {"toggles": 30, "enable": 300}, "SB_MAC16": {"toggles": 8},
        "SB_RAM40_4K": {"toggles": 16, "read": 10, "write": 2}})
    c = model.ICE40
    d = c.dynamic
    e = model.energy(c, cells, act)
    assert e["logic"] == pytest.approx(50 * d["toggle"])
    assert e["carry"] == pytest.approx(20 * d["toggle"])
    assert e["ff"] == pytest.approx(30 * d["toggle"])
    assert e["dsp"] == pytest.approx(8 * d["dsp_toggle"])
    assert e["bram"] == pytest.approx(16 * d["toggle"] + 12 * c.bram_access)
    assert e["clock"] == pytest.approx(100 * (d["cycle"] + 6 * d["ff_clock"]))
    assert e["io"] == 0 and e["spram"] == 0


def test_probe_lines_parse_per_module():
    acts = parse_probes("x\nddnhw_probe top cycles - 12\nddnhw_probe top toggles SB_LUT4 7\n"
                        "ddnhw_probe top enable SB_DFFE 30\n"
                        "ddnhw_probe c inst SB_DFF:q_1.Q 5\n")
    assert acts["top"].cycles == 12
    assert acts["top"].by_cell == {"SB_LUT4": {"toggles": 7}, "SB_DFFE": {"enable": 30}}
    assert acts["c"].instances == {"SB_DFF:q_1.Q": 5}


def test_unknown_option_is_an_error(tmp_path):
    from ddnhw.ir.testing import random_mlp
    with pytest.raises(DdnhwError, match="unknown option"):
        estimate_energy(random_mlp(3, sizes=(6, 4, 3)), "icebreaker", tmp_path, foldng="none")


def test_energy_candidates_meet_the_throughput():
    from ddnhw.energy.objective import candidate_foldings
    from ddnhw.ir import load_graph
    from pathlib import Path
    g = load_graph(Path(__file__).resolve().parents[2] / "examples" / "digits_mlp.npz")
    cands = candidate_foldings(g, "icebreaker", 12e6 / 64)
    labels = [label for label, _ in cands]
    assert labels[0] == "unrolled" and "II 64" in labels
    assert all(int(label.split()[1]) <= 64 for label in labels[1:])
    with pytest.raises(DdnhwError):
        candidate_foldings(g, "icebreaker", 1e9)   # faster than one inference per cycle


def test_demo_table_shows_energy():
    from ddnhw.flow import SUMMARY_KEYS, summary_rows
    s = dict.fromkeys(SUMMARY_KEYS)
    s.update(float_accuracy=0.9, quant_accuracy=0.9, folding=None, latency_cycles=8,
             ii_cycles=1, designs={"rtl": {"boards": ["icebreaker"]}}, boards={"icebreaker": {
                 "luts": 1, "ffs": 1, "dsps": 0, "brams": 0, "fmax_mhz": 20.0,
                 "clock_mhz": 12.0, "timing_met": True, "energy": {
                     "energy_nj_per_inference": 1500.0, "error_band": {"relative": 0.3},
                     "power_mw_board_clock": 18.5, "dynamic_power_mw_board_clock": 18.4}}})
    rows = dict(summary_rows(s))
    assert rows["icebreaker: energy per inference (dynamic)"].startswith("1.5000 µJ")
    assert rows["icebreaker: power at board clock"] == "18.50 mW"


def test_mapped_resources_in_budget_units():
    from ddnhw.energy.estimate import mapped_resources
    r = mapped_resources("ecp5", {"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 7, "MULT18X18D": 2,
                                  "DP16KD": 1, "PFUMX": 4})
    assert r == {"luts": 16, "ffs": 7, "dsps": 2, "brams": 1}
    r = mapped_resources("ice40", {"SB_LUT4": 5, "SB_CARRY": 9, "SB_DFFE": 2, "SB_DFFSR": 1,
                                   "SB_RAM40_4K": 3, "SB_MAC16": 1, "SB_SPRAM256KA": 2})
    assert r == {"luts": 5, "ffs": 3, "dsps": 1, "brams": 3, "spram": 2}


def test_circuit_too_big_for_the_board_is_a_clear_error(tmp_path):
    # far over the UP5K's 5,280 logic cells unrolled: refused from the resource estimate,
    # before any synthesis, naming the board and what to do
    from ddnhw.energy.estimate import DoesNotFit
    from ddnhw.ir.testing import random_mlp
    g = random_mlp(1, sizes=(64, 32, 10), w_bits=8, a_bits=8, zero_frac=0.0)
    with pytest.raises(DoesNotFit, match=r"does not fit icebreaker .*luts.*fold it"):
        estimate_energy(g, "icebreaker", tmp_path, folding="none")
    assert not (tmp_path / "gate").exists()
