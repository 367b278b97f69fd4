"""Model families of a sweep: what ``model = ...`` in ``sweep.toml`` names.

A family knows its settings (the axes a sweep may vary, with their checks and defaults), the
stages that make a trained model of one point (:meth:`ModelFamily.chain`: e.g. a float
pre-training shared by many points, then QAT and export) and its test split. Three kinds:

- ``scheme-mlp`` (:class:`SchemeMLPFamily`): the mixed-precision MLP of ``ddnhw search`` on the
  digits: per-layer weight bits, activation bits, weight quantizer scheme, requantizer
  realization, pruning, per-channel bits by importance.
- an example (:class:`ExampleFamily`, ``model = "mlp"``, ``"cnn"``, ...): its record's settings
  (``bits``, ``hidden``, ``prune``, ``epochs``, ...). The records live in :mod:`ddnhw.examples`,
  above this layer: the CLI passes them in (``resolve(..., examples=EXAMPLES)``).
- a model file (:class:`FileFamily`, ``model = "path/model.npz"``): a trained or imported
  model; only the hardware axes vary.

Families are plain picklable objects: the sweep ships them to its workers.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from ddnhw import DdnhwError, golden

from ddnhw.sweep.checks import choice as _choice, fraction as _fraction, integer as _int
from ddnhw.sweep.checks import number as _number, string as _string

__all__ = ["ModelFamily", "SchemeMLPFamily", "ExampleFamily", "FileFamily", "resolve",
           "model_bytes", "graph_of"]


def model_bytes(graph, work: Path) -> bytes:
    """``graph`` as the bytes of its model file (written to ``work/model.npz`` too)."""
    from ddnhw.ir import save_graph
    path = Path(work) / "model.npz"
    save_graph(graph, path)
    return path.read_bytes()


def graph_of(data: bytes, work: Path, name="input.npz"):
    """The graph in model-file bytes ``data`` (written to ``work/name`` to be read)."""
    from ddnhw.ir import load_graph
    path = Path(work) / name
    path.write_bytes(data)
    return load_graph(path)


def _golden_accuracy(graph, x, y):
    return float(np.mean(golden.classify(graph, x) == y))


def _bits_or_layers(lo, hi):
    """An int (every layer) or a list of ints (one per layer)."""
    one = _int(lo, hi, "a bit width")

    def check(v):
        if isinstance(v, list):
            if not v:
                raise ValueError("an empty per-layer list")
            return [one(b) for b in v]
        return one(v)
    return check


class ModelFamily:
    """The interface of a model family (see the module's doc)."""
    name = "?"

    def identity(self) -> str:
        return self.name

    def axes(self) -> dict:
        """``{setting: check(value) -> value}``: the settings a sweep may vary or fix."""
        return {}

    def check(self, name, value):
        """``value`` of setting ``name``, checked (``ValueError`` names what is wrong)."""
        return self.axes()[name](value)

    def per_layer_axes(self) -> set:
        """Settings given per layer (a per-layer table in ``[axes]`` expands to their product)."""
        return set()

    def layer_count(self, name, settings) -> int:
        raise NotImplementedError

    def defaults(self) -> dict:
        return {}

    def check_point(self, model: dict) -> None:
        """Raise ``ValueError`` naming the setting when a point's settings do not go together."""

    def chain(self, model: dict, seed: int) -> list:
        """``[(stage, config)]``: the stages that make this point's trained model, in order;
        the last one is ``"train"`` and returns the model file."""
        raise NotImplementedError

    def run(self, stage, config, parents, work) -> tuple:
        """Run one of :meth:`chain`'s stages: ``(values, files)`` (``files``: names of files
        in ``work`` the next stages need, e.g. ``model.npz``)."""
        raise NotImplementedError

    def test_split(self, graph, seed):
        """``(x, y)``: the test split as ``graph``'s integer input codes and its labels, or
        None when the family has no data set."""
        return None


# -- the scheme MLP of `ddnhw search` ------------------------------------------------------------

class SchemeMLPFamily(ModelFamily):
    """The mixed-precision MLP on scikit-learn's digits (:mod:`ddnhw.quant.schemes`): a float
    model pre-trained once per (sizes, float epochs, seed), then QAT of every point from it
    (:func:`ddnhw.quant.qat.train_scheme`) and export."""
    name = "scheme-mlp"
    dataset = "sklearn-digits"
    _DEFAULTS = dict(hidden=16, in_bits=4, w_bits=4, a_bits=4, scheme="uniform",
                     realize="mult", prune=0.0, channel_fraction=0.0, channel_low_bits=2,
                     epochs=40, float_epochs=120, distill=0.5)

    def axes(self):
        from ddnhw.quant.schemes import REALIZE, W_KINDS

        def hidden(v):
            if isinstance(v, list):
                if not v:
                    raise ValueError("an empty list of hidden layers")
                return [_int(1, 4096, "a layer width")(h) for h in v]
            return _int(1, 4096, "a layer width")(v)
        return {"hidden": hidden, "in_bits": _int(2, 8, "a bit width"),
                "w_bits": _bits_or_layers(1, 8), "a_bits": _bits_or_layers(2, 8),
                "scheme": _choice(W_KINDS), "realize": _choice(REALIZE),
                "prune": _fraction(), "channel_fraction": _fraction(),
                "channel_low_bits": _int(2, 8, "a bit width"),
                "epochs": _int(0, what="an epoch count"),
                "float_epochs": _int(0, what="an epoch count"),
                "distill": _fraction(closed=True)}

    def per_layer_axes(self):
        return {"w_bits", "a_bits"}

    def defaults(self):
        return dict(self._DEFAULTS)

    @staticmethod
    def _hidden(model):
        h = model["hidden"]
        return list(h) if isinstance(h, list) else [h]

    def layer_count(self, name, settings):
        n = len(self._hidden({**self._DEFAULTS, **settings})) + 1
        return n if name == "w_bits" else n - 1

    def _per_layer(self, model, name):
        n = self.layer_count(name, model)
        v = model[name]
        if isinstance(v, list):
            if len(v) != n:
                raise ValueError(f"{name}: {v} has {len(v)} entries, the model has {n} "
                                 f"{'layers' if name == 'w_bits' else 'hidden layers'}")
            return list(v)
        return [v] * n

    def check_point(self, model):
        self._per_layer(model, "w_bits")
        self._per_layer(model, "a_bits")
        if model["channel_fraction"] > 0 and model["scheme"] != "uniform":
            raise ValueError(f"channel_fraction: per-channel bits need scheme 'uniform', not "
                             f"{model['scheme']!r}")

    def sizes(self, model):
        return [64, *self._hidden(model), 10]

    def chain(self, model, seed):
        self.check_point(model)
        w = self._per_layer(model, "w_bits")
        if model["scheme"] in ("binary", "ternary"):   # their widths are fixed: 1 and 2 bits
            w = [1 if model["scheme"] == "binary" else 2] * len(w)
        pre = {"family": self.name, "sizes": self.sizes(model),
               "float_epochs": model["float_epochs"], "seed": seed}
        train = {"family": self.name, "sizes": self.sizes(model), "in_bits": model["in_bits"],
                 "w_bits": w, "a_bits": self._per_layer(model, "a_bits"),
                 "scheme": model["scheme"], "realize": model["realize"],
                 "prune": model["prune"], "epochs": model["epochs"],
                 "distill": model["distill"], "seed": seed,
                 "channel_fraction": model["channel_fraction"],
                 "channel_low_bits": model["channel_low_bits"] if model["channel_fraction"]
                 else None}
        return [("pretrain", pre), ("train", train)]

    def run(self, stage, config, parents, work):
        import torch
        from ddnhw.datasets import load_digits_split
        torch.set_num_threads(1)
        xtr, ytr, xte, yte = load_digits_split()
        if stage == "pretrain":
            from ddnhw.quant.qat import pretrain_float
            from ddnhw.quant.train import accuracy
            fm = pretrain_float(xtr, ytr, tuple(config["sizes"]),
                                epochs=config["float_epochs"], seed=config["seed"])
            torch.save(fm.state_dict(), Path(work) / "float.pt")
            acc = accuracy(fm, torch.as_tensor(xte), torch.as_tensor(yte))
            return {"float_accuracy": acc}, ["float.pt"]
        return self._train(config, parents[-1], work, (xtr, ytr, xte, yte))

    def _train(self, c, pre, work, data):
        import torch
        from ddnhw.quant.modules import QuantMLP
        from ddnhw.quant.qat import SchemeConfig, train_scheme
        from ddnhw.quant.schemes import ActSpec, WeightSpec, export_scheme_mlp
        from ddnhw.quant.search import channel_bits_by_importance, label
        xtr, ytr, xte, yte = data
        fm = QuantMLP(tuple(c["sizes"]))
        fm.load_state_dict(torch.load(io.BytesIO(pre["files"]["float.pt"]), weights_only=True))
        fm.set_quantize(False)
        ws = [WeightSpec(kind=c["scheme"], bits=b) for b in c["w_bits"]]
        if c["channel_fraction"]:
            cb = channel_bits_by_importance(fm.layers, 0, c["w_bits"][0],
                                            c["channel_low_bits"], c["channel_fraction"])
            ws[0] = WeightSpec(bits=c["w_bits"][0], channel_bits=cb)
        acts = [ActSpec(bits=b, realize=c["realize"]) for b in c["a_bits"]]
        cfg = SchemeConfig(weights=ws, acts=acts, in_bits=c["in_bits"], qat_epochs=c["epochs"],
                           distill=c["distill"], prune=c["prune"], seed=c["seed"])
        model, met = train_scheme(fm, xtr, ytr, xte, yte, cfg)
        g = export_scheme_mlp(model, meta={"dataset": self.dataset,
                                           "float_accuracy": met["float_accuracy"]})
        x, y = self.test_split(g, c["seed"])
        values = {"model_label": label(ws, acts), "float_accuracy": met["float_accuracy"],
                  "ptq_accuracy": met["ptq_accuracy"], "qat_accuracy": met["quant_accuracy"],
                  "accuracy": _golden_accuracy(g, x, y),
                  "channel_bits": [list(s.channel_bits) if s.channel_bits else None
                                   for s in ws]}
        model_bytes(g, work)
        return values, ["model.npz"]

    def test_split(self, graph, seed):
        from ddnhw.datasets import load_digits_split
        _, _, xte, yte = load_digits_split()
        x = np.asarray(xte).reshape((len(xte),) + tuple(graph.input.shape))
        return golden.quantize_input(graph, x), yte


# -- an example record ---------------------------------------------------------------------------

class ExampleFamily(ModelFamily):
    """An example record (:class:`ddnhw.flow.Example`): its scalar settings are the axes; a
    point is :func:`ddnhw.flow.pipeline.train` of the record with them."""

    def __init__(self, example):
        self.example = example
        self.name = example.name

    def identity(self):
        return f"example:{self.name}"

    def axes(self):
        out = {}
        for k, default in self.example.settings.items():
            if isinstance(default, bool):
                out[k] = _choice((True, False))
            elif k == "bits":
                out[k] = _int(2, 8, "a bit width")
            elif k == "prune":
                out[k] = _fraction()
            elif isinstance(default, int):
                out[k] = _int(0, what="an integer")
            elif isinstance(default, float):
                out[k] = _fraction() if 0 <= default < 1 else _number
            elif isinstance(default, str):
                out[k] = _string
        return out

    def defaults(self):
        return {k: v for k, v in self.example.settings.items() if k in self.axes()}

    def chain(self, model, seed):
        return [("train", {"family": self.identity(), "settings": dict(model), "seed": seed})]

    def run(self, stage, config, parents, work):
        import ddnhw.flow.pipeline as pipeline
        t = pipeline.train(self.example, config["settings"], seed=config["seed"])
        x, y = self.test_split(t.graph, config["seed"])
        model_bytes(t.graph, work)
        return {"model_label": None, "float_accuracy": t.float_accuracy,
                "qat_accuracy": t.qat_accuracy, "accuracy": _golden_accuracy(t.graph, x, y)}, \
            ["model.npz"]

    def test_split(self, graph, seed):
        import ddnhw.flow.pipeline as pipeline
        return pipeline.test_inputs(self.example, graph, seed)


# -- a model file --------------------------------------------------------------------------------

class FileFamily(ModelFamily):
    """A model file (``.npz``): trained elsewhere or imported; its content's hash is its
    identity. ``example``: the record whose test split measures its accuracy (default: none)."""

    def __init__(self, path, example=None):
        from ddnhw.ir import load_graph
        self.path = Path(path)
        load_graph(self.path)                    # a broken file fails before the sweep
        self.data = self.path.read_bytes()
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.example = example
        self.name = self.path.name

    def identity(self):
        return f"file:{self.sha256}"

    def chain(self, model, seed):
        return [("train", {"family": self.identity(), "seed": seed})]

    def run(self, stage, config, parents, work):
        g = graph_of(self.data, work, "model.npz")
        values = {"model_label": None, "float_accuracy": g.meta.get("float_accuracy"),
                  "qat_accuracy": None, "accuracy": None}
        split = self.test_split(g, config["seed"])
        if split is not None:
            values["accuracy"] = _golden_accuracy(g, *split)
        return values, ["model.npz"]

    def test_split(self, graph, seed):
        if self.example is None:
            return None
        import ddnhw.flow.pipeline as pipeline
        return pipeline.test_inputs(self.example, graph, seed)


def resolve(name, base=Path("."), examples=None) -> ModelFamily:
    """The family ``model = name`` names: ``"scheme-mlp"``, a name of ``examples`` (``{name:
    Example}``, given by the layer that has them) or a model file (relative to ``base``)."""
    if name == SchemeMLPFamily.name:
        return SchemeMLPFamily()
    if examples and name in examples:
        return ExampleFamily(examples[name])
    if name.endswith(".npz"):
        path = Path(base) / name
        if not path.is_file():
            raise DdnhwError(f"model file {str(path)!r} does not exist")
        fam = FileFamily(path)
        if examples:      # the test split: the example named in the meta, else its data set's
            from ddnhw.ir import load_graph
            meta = load_graph(path).meta
            fam.example = examples.get(meta.get("example")) or next(
                (ex for ex in examples.values() if ex.dataset == meta.get("dataset")), None)
        return fam
    known = [SchemeMLPFamily.name] + sorted(examples or ())
    raise DdnhwError(f"unknown model {name!r}: use one of {', '.join(known)} or a model "
                     f"file (.npz)")
