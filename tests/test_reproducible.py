"""The integer chain after export is exactly reproducible on every machine: the shipped model
file gives the same Verilog, manifest and golden outputs, byte for byte, as the digests
committed here (computed on the machine that last regenerated examples/digits_mlp.npz), in
this process and in a fresh interpreter.

Training is not (floating-point summation order in the CPU's BLAS kernels differs between
CPUs), which is why the README reports accuracy as mean ± std over seeds; once a model file
exists, everything downstream is integer arithmetic.

To update after regenerating the shipped model: ``python tests/test_reproducible.py``.
"""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "digits_mlp.npz"

DIGESTS = {
    "model": "85fde4e2e2cdbf7280e983fb31adfdda56e74ab7d876e987f049245a37ac0a5a",
    "verilog": "2156f01e628d5ee5a0b631cf3241ed8ba3b78dee8855ad5392a154e52928bb93",
    "manifest": "b6f855e0f60f5db8b14ca9b361211edf1302c2a3b2b57cd1a29a734e12627f65",
    "golden": "eca2accedba67c2d8ca0e9dbffda8703dcab3f65c83bc701d1dc7fc1a3de6def",
}


def digests(out_dir) -> dict:
    """sha256 of the model file, the generated Verilog and manifest, and the golden outputs
    (int64, C order) on the digits test split plus 2,000 seeded random/extreme vectors."""
    from ddnhw import examples, flow, golden
    graph = flow.load_model(MODEL)
    man = flow.generate(graph, out_dir)
    x = np.concatenate([examples.test_inputs("mlp", graph)[0],
                        flow.random_vectors(graph, 2000, seed=11)])
    out = np.ascontiguousarray(golden.run(graph, x).astype(np.int64))

    def sha(b):
        return hashlib.sha256(b).hexdigest()
    return {"model": sha(MODEL.read_bytes()),
            "verilog": sha((Path(out_dir) / man["verilog"]).read_bytes()),
            "manifest": sha((Path(out_dir) / "manifest.json").read_bytes()),
            "golden": sha(out.tobytes())}


def test_integer_chain_digests(tmp_path):
    assert digests(tmp_path) == DIGESTS


def test_integer_chain_digests_fresh_process(tmp_path):
    code = (f"import sys, json; sys.path.insert(0, {str(ROOT)!r}); "
            f"from tests.test_reproducible import digests; "
            f"print(json.dumps(digests({str(tmp_path)!r})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       cwd=ROOT)
    assert json.loads(r.stdout.strip().splitlines()[-1]) == DIGESTS


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(digests(d), indent=4))
