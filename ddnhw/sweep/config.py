"""``sweep.toml``: what a sweep trains and builds, read and checked before any work starts.

Layout (every key optional except ``model``)::

    name = "digits-mixed-precision"     # a title for the tables and plots
    model = "scheme-mlp"                # a model family (:data:`ddnhw.sweep.families`): the
                                        # scheme MLP on the digits, an example name ("mlp",
                                        # "cnn", ...) or a model file ("path/model.npz")
    seeds = 3                           # 0, 1, 2; or a list [0, 5, 7]
    stages = ["estimate", "build"]      # train always runs; also "cosim", "energy"
    out = "sweep_out"                   # results folder (relative to this file)
    store = "sweep_out/store"           # content-addressed result store (default OUT/store)

    [settings]                          # fixed model settings (the family's defaults else)
    hidden = 16

    [axes]                              # swept: every combination of these values
    w_bits = [2, 3, 4]                  # one value per point, or {0 = [2, 4], 1 = [4, 8]}
    a_bits = [3, 4]                     # per layer (the product over layers)
    board = ["icebreaker"]

    [cosim]                             # options of the cosim stage
    simulator = "verilator"
    random = 200

    [build]                             # options of the build stage
    toolchain = "yowasp"
    timeout = 1800                      # seconds per build (default: no limit); a build
                                        # that runs out is that point's error

``[[axes]]`` (an array of tables) gives several groups of axes; the points are the union of
their products. Every point runs once per seed. A bad file raises :class:`SweepConfigError`
naming the file and the key at fault (``axes.w_bits[2]``), before anything runs.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ddnhw import DdnhwError

from ddnhw.sweep.checks import choice as _choice, integer

__all__ = ["SweepConfigError", "SweepConfig", "Point", "STAGES", "HW_AXES", "load_config",
           "parse_config", "expand"]

STAGES = ("train", "estimate", "cosim", "build", "energy")
TOP_KEYS = ("name", "model", "seeds", "stages", "out", "store", "settings", "axes", "cosim",
            "build")
COSIM_KEYS = {"simulator": ("verilator", "icarus"), "random": integer(0)}
BUILD_KEYS = {"toolchain": ("yowasp", "system"),
              "timeout": integer(1, what="a time limit in seconds")}   # per build, wall
MAX_POINTS = 100_000


class SweepConfigError(DdnhwError):
    """A ``sweep.toml`` that cannot run: the message names the file and the key."""


def _board(v):
    from ddnhw.board import list_boards
    if v not in list_boards():
        raise ValueError(f"{v!r} is not a board (boards: {', '.join(list_boards())})")
    return v


def _folding(v):
    return _choice(("auto", "none"))(v)


# Hardware axes, the same for every model family: how a trained model becomes a circuit.
HW_AXES = {
    "board": _board,                                          # estimate/build for this board
    "fpga": _choice(("ice40", "ecp5")),                       # estimate family without a board
    "folding": _folding,                                      # auto | none
    "target_ii": integer(1, what="a cycle count"),            # fold to at most N cycles
    "max_luts": integer(1, what="a LUT count"),               # fold to fit N LUTs
}
HW_DEFAULTS = {"board": None, "fpga": "ice40", "folding": "auto", "target_ii": None,
               "max_luts": None}


@dataclass(frozen=True)
class Point:
    """One point of a sweep: ``index`` in the sweep's order, ``axes`` (the swept values, in the
    config's axis order), ``model`` (every model setting, defaults included), ``hw`` (the
    hardware axes) and ``seed``."""
    index: int
    axes: dict
    model: dict
    hw: dict
    seed: int

    def label(self) -> str:
        parts = []
        for k, v in self.axes.items():
            if isinstance(v, list):
                v = "/".join(map(str, v))
            parts.append(f"{k}={v}")
        return " ".join(parts + [f"seed={self.seed}"])


@dataclass
class SweepConfig:
    """A checked ``sweep.toml``: ``family`` (a :class:`ddnhw.sweep.families.ModelFamily`),
    ``groups`` (a list of ``{axis: [values]}``), ``settings``, ``seeds``, ``stages``, ``out``,
    ``store``, ``cosim`` and ``build`` options, ``source`` (the file, for messages) and
    ``text`` (its content, for the sweep's identity)."""
    family: object
    groups: list
    settings: dict = field(default_factory=dict)
    seeds: tuple = (0,)
    stages: tuple = ("train", "estimate")
    out: Path = Path("sweep_out")
    store: Path | None = None
    cosim: dict = field(default_factory=lambda: {"simulator": "verilator", "random": 100})
    build: dict = field(default_factory=lambda: {"toolchain": "yowasp"})
    name: str = "sweep"
    source: str = "sweep.toml"

    @property
    def store_dir(self) -> Path:
        return self.store if self.store is not None else self.out / "store"

    def axis_names(self) -> list:
        names = []
        for g in self.groups:
            names += [k for k in g if k not in names]
        return names

    def identity(self) -> str:
        """A hash of what the sweep computes (family, settings, axes, seeds, stages, options)."""
        blob = json.dumps({"family": self.family.identity(), "groups": self.groups,
                           "settings": self.settings, "seeds": list(self.seeds),
                           "stages": list(self.stages), "cosim": self.cosim,
                           "build": self.build}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _err(source, key, msg):
    return SweepConfigError(f"{source}: {key}: {msg}")


def _check_value(family, source, key, name, v):
    """The axis or setting ``name``'s value ``v``, checked and normalized (lists for tuples)."""
    try:
        if name in HW_AXES:
            return None if v is None else HW_AXES[name](v)
        return family.check(name, v)
    except ValueError as e:
        raise _err(source, key, str(e)) from None


def _axis_values(family, source, name, spec, settings):
    """The values of axis ``name``: a list, or a per-layer table ``{layer: [values]}`` whose
    product (layer 0 outermost) gives one per-layer list per value."""
    key = f"axes.{name}"
    if name not in HW_AXES and name not in family.axes():
        known = sorted(set(HW_AXES) | set(family.axes()))
        raise _err(source, key, f"unknown axis {name!r} for model {family.name!r} (axes: "
                                f"{', '.join(known)})")
    if isinstance(spec, dict):
        if name not in family.per_layer_axes():
            raise _err(source, key, f"axis {name!r} takes a list of values, not a per-layer "
                                    f"table")
        n = family.layer_count(name, settings)
        layers = {}
        for lk, vals in spec.items():
            try:
                idx = int(lk)
            except ValueError:
                idx = -1
            if not 0 <= idx < n:
                raise _err(source, f"{key}.{lk}", f"no layer {lk!r} (layers 0..{n - 1})")
            if not isinstance(vals, list) or not vals:
                raise _err(source, f"{key}.{lk}", f"must be a non-empty list, not {vals!r}")
            layers[idx] = [_check_value(family, source, f"{key}.{lk}[{i}]", name, v)
                           for i, v in enumerate(vals)]
        if sorted(layers) != list(range(n)):
            missing = sorted(set(range(n)) - set(layers))
            raise _err(source, key, f"the per-layer table needs every layer 0..{n - 1}; "
                                    f"missing {missing}")
        values = [list(c) for c in itertools.product(*(layers[i] for i in range(n)))]
        return [_check_value(family, source, key, name, v) for v in values]
    if not isinstance(spec, list) or not spec:
        raise _err(source, key, f"must be a non-empty list of values (or a per-layer table), "
                                f"not {spec!r}")
    return [_check_value(family, source, f"{key}[{i}]", name, v) for i, v in enumerate(spec)]


def _options(source, table, spec, name):
    if not isinstance(table, dict):
        raise _err(source, name, f"must be a table, not {table!r}")
    out = {}
    for k, v in table.items():
        if k not in spec:
            raise _err(source, f"{name}.{k}", f"unknown option (options: {', '.join(spec)})")
        check = spec[k]
        if callable(check):         # a check function, else a tuple of the allowed values
            try:
                out[k] = check(v)
            except ValueError as e:
                raise _err(source, f"{name}.{k}", str(e)) from None
        elif v not in check:
            raise _err(source, f"{name}.{k}", f"{v!r} is not one of {', '.join(check)}")
        else:
            out[k] = v
    return out


def parse_config(data: dict, *, source="sweep.toml", base=Path("."), resolve=None) -> SweepConfig:
    """Check a parsed ``sweep.toml`` (``data``); ``base``: the folder relative paths start from;
    ``resolve(name) -> ModelFamily``: the model families (default
    :func:`ddnhw.sweep.families.resolve` without the examples)."""
    import ddnhw.sweep.families as families
    resolve = resolve or families.resolve
    for k in data:
        if k not in TOP_KEYS:
            raise _err(source, k, f"unknown key (keys: {', '.join(TOP_KEYS)})")
    if "model" not in data:
        raise _err(source, "model", "missing: name a model family (e.g. model = "
                                    "\"scheme-mlp\"), an example or a model file")
    if not isinstance(data["model"], str):
        raise _err(source, "model", f"must be a string, not {data['model']!r}")
    try:
        family = resolve(data["model"], base)
    except DdnhwError as e:
        raise _err(source, "model", str(e)) from None

    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise _err(source, "settings", f"must be a table, not {settings!r}")
    checked = {}
    for k, v in settings.items():
        if k in HW_AXES:
            checked[k] = _check_value(family, source, f"settings.{k}", k, v)
            continue
        if k not in family.axes():
            raise _err(source, f"settings.{k}", f"unknown setting {k!r} for model "
                                                f"{family.name!r} (settings: "
                                                f"{', '.join(sorted(family.axes()))})")
        if isinstance(v, dict):
            raise _err(source, f"settings.{k}", "a setting takes one value (per-layer lists "
                                                "as [a, b])")
        checked[k] = _check_value(family, source, f"settings.{k}", k, v)

    axes = data.get("axes", {})
    groups_in = axes if isinstance(axes, list) else [axes]
    groups = []
    for gi, g in enumerate(groups_in):
        if not isinstance(g, dict):
            raise _err(source, "axes", f"must be a table or an array of tables, not {g!r}")
        groups.append({name: _axis_values(family, source, name, spec, checked)
                       for name, spec in g.items()})
        for name in g:
            if name in checked:
                raise _err(source, f"axes.{name}", f"{name!r} is both a setting and an axis")

    seeds = data.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 1 <= seeds <= 1000:
            raise _err(source, "seeds", f"a seed count must be in 1..1000, not {seeds}")
        seeds = list(range(seeds))
    if not isinstance(seeds, list) or not seeds:
        raise _err(source, "seeds", f"must be a count or a non-empty list of seeds, not "
                                    f"{seeds!r}")
    for i, s in enumerate(seeds):
        try:
            integer(0, what="a seed")(s)
        except ValueError as e:
            raise _err(source, f"seeds[{i}]", str(e)) from None
    if len(set(seeds)) != len(seeds):
        raise _err(source, "seeds", f"repeats a seed: {seeds}")

    stages = data.get("stages", ["estimate"])
    if not isinstance(stages, list):
        raise _err(source, "stages", f"must be a list, not {stages!r}")
    for i, s in enumerate(stages):
        if s not in STAGES:
            raise _err(source, f"stages[{i}]", f"unknown stage {s!r} (stages: "
                                               f"{', '.join(STAGES)})")
    wanted = set(stages) | {"train"}
    if wanted & {"cosim", "build", "energy"}:
        wanted.add("estimate")            # the folding decision every circuit stage uses
    if wanted & {"build", "energy"}:
        boards = [v for g in groups for v in g.get("board", [])] + [checked.get("board")]
        if not any(boards):
            raise _err(source, "stages", "build and energy need a board: add a board axis "
                                         "or settings.board")

    out = Path(data.get("out", Path(source).stem + "_out"))
    store = data.get("store")
    for k, v in (("out", out), ("store", store)):
        if v is not None and not isinstance(v, (str, Path)):
            raise _err(source, k, f"must be a path string, not {v!r}")
    if not isinstance(data.get("name", ""), str):
        raise _err(source, "name", f"must be a string, not {data['name']!r}")
    cfg = SweepConfig(
        family=family, groups=groups, settings=checked, seeds=tuple(seeds),
        stages=tuple(s for s in STAGES if s in wanted),
        out=base / out, store=None if store is None else base / Path(store),
        name=data.get("name", Path(source).stem), source=str(source))
    cfg.cosim.update(_options(source, data.get("cosim", {}), COSIM_KEYS, "cosim"))
    cfg.build.update(_options(source, data.get("build", {}), BUILD_KEYS, "build"))
    points = expand(cfg)
    if len(points) > MAX_POINTS:
        raise _err(source, "axes", f"{len(points)} points; at most {MAX_POINTS}")
    for p in points:
        try:
            family.check_point(p.model)
        except ValueError as e:
            raise _err(source, "axes", f"point {p.index} ({p.label()}): {e}") from None
    return cfg


def load_config(path, *, resolve=None) -> SweepConfig:
    """Read and check ``sweep.toml`` at ``path`` (see the module's doc)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SweepConfigError(f"{p}: cannot read the sweep file: {e.strerror or e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SweepConfigError(f"{p}: not valid TOML: {e}") from None
    return parse_config(data, source=str(p), base=p.parent, resolve=resolve)


def expand(cfg: SweepConfig) -> list:
    """The points of ``cfg``: for each axis group in order, the product of its axes (the last
    axis varies fastest), each for every seed (innermost); duplicates across groups are kept
    once (the first)."""
    points, seen = [], set()
    for g in cfg.groups or [{}]:
        names = list(g)
        for combo in itertools.product(*(g[n] for n in names)):
            axes = dict(zip(names, combo))
            for seed in cfg.seeds:
                ident = json.dumps([axes, seed], sort_keys=True)
                if ident in seen:
                    continue
                seen.add(ident)
                merged = {**cfg.family.defaults(), **HW_DEFAULTS, **cfg.settings, **axes}
                hw = {k: merged.pop(k) for k in HW_AXES}
                points.append(Point(len(points), axes, merged, hw, seed))
    return points
