"""``ddnhw sweep``: the same table serially and on Dask workers, a worker killed mid-sweep,
``--resume`` after the client is interrupted, failed points, and bad sweep files."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddnhw.cli.main import main
from ddnhw.sweep import load_config, sweep

# 8 points of the scheme MLP, cheap: a 64-4-10 MLP, 3 + 3 epochs, estimate only
CONFIG = """
name = "test sweep"
model = "scheme-mlp"
seeds = [0]
stages = ["estimate"]
out = "{out}"

[settings]
hidden = 4
epochs = 3
float_epochs = 3

[axes]
w_bits = [2, 3]
a_bits = [2, 3]
prune = [0.0, 0.5]
"""
N_POINTS = 8
N_STAGES = 1 + 8 + 8          # one shared float pre-training, 8 trainings, 8 estimates


def _config(tmp, name="sweep", text=CONFIG):
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"{name}.toml"
    path.write_text(text.replace("{out}", f"{name}_out"))
    return path


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The table of the sweep run serially through the CLI, with the Pareto plot."""
    tmp = tmp_path_factory.mktemp("serial")
    path = _config(tmp)
    assert main(["sweep", str(path), "--workers", "0", "--plot", "-q"]) == 0
    out = tmp / "sweep_out"
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return (out / "results.csv").read_text()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import logging
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                      silence_logs=logging.ERROR,
                      local_directory=str(tmp_path_factory.mktemp("dask")),
                      env={"OMP_NUM_THREADS": "1"}) as cluster, Client(cluster) as c:
        yield c


def _stored(out):
    """``{result.json path: (mtime_ns, text)}`` of every stage in the sweep's store."""
    return {p: (p.stat().st_mtime_ns, p.read_text())
            for p in (out / "store").glob("*/*/result.json")}


def test_serial_table(serial):
    lines = serial.splitlines()
    assert len(lines) == 1 + N_POINTS
    header = lines[0].split(",")
    assert header[:6] == ["point", "label", "w_bits", "a_bits", "prune", "seed"]
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    assert [r["point"] for r in rows] == [str(i) for i in range(N_POINTS)]
    assert all(r["status"] == "ok" and 0 < float(r["accuracy"]) <= 1 and int(r["est_luts"]) > 0
               for r in rows)
    # pruning half the weights makes the same widths cheaper
    assert int(rows[1]["est_luts"]) < int(rows[0]["est_luts"])


def test_two_workers_give_the_serial_table(tmp_path, client, serial):
    cfg = load_config(_config(tmp_path))
    res = sweep(cfg, client=client)
    assert (tmp_path / "sweep_out" / "results.csv").read_text() == serial
    assert res.stage_runs() == {"computed": N_STAGES, "reused": 0, "skipped": 0}
    worker_pids = set(client.run(os.getpid).values())
    ran_on = {r["meta"]["pid"] for r in res.results.values()}
    assert ran_on <= worker_pids and len(ran_on) == 2      # both workers ran stages


def test_a_killed_worker_loses_nothing(tmp_path, client, serial):
    """SIGKILL a worker while it runs a stage: the stage runs again elsewhere, the sweep
    finishes with every point once, and the table equals the serial one."""
    cfg = load_config(_config(tmp_path))
    pids = client.run(os.getpid)
    killed = {}

    def kill_one(key, res, c):
        if killed or res["stage"] != "train" or res["reused"]:
            return
        busy = {w: ks for w, ks in c.processing().items() if ks}
        if not busy:
            return                                  # at the next result
        worker = sorted(busy)[0]
        os.kill(pids[worker], signal.SIGKILL)
        killed.update(worker=worker, pid=pids[worker], keys=list(busy[worker]))

    from ddnhw.sweep.run import run_sweep
    from ddnhw.sweep import write_results
    res = run_sweep(cfg, client=client, on_result=kill_one)
    assert killed and killed["keys"], "no worker was busy when one result came in"
    write_results(res, cfg.out)
    assert (cfg.out / "results.csv").read_text() == serial
    rows = res.rows()
    assert sorted(r["point"] for r in rows) == list(range(N_POINTS))
    # the stages the killed worker was running were run by another process
    # (or it had just stored its result when it was killed: then that result was reused)
    lost = [res.results[k.split("-")[2]] for k in killed["keys"]]
    assert all(r["meta"]["pid"] != killed["pid"] or r["reused"] for r in lost)


def test_resume_after_the_client_is_interrupted(tmp_path, client, serial):
    """Interrupt a `ddnhw sweep --scheduler` client mid-sweep (SIGINT); `--resume` runs only
    what the store lacks: the stages stored before are not run again (same files, same
    times)."""
    path = _config(tmp_path)
    out = tmp_path / "sweep_out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "ddnhw.cli.main", "sweep", str(path),
                             "--scheduler", client.scheduler.address, "-q"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while len(list((out / "store").glob("train/*/result.json"))) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no training finished in 180 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and not (out / "results.csv").exists()
    # stages that were running go on to their end on their workers (and into the store):
    # wait until no stage works in the store's .tmp folder any more
    deadline, quiet = time.monotonic() + 90, 0
    while quiet < 3 and time.monotonic() < deadline:
        quiet = 0 if any((out / "store" / ".tmp").iterdir()) else quiet + 1
        time.sleep(0.3)
    before = _stored(out)
    assert 2 <= len(before) < N_STAGES

    res = sweep(load_config(path), client=client, resume=True)
    runs = res.stage_runs()
    assert runs["reused"] >= len(before) and runs["computed"] + runs["reused"] == N_STAGES
    after = _stored(out)
    assert all(after[p] == before[p] for p in before)       # untouched: not run again
    assert (out / "results.csv").read_text() == serial


def test_failed_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    text = CONFIG.replace("prune = [0.0, 0.5]", "max_luts = [20, 100000]").replace(
        "a_bits = [2, 3]", "a_bits = [2]").replace("w_bits = [2, 3]", "w_bits = [2]")
    cfg = load_config(_config(tmp_path, text=text))
    rows = sweep(cfg).rows()
    assert [r["status"] for r in rows] == ["failed: estimate", "ok"]
    assert "nothing fits" in rows[0]["error"] and rows[0]["accuracy"] == rows[1]["accuracy"]
    # the stored failure is reused, and recomputed on request
    again = sweep(cfg)
    assert again.stage_runs()["computed"] == 0 and again.rows() == rows
    assert sweep(cfg, recompute="failed").stage_runs()["computed"] == 1


@pytest.mark.parametrize("edit, key", [
    (("w_bits = [2, 3]", "w_bit = [2, 3]"), "axes.w_bit: unknown axis 'w_bit'"),
    (("a_bits = [2, 3]", "a_bits = [2, 9]"), "axes.a_bits[1]: 9 is not a bit width in 2..8"),
    (("prune = [0.0, 0.5]", "prune = [0.5, 1.0]"), "axes.prune[1]"),
    (("prune = [0.0, 0.5]", "board = [\"icebreakr\"]"), "axes.board[0]: 'icebreakr' is not"),
    (("w_bits = [2, 3]", "w_bits = {0 = [2], 5 = [3]}"), "axes.w_bits.5: no layer '5'"),
    (("w_bits = [2, 3]", "w_bits = [[2, 3, 4]]"), "w_bits: [2, 3, 4] has 3 entries"),
    (("stages = [\"estimate\"]", "stages = [\"synth\"]"), "stages[0]: unknown stage 'synth'"),
    (("stages = [\"estimate\"]", "stages = [\"build\"]"), "stages: build and energy need"),
    (("seeds = [0]", "sead = 1"), "sead: unknown key"),
    (("seeds = [0]", "seeds = [0, -1]"), "seeds[1]"),
    (("hidden = 4", "hiden = 4"), "settings.hiden: unknown setting"),
    (("model = \"scheme-mlp\"", "model = \"nope\""), "model: unknown model 'nope'"),
    (("[axes]", "[axes"), "not valid TOML"),
])
def test_bad_sweep_file_is_one_clear_error(tmp_path, capsys, edit, key):
    path = _config(tmp_path, text=CONFIG.replace(*edit))
    assert main(["sweep", str(path), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err, err
    assert str(path) in err
    assert not (tmp_path / "sweep_out").exists()          # nothing ran


def test_resume_needs_the_same_sweep(tmp_path, capsys):
    path = _config(tmp_path)
    assert main(["sweep", str(path), "--workers", "0", "--resume"]) == 2
    assert "holds no sweep to resume" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--workers", "-1"], ["--scheduler", "head:8786"]])
def test_bad_arguments_exit_2(tmp_path, args):
    assert main(["sweep", str(_config(tmp_path))] + args) == 2


def test_model_file_on_two_boards(tmp_path):
    """A model file sweeps the hardware axes: the demo model, estimated for two boards (its
    accuracy on the digits test split, the example named in its meta)."""
    from ddnhw.cli.sweep import resolve
    model = Path(__file__).resolve().parents[2] / "examples" / "digits_mlp.npz"
    path = tmp_path / "boards.toml"
    path.write_text(f'model = "{model}"\nstages = ["estimate"]\n'
                    f'[axes]\nboard = ["icebreaker", "ulx3s-85f"]\nfolding = ["auto", "none"]\n')
    cfg = load_config(path, resolve=resolve)
    rows = sweep(cfg).rows()
    assert [(r["board"], r["folding_mode"]) for r in rows] == [
        ("icebreaker", "unrolled"), ("icebreaker", "unrolled"), ("ulx3s-85f", "unrolled"),
        ("ulx3s-85f", "unrolled")]
    assert len({r["accuracy"] for r in rows}) == 1 and rows[0]["accuracy"] > 0.9
    assert rows[0]["fpga"] == "ice40" and rows[2]["fpga"] == "ecp5"
    assert rows[0]["fits"] is True and rows[0]["est_inferences_per_s"] == 12e6


def test_example_family(tmp_path, capsys):
    """An example record as the model: its settings are the axes (the CLI brings the
    records); a setting it does not have is an error naming it."""
    from ddnhw.cli.sweep import resolve
    path = tmp_path / "mlp.toml"
    path.write_text('model = "mlp"\nstages = ["estimate"]\n[settings]\nhidden = 4\nepochs = 1\n'
                    '[axes]\nbits = [3, 4]\n')
    rows = sweep(load_config(path, resolve=resolve)).rows()
    assert [r["bits"] for r in rows] == [3, 4] and all(r["status"] == "ok" for r in rows)
    assert rows[0]["est_luts"] < rows[1]["est_luts"]
    path.write_text('model = "mlp"\n[axes]\nlayers = [1]\n')
    assert main(["sweep", str(path), "--workers", "0"]) == 2
    assert "axes.layers: unknown axis 'layers' for model 'mlp'" in capsys.readouterr().err


def test_store_keys_change_with_the_code(monkeypatch):
    """A result computed by other ddnhw code is never found: the key hashes the sources."""
    import ddnhw.sweep.store as store
    cfg = {"w_bits": [2, 4], "seed": 0}
    k1 = store.stage_key("train", cfg, ["abc"])
    assert k1 == store.stage_key("train", dict(cfg), ["abc"])      # deterministic
    assert k1 != store.stage_key("train", {**cfg, "seed": 1}, ["abc"])
    assert k1 != store.stage_key("train", cfg, ["abd"])
    monkeypatch.setattr(store, "code_digest", lambda: "0" * 16)
    assert store.stage_key("train", cfg, ["abc"]) != k1


def test_build_time_limit_fails_the_point_not_the_sweep(tmp_path, capsys):
    """``[build] timeout``: a build that runs out of time is that point's error (the tools
    stopped, nothing stored as a result), the sweep goes on; a bad limit is a config error."""
    from ddnhw.cli.sweep import resolve
    model = Path(__file__).resolve().parents[2] / "examples" / "digits_mlp.npz"
    path = tmp_path / "limit.toml"
    path.write_text(f'model = "{model}"\nstages = ["build"]\n[build]\ntimeout = 1\n'
                    f'[axes]\nboard = ["icebreaker"]\n')
    rows = sweep(load_config(path, resolve=resolve)).rows()
    assert len(rows) == 1 and rows[0]["status"] == "failed: build", rows
    assert "time limit of 1 s" in rows[0]["error"], rows[0]["error"]
    path.write_text(path.read_text().replace("timeout = 1", "timeout = 0"))
    assert main(["sweep", str(path), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "build.timeout: 0 is not a time limit in seconds >= 1" in err, err
