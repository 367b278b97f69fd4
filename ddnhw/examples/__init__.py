"""The examples of ddnhw (``ddnhw demo --model NAME``, ``ddnhw train --model NAME``): records
(:mod:`.records`) run by the one pipeline of :mod:`ddnhw.flow.pipeline`.

Every function here takes an example by name and calls the pipeline with its record."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ddnhw import DdnhwError, golden
import ddnhw.flow.pipeline as pipeline

from .records import RECORDS

__all__ = ["EXAMPLES", "NAMES", "get", "run", "train", "train_model", "test_inputs",
           "input_vectors"]

EXAMPLES = {ex.name: ex for ex in RECORDS}
NAMES = tuple(EXAMPLES)


def get(name) -> pipeline.Example:
    """The record of example ``name``; an unknown name raises naming the known ones."""
    if isinstance(name, pipeline.Example):
        return name
    if name not in EXAMPLES:
        raise DdnhwError(f"unknown example {name!r}; choose one of {', '.join(NAMES)}")
    return EXAMPLES[name]


def run(name, out, *, settings=None, **options) -> dict:
    """:func:`ddnhw.flow.pipeline.run` of example ``name`` into ``out`` (the summary)."""
    return pipeline.run(get(name), out, settings=settings, **options)


def train(name, *, seed=0, log=None, **settings) -> pipeline.Trained:
    """Train example ``name`` (``settings`` override its defaults)."""
    return pipeline.train(get(name), settings, seed=seed, log=log)


def train_model(name, path, *, settings=None, seed=0, log=None) -> dict:
    """Train example ``name`` and write its model file (:func:`ddnhw.flow.train_model`)."""
    return pipeline.train_model(get(name), path, settings, seed=seed, log=log)


def test_inputs(name, graph, seed=0):
    """The test split of example ``name`` as ``graph``'s integer inputs, and the labels."""
    return pipeline.test_inputs(get(name), graph, seed)


def input_vectors(graph, spec, seed=0, example=None) -> np.ndarray:
    """Integer input vectors for ``graph`` from ``spec``: ``"test"`` (the test split of
    ``example``, default: the one named in the model's meta, else ``mlp``), ``"random:N"``
    (random and extreme, :func:`ddnhw.flow.random_vectors`) or a ``.npy`` file of input codes
    (``(N, *input shape)`` or flattened per input) or of real-valued inputs (floats: quantized
    by :func:`ddnhw.golden.quantize_input`, an imported model's own input quantizer)."""
    from ddnhw.flow import random_vectors
    if spec == "test" and "input_quant" in graph.meta:
        raise DdnhwError("--vectors test: an imported model has no test split; give a .npy "
                         "file of inputs (floats, as the original model takes, or integer "
                         "codes) or random:N")
    if spec == "test":
        return test_inputs(example or graph.meta.get("example", "mlp"), graph, seed)[0]
    if spec.startswith("random:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            raise DdnhwError(f"--vectors {spec!r}: expected random:N with an integer N") from None
        return random_vectors(graph, n, seed)
    p = Path(spec)
    if p.suffix == ".npy":
        try:
            x = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DdnhwError(f"{p}: cannot read input vectors: {e}") from None
        shape = graph.input.shape
        if x.dtype.kind == "f":      # real-valued inputs: the model's own input quantizer
            return golden.quantize_input(graph, x)
        if x.ndim == 0 or x.size != len(x) * int(np.prod(shape)):
            raise DdnhwError(f"{p}: input vectors have shape {x.shape}, the model takes "
                             f"(N, {', '.join(map(str, shape))})")
        return golden.check_input(graph, x.reshape((len(x),) + shape))
    raise DdnhwError(f"--vectors {spec!r}: use 'test', 'random:N' or a .npy file")
