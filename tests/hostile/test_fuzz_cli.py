"""A fuzzed CLI (hypothesis): every command's arguments and every model-file field.

Every case must end with exit status 0, or exit status 2 and exactly one line on stderr naming
the argument, file or field; never an exception escaping ``main`` (a traceback), and never a
half-written output folder (after exit 2 the ``--out`` folder does not exist or is empty).

The commands are enumerated from the parser (``ddnhw.cli.main._parser``), so commands added
later (``COMMAND_MODULES``) are fuzzed too: their arguments are parsed (and must be rejected in
one line or accepted); the cheap commands (``generate``, ``boards``) also run to the end.

``DDNHW_FUZZ_EXAMPLES=<factor>`` multiplies the example budgets (``bench``: e.g. 50).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddnhw.cli.main import _parser, main
from ddnhw.ir import save_graph
from ddnhw.ir.testing import random_cnn, random_mlp

FACTOR = float(os.environ.get("DDNHW_FUZZ_EXAMPLES", "1"))
COUNTS = os.environ.get("DDNHW_FUZZ_COUNTS")   # a file: the cases run, as JSON, at the end
RUN = ("generate", "boards")        # commands cheap enough to run to the end on every case
CASES = Counter()                  # what ran: (command, outcome) -> count; printed by bench


def budget(n):
    return settings(max_examples=max(1, int(n * FACTOR)), deadline=None, derandomize=True,
                    database=None, suppress_health_check=list(HealthCheck))


def commands():
    """``{name: subparser}`` of every ``ddnhw`` command, from the parser itself."""
    p = _parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


# -- files of every kind ----------------------------------------------------------------------

FILES = Path(tempfile.mkdtemp(prefix="ddnhw-fuzz-"))


def _files():
    good = FILES / "good.npz"
    save_graph(random_mlp(1, sizes=(6, 4, 3)), good)
    save_graph(random_cnn(2, in_shape=(4, 4, 1), channels=2, n_out=3), FILES / "cnn.npz")
    data = good.read_bytes()
    (FILES / "truncated.npz").write_bytes(data[:len(data) // 2])
    (FILES / "empty.npz").write_bytes(b"")
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x10
    (FILES / "flipped.npz").write_bytes(bytes(flipped))
    np.save(FILES / "vectors.npy", np.zeros((3, 6), np.int64))
    np.save(FILES / "floats.npy", np.zeros((3, 6)))
    (FILES / "text.npy").write_text("not numpy\n")
    (FILES / "manifest.json").write_text("{}")
    (FILES / "dir.npz").mkdir()
    return ["/etc/passwd", "/dev/null", "/", str(FILES / "missing.npz")] + sorted(
        str(p) for p in FILES.iterdir())


FILE_VALUES = _files()
NUMBERS = ["-3", "-1", "0", "1", "2", "16", "0.5", "-0.5", "1e309", "nan", "10" * 12, "1.5"]
TEXT_VALUES = ["", " ", "-3", "-1", "0", "1", "2", "3", "7", "16", "64", "1000", "2.5", "-0.5",
               "0.999", "1.0", "1e309", "nan", "inf", "-inf", "99999999999999999999999", "0x10",
               "abc", "\x00", "é", "--", "-", "random:", "random:-1", "random:0", "random:3",
               "random:x", "test", "verilator", "icarus", "verilator,icarus", ",", "none",
               "icebreaker", "ulx3s-85f", "nosuchboard", "icebreaker,,nosuch", "a" * 5000,
               "1" * 400, "ddnhw_top", "9bad name"]


def _fuzz_value(draw, action):
    pool = TEXT_VALUES + FILE_VALUES + [str(c) for c in (action.choices or ())] * 3
    return draw(st.sampled_from(NUMBERS) | st.sampled_from(pool) | st.text(max_size=20)
                | st.integers(-10, 300).map(str))


def _plain_value(draw, action):
    """A value the option would take by default (its default or one of its choices)."""
    if action.choices:
        return str(draw(st.sampled_from(list(action.choices))))
    if action.default is not None and not isinstance(action.default, bool):
        return str(action.default)
    return None


@st.composite
def argvs(draw, name, parser, execute):
    """``(argv, target)``: an argument list for command ``name`` with one argument (``target``,
    its first option string or its dest) fuzzed: a value of any kind (edge numbers, wrong types,
    empty and huge strings, files of every kind, its choices), or (target None) every option
    fuzzed at once. The other options are left out or given their default value; positionals
    are a good model file unless fuzzed. A command that runs writes only into ``<OUT>``."""
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    target = draw(st.sampled_from(actions + [None]))
    good = [str(FILES / "good.npz"), str(FILES / "cnn.npz")]
    argv = [name]
    for action in actions:
        fuzz = target is None or action is target
        if not action.option_strings:
            argv.append(draw(st.sampled_from(FILE_VALUES + TEXT_VALUES[:12])) if fuzz
                        else draw(st.sampled_from(good)))
            continue
        if not fuzz and draw(st.integers(0, 3)):
            continue
        if target is None and draw(st.integers(0, 2)):
            continue
        flag = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:
            if fuzz:
                argv.append(flag)
            continue
        value = _fuzz_value(draw, action) if fuzz else _plain_value(draw, action)
        if value is None:
            continue
        if action.dest == "out" and (execute or draw(st.booleans())):
            value = "<OUT>"
        argv += [flag, value]
    if any(a.dest == "out" for a in actions) and not any(
            x in argv for a in actions if a.dest == "out" for x in a.option_strings):
        argv += ["--out", "<OUT>"]
    name_of = None if target is None else (target.option_strings[0] if target.option_strings
                                           else target.dest)
    return argv, name_of


OUT_FILE_SUFFIX = {"predict": ".npy", "export-qonnx": ".onnx"}


def run_cli(argv, out: Path, *, execute=True):
    """``main(argv)`` with ``<OUT>`` replaced by ``out``; returns ``(status, stderr)``.
    With ``execute`` False only the arguments are parsed (exit 2 on a bad one, else 0)."""
    # commands whose --out is one file of a given kind write it beside the folder ``out``
    suffix = OUT_FILE_SUFFIX.get(argv[0] if argv else "", "")
    argv = [str(out) + suffix if a == "<OUT>" else a for a in argv]
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std), \
            contextlib.chdir(out.parent):
        try:
            if execute:
                rc = main(argv)
            else:
                _parser().parse_args(argv)
                rc = 0
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return rc, err.getvalue()


def check_outcome(cmd, rc, err, out: Path, *, name_in=None):
    """The contract: 0, or 2 with one line (naming ``name_in`` when given) and no half-written
    output folder."""
    CASES[(cmd, "exit", rc)] += 1
    assert "Traceback" not in err, err
    if rc == 0:
        return
    assert rc == 2, (rc, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ddnhw {cmd}: error: "), err
    if name_in is not None:
        assert name_in in err, err
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())


COMMANDS = commands()


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_fuzz_arguments(cmd, tmp_path_factory):
    parser = COMMANDS[cmd]
    execute = cmd in RUN

    @budget(30 if execute else 30)
    @given(case=argvs(cmd, parser, execute))
    def fuzz(case):
        argv, target = case
        out = tmp_path_factory.mktemp("fuzz") / "out"
        rc, err = run_cli(argv, out, execute=execute)
        # one argument fuzzed: a rejection names it (argparse: "argument --x:"), or the file
        # it names, or the value (e.g. a board or a folding nothing fits)
        named = None
        if target is not None and rc == 2 and "error: argument" in err:
            named = f"argument {target}" if target.startswith("-") else "argument "
        check_outcome(cmd, rc, err, out, name_in=named)
        shutil.rmtree(out.parent, ignore_errors=True)
    fuzz()


def test_fixed_examples(capsys, tmp_path):
    """The two cases of issue 18 (a ValueError traceback and NumPy's allow_pickle advice)."""
    model = Path(__file__).resolve().parents[2] / "examples" / "digits_mlp.npz"
    rc, err = run_cli(["generate", str(model), "--target-ii", "-3", "--out", "<OUT>"],
                      tmp_path / "o")
    check_outcome("generate", rc, err, tmp_path / "o", name_in="argument --target-ii")
    assert rc == 2 and "must be an integer >= 1, not '-3'" in err
    rc, err = run_cli(["generate", "/etc/passwd", "--out", "<OUT>"], tmp_path / "o")
    check_outcome("generate", rc, err, tmp_path / "o", name_in="/etc/passwd")
    assert rc == 2 and "not a ddnhw model file" in err and "pickle" not in err


# -- model-file fields --------------------------------------------------------------------------

def _model_parts():
    g = random_mlp(1, sizes=(6, 4, 3))
    p = FILES / "parts.npz"
    save_graph(g, p)
    with np.load(p) as z:
        files = {k: z[k] for k in z.files}
    return json.loads(str(files.pop("__graph__"))), files


JS, ARRAYS = _model_parts()


def _paths(obj, prefix=()):
    """Every field path of a JSON structure (dict keys and list indices)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


FIELD_PATHS = [p for p in _paths(JS) if p]
WEIRD = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                  st.sampled_from([0, -1, 1, 2, 64, 65, 2**31, 2**63, -2**63, 10**30]),
                  st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                  st.just("x" * 10000), st.just([]), st.just({}), st.lists(st.integers(-3, 3),
                                                                            max_size=4),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def damaged_models(draw):
    """``(kind, bytes)``: a model file with fields replaced, deleted or added, arrays of the
    wrong dtype/shape/values, or the raw file truncated or bit-flipped."""
    js = json.loads(json.dumps(JS))
    arrays = {k: v.copy() for k, v in ARRAYS.items()}
    kind = draw(st.sampled_from(["field", "field", "field", "delete", "array", "truncate",
                                 "flip", "flip"]))
    if kind in ("field", "delete"):
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(FIELD_PATHS))
            parent = js
            try:
                for k in path[:-1]:
                    parent = parent[k]
                if kind == "delete" and isinstance(parent, dict):
                    parent.pop(path[-1], None)
                else:
                    parent[path[-1]] = draw(WEIRD)
            except (KeyError, IndexError, TypeError):
                pass
    elif kind == "array":
        key = draw(st.sampled_from(sorted(arrays)))
        how = draw(st.sampled_from(["dtype", "shape", "huge", "empty", "scalar", "neg"]))
        a = arrays[key]
        arrays[key] = {"dtype": lambda: a.astype(draw(st.sampled_from(
                           [np.float64, np.uint8, np.int8, np.bool_, np.complex64]))),
                       "shape": lambda: a.reshape(-1)[: max(1, a.size - 1)],
                       "huge": lambda: np.full(a.shape, draw(st.sampled_from(
                           [2**62, -2**63, 2**31, 2**40])), np.int64),
                       "empty": lambda: np.zeros((0,), np.int64),
                       "scalar": lambda: np.int64(7),
                       "neg": lambda: -np.abs(a) - 1}[how]()
    buf = io.BytesIO()
    np.savez(buf, __graph__=np.array(json.dumps(js)), **arrays)
    data = buf.getvalue()
    if kind == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif kind == "flip":
        d = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            d[draw(st.integers(0, len(d) - 1))] ^= 1 << draw(st.integers(0, 7))
        data = bytes(d)
    return kind, data


@budget(100)
@given(case=damaged_models())
def test_fuzz_model_file(case, tmp_path_factory):
    kind, data = case
    d = tmp_path_factory.mktemp("model")
    path = d / "damaged.npz"
    path.write_bytes(data)
    out = d / "out"
    rc, err = run_cli(["generate", str(path), "--out", "<OUT>"], out)
    check_outcome("generate", rc, err, out, name_in=None if rc == 0 else "damaged.npz")
    CASES[("model-file", kind, rc)] += 1
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def _write_counts():
    yield
    if COUNTS:
        Path(COUNTS).write_text(json.dumps({" ".join(map(str, k)): v
                                            for k, v in sorted(CASES.items(), key=str)},
                                           indent=1) + "\n")
