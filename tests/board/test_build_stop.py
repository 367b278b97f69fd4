"""Stopping ``ddnhw build`` is safe: SIGTERM/SIGINT while yosys/nextpnr run stop the tools and
the command at once, with one clear line and no bitstream or report left behind."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddnhw.ir import save_graph
from ddnhw.ir.testing import random_mlp

pytestmark = pytest.mark.synth


def _processes_in(folder: Path):
    """Pids of processes whose working directory is ``folder`` (the tools run there)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if Path(os.readlink(d / "cwd")) == folder:
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_build(tmp_path, sig, status):
    model = tmp_path / "m.npz"
    save_graph(random_mlp(3, sizes=(16, 8, 4)), model)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-m", "ddnhw.cli.main", "build", str(model),
                             "--board", "icebreaker", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    folder = out / "icebreaker"
    log = folder / "ddnhw_top.run.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and _processes_in(folder.resolve())):   # the tools are running
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the tools never started"
        time.sleep(0.05)
    time.sleep(0.5)
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10                        # at once, not after the tools
    assert proc.returncode == status, err
    assert err.count("\n") == 1 and f"stopped by {signal.Signals(sig).name}" in err, err
    assert "no bitstream or report" in err and "Traceback" not in err
    assert not list(folder.glob("*.bin")) and not (folder / "report.json").exists()
    time.sleep(0.5)
    assert _processes_in(folder.resolve()) == []             # no tool left running
