"""How full is too full: the planner never plans a design estimated beyond its family's
``fill_limit`` (issue 17 goal 7; the limits are measured with nextpnr, see hw/family.py)."""
import pytest

from ddnhw import DdnhwError
from ddnhw.hw.family import ECP5, ICE40, Budget, Family
from ddnhw.ir.testing import random_mlp
from ddnhw.lower.network import network_estimate
from ddnhw.passes import choose


def test_family_fill_limits():
    assert 0.8 <= ICE40.fill_limit < 0.9       # 89 % did not place on the UP5K, 84 % did
    assert ICE40.fill_limit <= ECP5.fill_limit <= 1
    with pytest.raises(ValueError, match="fill_limit"):
        Family(**{**{f: getattr(ICE40, f) for f in ICE40.__dataclass_fields__},
                  "fill_limit": 1.2})


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_unrolled_only_below_the_fill_limit(family):
    g = random_mlp(2, sizes=(12, 8, 4))
    est = network_estimate(g, family=family)["luts"]
    limit = {"ice40": ICE40, "ecp5": ECP5}[family].fill_limit
    # a budget the unrolled design fills to 93 % (within the 5 % unrolled margin, over the
    # family limit): folded, or nothing
    full = Budget(family, luts=round(est / 0.93))
    try:
        plan = choose(g, full)
    except DdnhwError:
        plan = None
    if plan is not None:
        assert plan["mode"] == "auto"
        assert plan["estimate"]["luts"] <= limit * full.luts
        assert plan["margin"] >= 1 - limit - 1e-9
    # a budget it fills to just under the limit: unrolled
    roomy = Budget(family, luts=int(est / (limit - 0.01)) + 1)
    assert choose(g, roomy)["mode"] == "unrolled"
