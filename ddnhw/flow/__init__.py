"""The flow as an API: the generic steps (:mod:`ddnhw.flow.core`: generate, simulate,
cosimulate, fold, build) and the one pipeline every example runs through
(:mod:`ddnhw.flow.pipeline`). Nothing here knows a data set; :mod:`ddnhw.examples` holds the
examples. The CLI is a thin layer over both."""
from .core import (FOLDINGS, TOPS, build, choose_folding, cosim, cosim_check,  # noqa: F401
                   decide, model_folding, ensure_writable_dir, generate, load_model, lowering_available,
                   random_images, random_vectors, save_graph, sim_check, write_json_atomic)
from .pipeline import (SUMMARY_KEYS, Example, Progress, Trained, Vectors,  # noqa: F401
                       run, summary_rows, train_model)

__all__ = ["FOLDINGS", "TOPS", "build", "choose_folding", "decide", "model_folding", "cosim",
           "cosim_check",
           "ensure_writable_dir", "generate", "load_model", "lowering_available", "random_images",
           "random_vectors", "save_graph", "sim_check", "write_json_atomic", "SUMMARY_KEYS",
           "Example", "Progress", "Trained", "Vectors", "run", "summary_rows", "train_model"]
