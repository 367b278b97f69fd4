import numpy as np
import pytest

from . import brevitas_models as bm

BATCH = 64


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """name -> (path of the exported .onnx, torch model); each model exported once a session."""
    pytest.importorskip("brevitas")
    cache = {}
    root = tmp_path_factory.mktemp("qonnx")

    def get(name):
        """``name``, or ``name:dynamo`` for Brevitas' default (torch.export) exporter."""
        if name not in cache:
            base, _, how = name.partition(":")
            path = root / f"{base}{'_dynamo' if how else ''}.onnx"
            cache[name] = (path, bm.export(base, path, batch=BATCH, dynamo=how == "dynamo"))
        return cache[name]
    return get


def execute_qonnx(path, x):
    """qonnx's execute_onnx on the exported file (shapes inferred), in batches of BATCH."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    m = ModelWrapper(str(path)).transform(InferShapes())
    iname, oname = m.graph.input[0].name, m.graph.output[0].name
    outs = []
    for i in range(0, len(x), BATCH):
        chunk = x[i:i + BATCH]
        pad = np.concatenate([chunk, np.zeros((BATCH - len(chunk),) + chunk.shape[1:],
                                              chunk.dtype)])
        outs.append(execute_onnx(m, {iname: pad})[oname][:len(chunk)])
    return np.concatenate(outs)


def brevitas_forward(model, x):
    import torch
    with torch.no_grad():
        y = model(torch.from_numpy(x))
    return (y.value if hasattr(y, "value") else y).numpy()
