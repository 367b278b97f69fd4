"""Typed lowering options: an unknown or misspelled option raises naming it (never silently
ignored), a bad value raises naming the option."""
import pytest

from ddnhw.ir.testing import random_mlp
from ddnhw.lower import LowerOptionError, LowerOptions, build_network, generate


def test_unknown_options_named():
    g = random_mlp(0, sizes=(6, 4, 3))
    with pytest.raises(LowerOptionError, match=r"unknown lowering options 'foldng' \(did you "
                                               r"mean 'folding'\?\), 'regs_evry'"):
        build_network(g, foldng={"fc0": (1, 1)}, regs_evry=1)
    with pytest.raises(LowerOptionError, match="'colour'"):
        generate(g, "/nonexistent/never-written", colour="red")
    with pytest.raises(LowerOptionError, match="'famly'"):
        LowerOptions.of(famly="ecp5")


@pytest.mark.parametrize("kw, match", [
    ({"dense_style": "fast"}, "dense_style must be one of"),
    ({"binary_style": "bnn"}, "binary_style must be one of"),
    ({"weight_decode": "zip"}, "weight_decode must be one of"),
    ({"fuse_requant": "yes"}, "fuse_requant must be True or False"),
    ({"fifos": "some"}, "fifos must be"),
    ({"folding": [("fc0", (1, 1))]}, "folding must be a dict"),
])
def test_bad_values_named(kw, match):
    with pytest.raises(LowerOptionError, match=match):
        LowerOptions(**kw)


def test_options_object_and_keywords():
    g = random_mlp(0, sizes=(6, 4, 3))
    opts = LowerOptions(regs_every=1, folding={"fc0": (2, 3)})
    net = build_network(g, opts, fifos="none")
    assert net.options == LowerOptions.of(opts, fifos="none")
    assert [l["name"] for l in net.layers] == ["fc0", "fc0_rq", "fc1"]
    assert net.layers[0]["folded"] and net.layers[0]["fuses"] == "fc0_rq"
