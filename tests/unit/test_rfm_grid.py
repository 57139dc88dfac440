"""segment.rfm: every R x F cell is covered by exactly one segment, the one DOMAIN.md names."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from strata.engine.facts import Clock
from strata.engine.kinds.segment import SegmentRuleset, score
from strata.rulefiles.loader import load_paths
from tests.conftest import RULES_DIR

RULESET, _ = load_paths([RULES_DIR / "segment.rfm.yaml"])
RFM = RULESET.compiled["segment.rfm"]
assert isinstance(RFM, SegmentRuleset)
AS_OF = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)

GRID = {  # DOMAIN.md, R row -> F columns 1..5
    1: ["hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"],
    2: ["hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"],
    3: ["about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"],
    4: ["promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"],
    5: ["new", "potential_loyalist", "potential_loyalist", "champions", "champions"],
}


def test_every_cell_is_covered_exactly_once() -> None:
    facts = RFM.facts(RFM.schema.parse({"user_id": "u"}), Clock.for_profile(AS_OF, {}))
    for r in range(1, 6):
        for f in range(1, 6):
            cell = facts.with_extra(scores={"r": r, "f": f, "m": 1})
            matching = [choice.result for choice in RFM.segments if choice.when.test(cell)]
            assert matching == [GRID[r][f - 1]], (r, f, matching)


@settings(max_examples=300, deadline=None)
@given(
    days=st.one_of(st.none(), st.integers(min_value=0, max_value=800)),
    orders=st.integers(min_value=0, max_value=60),
    spend=st.floats(min_value=0, max_value=50_000, allow_nan=False),
)
def test_scores_follow_the_thresholds_from_profiles(days: int | None, orders: int, spend: float) -> None:
    last_order = None if days is None else (AS_OF - dt.timedelta(days=days)).isoformat()
    decision = RFM.evaluate(
        {"user_id": "u", "last_order_at": last_order, "orders_365d": orders, "spend_365d": spend}, AS_OF
    )
    expected_r = (
        1
        if days is None
        else 5
        if days <= 7
        else 4
        if days <= 30
        else 3
        if days <= 90
        else 2
        if days <= 180
        else 1
    )
    expected_f = 5 if orders >= 20 else 4 if orders >= 10 else 3 if orders >= 5 else 2 if orders >= 2 else 1
    expected_m = (
        5 if spend >= 5000 else 4 if spend >= 1000 else 3 if spend >= 300 else 2 if spend >= 100 else 1
    )
    assert decision.scores == {"r": expected_r, "f": expected_f, "m": expected_m}
    assert decision.segment == GRID[expected_r][expected_f - 1]


def test_score_direction() -> None:
    r_spec, f_spec = (next(s.spec for s in RFM.scores if s.name == name) for name in ("r", "f"))
    assert [score(r_spec, v) for v in (0, 7, 8, 30, 31, 90, 180, 181, None)] == [5, 5, 4, 4, 3, 3, 2, 1, 1]
    assert [score(f_spec, v) for v in (0, 1, 2, 4, 5, 10, 19, 20)] == [1, 1, 2, 2, 3, 4, 4, 5]
