"""How full is too full: the planner never plans a design estimated beyond its family's
``fill_limit`` (issue 17 goal 7; the limits are measured with nextpnr, see hw/family.py)."""
import re

import pytest

from ddnhw import DdnhwError
from ddnhw.hw.family import ECP5, ICE40, Budget, Family
from ddnhw.ir.testing import random_mlp
from ddnhw.lower.network import network_estimate
from ddnhw.passes import choose


def test_family_fill_limits():
    # the fallback margin's 7 %: the digits CNN places at an estimated 89.8 % of the UP5K
    assert 0.898 <= ICE40.fill_limit <= 0.95
    assert ICE40.fill_limit <= ECP5.fill_limit <= 1
    with pytest.raises(ValueError, match="fill_limit"):
        Family(**{**{f: getattr(ICE40, f) for f in ICE40.__dataclass_fields__},
                  "fill_limit": 1.2})


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_folded_plans_stay_below_the_fill_limit(family):
    g = random_mlp(2, sizes=(32, 16, 4))
    est = network_estimate(g, family=family)["luts"]
    limit = {"ice40": ICE40, "ecp5": ECP5}[family].fill_limit
    # a budget the unrolled design does not fit: folded, never beyond the family's limit,
    # even where the default margins (15 %, falling back to 7 %) would allow more
    for frac in (0.3, 0.5, 0.7):
        budget = Budget(family, luts=round(est * frac))
        try:
            plan = choose(g, budget)
        except DdnhwError:
            continue
        assert plan["mode"] == "auto"
        assert plan["estimate"]["luts"] <= limit * budget.luts
        assert plan["margin"] >= 1 - limit - 1e-9


def test_fill_limit_refuses_a_fuller_plan():
    g = random_mlp(2, sizes=(32, 16, 4))
    full = Budget("ice40", luts=10 ** 6)
    with pytest.raises(DdnhwError) as e:            # the planner names its smallest folding
        choose(g, Budget("ice40", luts=100))
    small = int(re.search(r"smallest footprint is luts (\d+)", str(e.value)).group(1))
    # a budget the smallest folding fills to 96 %: beyond the family's fill limit
    tight = Budget("ice40", luts=round(small / 0.96))
    with pytest.raises(DdnhwError, match="nothing fits"):
        choose(g, tight)
    assert choose(g, full)["mode"] == "unrolled"
